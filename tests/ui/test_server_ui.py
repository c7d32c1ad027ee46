"""The same pages on a real server: signing in with a token (an HttpOnly, SameSite cookie
session), users seeing their own runs and admins all, retry and cancel from the run page,
and cross-site or signed-out requests refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support import TASKS
from support.browser import shot
from support.server import payload, tarball_of, wait_for
from support.services import Server

pytestmark = pytest.mark.browser


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=2).start()
    yield running
    running.stop()


def submit(
    server: Server, user: str, tmp_path: Path, name: str | None = None, file: str | None = None, **params: Any
) -> str:
    with server.client(user) as client:
        body = payload(tmp_path / f"counter-{user}", code=tarball_of(TASKS))
        body["parameters"].update(params)
        body.update({k: v for k, v in (("name", name), ("file", file)) if v is not None})
        created = client.post("/runs", json=body)
        assert created.status_code == 201, created.text
        return str(created.json()["id"])


def sign_in(page: Any, server: Server, user: str) -> None:
    page.goto(server.endpoint + "/")
    page.wait_for_selector("#token")  # signed out: sent to the sign-in page
    page.fill("#token", server.tokens[user])
    page.click("#login button[type=submit]")
    page.wait_for_selector("#runs tbody tr")


def test_sign_in_visibility_retry_and_cancel(server: Server, tmp_path: Path, page: Any) -> None:
    ok = submit(server, "ann", tmp_path)
    failing = submit(server, "ann", tmp_path, seconds="not a number")  # `two` fails to cast
    theirs = submit(server, "bob", tmp_path)
    with server.client("ann") as ann:
        wait_for(ann, ok, ("succeeded",))
        wait_for(ann, failing, ("failed",))
    slow = submit(server, "ann", tmp_path, seconds=60)

    sign_in(page, server, "ann")
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["conveyor_session"]["httpOnly"] and cookies["conveyor_session"]["sameSite"] == "Strict"
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 3")
    listed = page.locator("#runs tbody tr").evaluate_all("rows => rows.map(r => r.dataset.run)")
    assert sorted(listed) == sorted([ok, failing, slow])  # not bob's
    shot(page, "server-runs")

    page.goto(f"{server.endpoint}/runs/{theirs}")
    page.wait_for_selector("#page-error")
    assert "no run" in page.inner_text("#page-error")

    page.goto(f"{server.endpoint}/runs/{failing}")
    page.wait_for_selector("#retry")
    shot(page, "server-run-failed")
    page.click("#retry")
    with server.client("ann") as ann:
        again = wait_for(ann, failing, ("failed",), timeout=60)
        assert again["claims"] == 2

    page.goto(f"{server.endpoint}/runs/{slow}")
    page.wait_for_selector("#cancel")
    page.click("#cancel")
    with server.client("ann") as ann:
        assert wait_for(ann, slow, ("cancelled",), timeout=60)["status"] == "cancelled"

    page.click("#logout")
    page.wait_for_selector("#token")


def test_admin_sees_all_and_filters_by_user(server: Server, tmp_path: Path, page: Any) -> None:
    mine = submit(server, "ann", tmp_path)
    theirs = submit(server, "bob", tmp_path)
    with server.client("root") as root:
        wait_for(root, mine, ("succeeded",))
    sign_in(page, server, "root")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 2")
    page.select_option("#f-user", "bob")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert page.locator("#runs tbody tr").first.get_attribute("data-run") == theirs
    page.select_option("#f-user", "")
    page.fill("#f-q", mine[-6:])  # search by a piece of the run id
    page.press("#f-q", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert page.locator("#runs tbody tr").first.get_attribute("data-run") == mine
    page.goto(f"{server.endpoint}/runs/{mine}")
    page.wait_for_selector("#dag-svg g[data-name='one']")
    assert "ann" in page.inner_text("#header")  # who submitted it
    shot(page, "server-run")


def test_the_run_page_shows_the_pipeline_and_the_file_it_was_submitted_from(
    server: Server, tmp_path: Path, page: Any
) -> None:
    named = submit(server, "ann", tmp_path, name="nightly", file="pipelines/nightly.yaml")
    bare = submit(server, "ann", tmp_path)
    with server.client("ann") as ann:
        wait_for(ann, named, ("succeeded",))
        wait_for(ann, bare, ("succeeded",))
    sign_in(page, server, "ann")
    page.goto(f"{server.endpoint}/runs/{named}")
    page.wait_for_selector("#dag-svg g[data-name='one']")
    shown = page.inner_text("#header")
    assert "nightly" in shown and "pipelines/nightly.yaml" in shown, shown
    header = page.evaluate(f"fetch('/ui/api/runs/{named}').then(r => r.json())")["header"]
    assert header["pipeline"] == "nightly" and header["pipeline_file"] == "pipelines/nightly.yaml"
    page.goto(f"{server.endpoint}/runs/{bare}")
    page.wait_for_selector("#dag-svg g[data-name='one']")
    shown = page.inner_text("#header")
    assert "not given" in shown and "pipeline.yaml" not in shown  # never the worker's copy
    shot(page, "server-run-file")


def test_signed_out_and_cross_site_requests_are_refused(server: Server, tmp_path: Path) -> None:
    failing = submit(server, "ann", tmp_path, seconds="not a number")
    with server.client("ann") as ann:
        wait_for(ann, failing, ("failed",))
    base = server.endpoint
    assert httpx.get(f"{base}/ui/api/runs").status_code == 401
    assert httpx.post(f"{base}/ui/api/runs/{failing}/retry").status_code in (401, 403)
    assert httpx.post(f"{base}/ui/api/login", json={"token": "cvt_wrong"}).status_code == 401
    with httpx.Client(base_url=base) as browser_like:
        signed = browser_like.post("/ui/api/login", json={"token": server.tokens["ann"]})
        assert signed.status_code == 200
        csrf = browser_like.cookies["conveyor_csrf"]
        # a cross-site form or script: no CSRF header, or another origin
        assert browser_like.post(f"/ui/api/runs/{failing}/retry").status_code == 403
        evil = {"X-CSRF-Token": csrf, "Origin": "http://evil.example"}
        assert browser_like.post(f"/ui/api/runs/{failing}/retry", headers=evil).status_code == 403
        assert (
            browser_like.post(f"/ui/api/runs/{failing}/retry", headers={"X-CSRF-Token": "guess"}).status_code
            == 403
        )
        done = browser_like.post(f"/ui/api/runs/{failing}/retry", headers={"X-CSRF-Token": csrf})
        assert done.status_code == 200, done.text
        page = browser_like.get("/")
        assert "default-src 'self'" in page.headers["content-security-policy"]
    with httpx.Client(base_url=base) as bob:
        bob.post("/ui/api/login", json={"token": server.tokens["bob"]})
        assert bob.get(f"/ui/api/runs/{failing}").status_code == 404
        headers = {"X-CSRF-Token": bob.cookies["conveyor_csrf"]}
        assert bob.post(f"/ui/api/runs/{failing}/cancel", headers=headers).status_code == 404

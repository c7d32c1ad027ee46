"""Re-running a server run with edited parameters from its page (issue 24), in a real browser
(Debian's Chromium under Playwright): the form opens on the run's parameters, says where
unreadable ones are wrong, submits a new run of the same pipeline and code, whose page links
back to the old (and the old to it); the dialog works by keyboard and passes axe-core."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import TASKS
from support.browser import serious, shot
from support.server import tarball_of, wait_for
from support.services import Server

pytestmark = pytest.mark.browser

ONE = """dag:
  start_at: one
  steps:
    one: {command: ctasks.add, returns: [total], next: success}
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1).start()
    yield running
    running.stop()


def test_rerun_with_edited_parameters_from_the_run_page(server: Server, page: Any) -> None:
    with server.client("ann") as ann:
        body = {"pipeline": ONE, "parameters": {"a": 1, "b": 2}, "code": tarball_of(TASKS), "name": "adding"}
        old = ann.post("/runs", json=body).json()["id"]
        assert wait_for(ann, old, ("succeeded", "failed"))["status"] == "succeeded"

    page.goto(server.endpoint + "/")
    page.wait_for_selector("#token")
    assert serious(page) == []  # the sign-in page
    page.fill("#token", server.tokens["ann"])
    page.click("#login button[type=submit]")
    page.wait_for_selector("#runs tbody tr")
    assert serious(page) == []  # the server's runs list (its user filter, sign out)
    page.goto(f"{server.endpoint}/runs/{old}")
    page.wait_for_selector("#rerun-open")
    page.focus("#rerun-open")
    page.keyboard.press("Enter")  # by keyboard: the dialog opens with the focus in its text
    page.wait_for_selector("#rerun-dialog[open] #rerun-parameters")
    assert page.evaluate("document.activeElement.id") == "rerun-parameters"
    assert json.loads(page.input_value("#rerun-parameters")) == {"a": 1, "b": 2}
    assert serious(page) == []
    page.keyboard.press("Escape")
    page.wait_for_selector("#rerun-dialog", state="detached")
    assert page.evaluate("document.activeElement.id") == "rerun-open"  # back where it was opened

    page.click("#rerun-open")
    page.wait_for_selector("#rerun-dialog[open] #rerun-parameters")
    page.fill("#rerun-parameters", "a: 40\nb: [2\n")  # unreadable: said where, nothing submitted
    page.click("#rerun-submit")
    page.wait_for_selector("#rerun-errors .issue")
    said = page.inner_text("#rerun-errors")
    assert "invalid parameters" in said and "line " in said, said
    page.fill("#rerun-parameters", "- 40\n- 2\n")
    page.click("#rerun-submit")
    page.wait_for_function("document.querySelector('#rerun-errors').innerText.includes('expected a mapping')")
    assert "found" in page.inner_text("#rerun-errors")
    shot(page, "server-rerun-form-issue")
    with server.client("ann") as ann:
        assert [r["id"] for r in ann.get("/runs").json()["runs"]] == [old]

    page.fill("#rerun-parameters", "a: 40\nb: 2\n")
    page.click("#rerun-submit")
    page.wait_for_url(lambda url: "/runs/" in url and not url.endswith("/runs/" + old))
    new = page.url.rsplit("/", 1)[1]
    page.wait_for_selector("#rerun-of a")
    assert page.get_attribute("#rerun-of a", "href") == f"/runs/{old}"
    with server.client("ann") as ann:
        done = wait_for(ann, new, ("succeeded", "failed"))
        assert done["status"] == "succeeded" and done["rerun_of"] == old
        assert ann.get(f"/runs/{new}").json()["run_log"]["final_parameters"]["total"] == 42
    shot(page, "server-rerun-new-run")
    assert serious(page) == []
    page.goto(f"{server.endpoint}/runs/{old}")
    page.wait_for_selector("#reruns a")
    assert page.get_attribute("#reruns a", "href") == f"/runs/{new}"

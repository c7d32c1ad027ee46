"""The server's runs list filtered by tag (issue 24, point 5) in a real browser: the tags a
run was submitted with are shown in its row, the tag filter offers the user's tags, and
choosing one narrows the list to the runs that carry it (the server filters in SQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import shot
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


def test_the_tag_filter_narrows_the_server_runs_list(server: Server, page: Any) -> None:
    made: dict[str, str] = {}
    with server.client("ann") as ann:
        for key, tags in (("nightly", ["nightly", "team:data"]), ("adhoc", ["adhoc"]), ("none", [])):
            got = ann.post("/runs", json={"pipeline": ONE, "parameters": {"a": 1}, "tags": tags})
            assert got.status_code == 201, got.text
            made[key] = got.json()["id"]
    page.goto(server.endpoint + "/")
    page.fill("#token", server.tokens["ann"])
    page.click("#login button[type=submit]")
    page.wait_for_selector("#runs tbody tr")
    rows = page.locator("#runs tbody tr")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 3")
    headers = page.locator("#runs thead th").all_inner_texts()
    assert "tag" in headers
    column = headers.index("tag")
    shown = {
        r.locator("td").nth(1).inner_text(): r.locator("td").nth(column).inner_text() for r in rows.all()
    }
    assert shown == {made["nightly"]: "nightly, team:data", made["adhoc"]: "adhoc", made["none"]: ""}
    offered = page.locator("#f-tag option").all_inner_texts()
    assert offered == ["any tag", "adhoc", "nightly", "team:data"]
    page.select_option("#f-tag", "nightly")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert rows.first.locator("td").nth(1).inner_text() == made["nightly"]
    assert "tag=nightly" in page.url  # the filter is in the address, to share
    shot(page, "server-runs-tag-filter")
    page.select_option("#f-tag", "")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 3")

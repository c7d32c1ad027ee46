"""The run page's artifacts in a real browser (Debian's Chromium under Playwright), under the
strict CSP: a CSV previewed as a table (its markup as text), an image previewed from its
bytes, a download as an attachment nothing runs; and bidi overrides shown, not obeyed."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import run_cli
from support.browser import LocalUi, shot
from support.images import png

pytestmark = pytest.mark.browser

CONFIG = (
    "run_log_store: {type: file, config: {path: runs}}\ncatalog: {type: file, config: {location: catalog}}\n"
)
PIPELINE = r"""dag:
  start_at: make
  steps:
    make:
      command_type: shell
      command: printf 'before \342\200\256gnp.exe after\n'
      catalog: {put: ["out/*"]}
      next: success
"""
PARAMS = 'msg: "invoice\\u202Efdp.exe"\n'


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalUi, Path]]:
    where = tmp_path_factory.mktemp("artifacts-browser")
    (where / "out").mkdir()
    (where / "out" / "table.csv").write_text("n,html\n" + "".join(f"{i},<b>{i}</b>\n" for i in range(80)))
    (where / "out" / "pic.png").write_bytes(png())
    (where / "config.yaml").write_text(CONFIG)
    (where / "p.yaml").write_text(PIPELINE)
    (where / "params.yaml").write_text(PARAMS)
    out = run_cli(
        "execute", "-f", "p.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "art", cwd=where
    )
    assert out.returncode == 0, out.stderr
    started = LocalUi(where / "config.yaml", where)
    yield started, where
    started.stop()


def test_preview_a_csv_and_an_image_and_download(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    page.goto(server.url + "/runs/art")
    page.wait_for_selector("#artifact-table tbody tr")
    names = page.locator("#artifact-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert sorted(names) == ["out/pic.png", "out/table.csv"]

    page.locator('#artifact-table tr[data-name="out/table.csv"] button.preview-button').click()
    page.wait_for_selector("#preview-dialog[open] #preview-table tbody tr")
    headers = page.locator("#preview-table th").all_text_contents()
    assert headers == ["n", "html"]
    assert page.locator("#preview-table tbody tr").count() == 50
    assert page.locator("#preview-table tbody tr").nth(3).locator("td").all_text_contents() == [
        "3",
        "<b>3</b>",
    ]
    assert page.locator("#preview-dialog b").count() == 0  # markup in a cell is text
    shot(page, "artifacts-csv-preview")
    page.click("#preview-close")
    assert page.locator("#preview-dialog[open]").count() == 0

    page.locator('#artifact-table tr[data-name="out/pic.png"] button.preview-button').click()
    page.wait_for_selector("#preview-dialog[open] #preview-image")
    page.wait_for_function("document.getElementById('preview-image').complete")
    assert page.evaluate("document.getElementById('preview-image').naturalWidth") == 2  # decoded
    shot(page, "artifacts-image-preview")
    page.click("#preview-close")

    link = page.locator('#artifact-table tr[data-name="out/table.csv"] a.download-link')
    with page.expect_download() as started:
        link.click()
    download = started.value
    assert download.suggested_filename == "table.csv"
    assert Path(download.path()).read_bytes() == (where / "out" / "table.csv").read_bytes()
    answer = page.request.get(server.url + (link.get_attribute("href") or ""))
    assert answer.headers["content-type"] == "application/octet-stream"
    assert answer.headers["content-disposition"].startswith('attachment; filename="table.csv"')
    assert answer.headers["x-content-type-options"] == "nosniff"
    # the same file from the step table's line
    line = page.locator('#step-table .artifact[data-name="out/table.csv"]')
    assert line.locator("a.download-link").get_attribute("href") == link.get_attribute("href")


def test_bidi_overrides_are_shown_not_obeyed(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, _ = ui
    page.goto(server.url + "/runs/art")
    page.wait_for_selector("#header")
    page.wait_for_function("document.getElementById('header').textContent.includes('invoice')")
    header = page.locator("#header").inner_text()
    assert "invoice⟨U+202E⟩fdp.exe" in header and "\u202e" not in header
    page.goto(server.url + "/runs/art/logs?step=make")
    page.wait_for_function(
        "document.getElementById('log') && document.getElementById('log').textContent.includes('after')"
    )
    text = page.locator("#log").inner_text()
    assert re.search(r"before ⟨U\+202E⟩gnp\.exe after", text) and "\u202e" not in text

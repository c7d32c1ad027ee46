"""The local UI driven by the keyboard alone, in a real browser (Debian's Chromium under
Playwright), as issue 24 asks: Tab reaches the runs table's links, the DAG's nodes, the failed
items' links, the level tabs and the artifacts' buttons; Enter (or Space) opens them; Escape
closes the preview dialog and gives the focus back to what opened it. No mouse event is sent."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import TASKS, run_cli
from support.browser import LocalUi, shot

pytestmark = pytest.mark.browser

PIPELINE = """dag:
  start_at: make
  steps:
    make: {command_type: shell, command: "true", catalog: {put: ["out/*"]}, next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {start_at: check, steps: {check: {command: ctasks.fail_if, returns: [y], next: success}}}
      next: both
    both:
      type: parallel
      next: success
      branches:
        left: {start_at: l1, steps: {l1: {command: ctasks.noop, next: success}}}
        right: {start_at: r1, steps: {r1: {command: ctasks.noop, next: success}}}
"""
CONFIG = (
    "run_log_store: {type: file, config: {path: runs}}\ncatalog: {type: file, config: {location: catalog}}\n"
)


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUi]:
    where = tmp_path_factory.mktemp("keyboard")
    (where / "out").mkdir()
    (where / "out" / "table.csv").write_text("n,sq\n" + "".join(f"{i},{i * i}\n" for i in range(5)))
    (where / "config.yaml").write_text(CONFIG)
    (where / "pipeline.yaml").write_text(PIPELINE)
    (where / "params.yaml").write_text("xs: [0, 1, 2]\nbad: 2\n")
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "k",
        cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr
    started = LocalUi(where / "config.yaml", where)
    yield started
    started.stop()


def focused(page: Any, selector: str) -> bool:
    """Whether the element that has the keyboard focus matches ``selector``."""
    return bool(page.evaluate("s => !!document.activeElement && document.activeElement.matches(s)", selector))


def tab_to(page: Any, selector: str, most: int = 150) -> None:
    """Press Tab until ``selector`` has the focus; fail if it is never reached."""
    for _ in range(most):
        page.keyboard.press("Tab")
        if focused(page, selector):
            return
    raise AssertionError(f"{selector} was not reached in {most} presses of Tab")


def test_tab_first_reaches_the_skip_link(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr")
    page.keyboard.press("Tab")
    assert focused(page, "a.skip")
    assert page.locator("a.skip").bounding_box()["x"] >= 0  # shown once it has the focus
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # the next stop is inside main, past the header's links
    assert page.evaluate("document.getElementById('main').contains(document.activeElement)")


def test_runs_table_link_opens_the_run(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr[data-run='k']")
    tab_to(page, "#runs tr[data-run='k'] a")
    page.keyboard.press("Enter")
    page.wait_for_url("**/runs/k")
    page.wait_for_selector("#dag-svg g.node")


def test_dag_nodes_failed_items_and_tabs_by_keyboard(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/k")
    page.wait_for_selector('#dag-svg g.node[data-name="fan"]')
    fan = page.locator('#dag-svg g.node[data-name="fan"]')
    assert fan.get_attribute("role") == "button" and "fan (map)" in (fan.get_attribute("aria-label") or "")
    # the map: Enter opens its failed items
    tab_to(page, '#dag-svg g.node[data-name="fan"]')
    shot(page, "keyboard-dag-node-focused")
    page.keyboard.press("Enter")
    page.wait_for_selector('#failed-items tr[data-item="2"]')
    tab_to(page, '#failed-items tr[data-item="2"] a.item-link')
    page.keyboard.press("Enter")
    page.wait_for_selector("#item-card")
    assert page.locator("#item-value").inner_text() == "2"
    # a parallel: Space opens its level, whose branches are tabs reached and opened by keyboard
    page.goto(ui.url + "/runs/k")
    page.wait_for_selector('#dag-svg g.node[data-name="both"]')
    tab_to(page, '#dag-svg g.node[data-name="both"]')
    page.keyboard.press(" ")
    page.wait_for_selector("#level-tabs a[aria-current='page']")
    tabs = page.locator("#level-tabs a")
    assert tabs.count() == 2
    other = tabs.nth(1) if tabs.nth(0).get_attribute("aria-current") == "page" else tabs.nth(0)
    path = other.get_attribute("data-path")
    tab_to(page, f"#level-tabs a[data-path='{path}']")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#level-tabs a[data-path='{path}'][aria-current='page']")
    assert focused(page, f"#level-tabs a[data-path='{path}']")  # redrawn, the tab keeps the focus


def test_preview_dialog_opens_with_enter_and_closes_with_escape(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/k")
    button = '#artifact-table tr[data-name="out/table.csv"] button.preview-button'
    page.wait_for_selector(button)
    tab_to(page, button)
    page.keyboard.press("Enter")
    page.wait_for_selector("#preview-dialog[open] #preview-table tbody tr")
    assert focused(page, "#preview-dialog *")  # the keyboard is in the dialog
    shot(page, "keyboard-preview-dialog")
    for _ in range(5):  # and Tab stays in it (a modal dialog)
        page.keyboard.press("Tab")
        assert focused(page, "#preview-dialog *") or focused(page, "#preview-dialog")
    page.keyboard.press("Escape")
    page.wait_for_selector("#preview-dialog[open]", state="detached")
    assert focused(page, button)  # back where it was opened

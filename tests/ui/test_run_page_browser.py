"""The run page of issue 24 in a real browser (Debian's Chromium under Playwright), over a
run that failed: it opens on what failed; failed items, the map and the timeline lead to
the attempt's log and the item's page; the DAG is laid out in layers with branches side by
side, the branch not taken dimmed, the map stacked, pan and zoom; long names and values are
clipped or folded; paging is disabled on one page; and all of it under the strict CSP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import TASKS, run_cli
from support.browser import LocalUi, shot

pytestmark = pytest.mark.browser

LONG = "a_rather_long_step_name_that_would_never_fit_in_its_box"
PIPELINE = f"""dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {{start_at: check, steps: {{check: {{command: ctasks.fail_if, returns: [y], next: success}}}}}}
      next: both
    both:
      type: parallel
      next: pick
      branches:
        left: {{start_at: {LONG}, steps: {{{LONG}: {{command: ctasks.noop, next: success}}}}}}
        right: {{start_at: r1, steps: {{r1: {{command: ctasks.noop, next: success}}}}}}
    pick:
      type: conditional
      parameter: which
      next: boom
      branches:
        big: {{start_at: b1, steps: {{b1: {{command: ctasks.noop, next: success}}}}}}
        small: {{start_at: s1, steps: {{s1: {{command: ctasks.noop, next: success}}}}}}
    boom: {{command: ctasks.fail_always, next: success}}
"""
PARAMS = "xs: [" + ", ".join(str(i) for i in range(60)) + "]\nbad: 7\nwhich: big\nmessage: disk is full\n"


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalUi, Path]]:
    where = tmp_path_factory.mktemp("issue24")
    (where / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (where / "pipeline.yaml").write_text(PIPELINE)
    (where / "params.yaml").write_text(PARAMS)
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--run-id", "r",
        cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # boom fails the run
    started = LocalUi(where / "config.yaml", where)
    yield started, where
    started.stop()


def _translate(page: Any, name: str) -> tuple[float, float]:
    value = page.locator(f'#dag-svg g.node[data-name="{name}"]').get_attribute("transform")
    found = re.match(r"translate\(([-\d.]+),([-\d.]+)\)", value or "")
    assert found, value
    return float(found.group(1)), float(found.group(2))


def test_a_failed_run_opens_on_what_failed(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, _ = ui
    page.goto(server.url + "/runs/r")
    page.wait_for_selector("#failures .failure")
    summary = page.locator("#failures")
    assert summary.bounding_box()["y"] < page.locator("#dag").bounding_box()["y"]  # at the top
    paths = page.locator("#failures .failure").evaluate_all("els => els.map(e => e.dataset.path)")
    assert paths == ["boom", "fan/7/check"], paths
    boom = page.locator('#failures .failure[data-path="boom"]')
    assert "disk is full" in boom.locator(".error").inner_text()
    shot(page, "issue24-failed-summary")
    # the failed item: its page shows its value, its attempt, its error
    page.locator('#failures .failure[data-path="fan/7/check"] a.item-link').click()
    page.wait_for_selector("#item-card")
    assert page.locator("#item-value").inner_text() == "7"
    assert "item 7 is bad" in page.locator("#item-card").inner_text()
    assert page.locator('#dag-svg g.node[data-name="check"]').get_attribute("data-status") == "failed"
    shot(page, "issue24-item-page")
    # and its log, one click away
    page.locator("#item-card a.log-link").first.click()
    page.wait_for_url(re.compile(r"/runs/r/logs\?step=fan%2F7%2Fcheck&attempt=1"))
    page.wait_for_selector("#log")


def test_failed_items_map_and_timeline_lead_to_logs_and_items(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, _ = ui
    page.goto(server.url + "/runs/r")
    page.wait_for_selector('#dag-svg g.node[data-name="fan"]')
    page.locator('#dag-svg g.node[data-name="fan"]').click()
    page.wait_for_selector("#failed-items tbody tr")
    row = page.locator('#failed-items tr[data-item="7"]')
    assert row.locator("a.item-link").get_attribute("href") == "/runs/r?path=fan%2F7"
    assert row.locator("a.log-link").get_attribute("href") == "/runs/r/logs?step=fan%2F7%2Fcheck&attempt=1"
    assert page.locator("#map-prev").is_disabled() and page.locator("#map-next").is_disabled()  # one page
    links = page.locator("#gantt-svg a.gantt-link")
    hrefs = links.evaluate_all("els => els.map(e => [e.dataset.path, e.getAttribute('href')])")
    assert ["boom", "/runs/r/logs?step=boom"] in hrefs
    assert ["fan/7/check", "/runs/r?path=fan%2F7"] in hrefs
    axis = page.locator("#gantt-svg text.axis-label").text_content() or ""
    assert re.fullmatch(r"time since the run's first start \((ms|s|min|h)\)", axis), axis
    ticks = page.locator("#gantt-svg text.tick").all_text_contents()
    assert len(ticks) >= 3 and all(re.fullmatch(r"[\d.]+ (ms|s|min|h)", t) for t in ticks), ticks
    histogram = page.locator("#histogram text.axis-label").all_text_contents()
    assert histogram[0] == "items" and re.fullmatch(r"item duration \((ms|s|min|h)\)", histogram[1])


def test_the_dag_is_layered_with_branches_side_by_side(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, _ = ui
    page.goto(server.url + "/runs/r")
    page.wait_for_selector('#dag-svg g.node[data-name="both/right/r1"]')
    left, right = _translate(page, f"both/left/{LONG}"), _translate(page, "both/right/r1")
    assert left[1] == right[1] and abs(left[0] - right[0]) >= 180  # one rank, side by side
    assert _translate(page, "both")[1] < left[1] < _translate(page, "pick")[1]
    taken, other = (
        page.locator('g.node[data-name="pick/big/b1"]'),
        page.locator('g.node[data-name="pick/small/s1"]'),
    )
    assert "dim" not in (taken.get_attribute("class") or "") and "dim" in (other.get_attribute("class") or "")
    assert taken.get_attribute("data-status") == "succeeded"
    fan = page.locator('g.node[data-name="fan"]')
    assert "stacked" in (fan.get_attribute("class") or "") and fan.locator("rect.under").count() == 2
    assert fan.locator("text.sub").text_content() == "59 succeeded · 1 failed"
    before = page.locator("#dag-svg").get_attribute("viewBox")
    page.locator("#zoom-in").click()
    zoomed = page.locator("#dag-svg").get_attribute("viewBox")
    assert zoomed != before and float(zoomed.split()[2]) < float(before.split()[2])
    page.locator("#zoom-fit").click()
    assert page.locator("#dag-svg").get_attribute("viewBox") == before
    shot(page, "issue24-dag")


def test_long_names_and_values_are_clipped_or_folded(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, _ = ui
    page.goto(server.url + "/runs/r")
    node = page.locator(f'#dag-svg g.node[data-name="both/left/{LONG}"]')
    node.wait_for()
    name = node.locator("text.name").text_content() or ""
    # the box widened for the name up to 40 characters, then clipped, and the text fits its box
    assert name.endswith("…") and LONG.startswith(name[:-1]) and len(name) == 40
    text = node.locator("text.name").evaluate("t => t.getBBox().width")
    assert text < float(node.locator("rect.box").get_attribute("width") or 0) - 8
    assert LONG in (node.locator("title").text_content() or "")  # the whole name on hover
    xs = page.locator("#initial details.value")
    assert xs.locator("summary").inner_text().startswith("list of 60")
    assert xs.bounding_box()["height"] < 40  # one line, not sixty
    xs.locator("summary").click()
    assert "[0,1,2,3" in xs.locator("pre").inner_text()
    page.goto(server.url + "/")
    page.wait_for_selector("#runs tbody tr")
    assert page.locator("#runs-prev").is_disabled() and page.locator("#runs-next").is_disabled()


def test_the_run_page_works_under_its_strict_csp(ui: tuple[LocalUi, Path], browser: Any) -> None:
    server, _ = ui
    context = browser.new_context()  # the page's own Content-Security-Policy, not bypassed
    page = context.new_page()
    refused: list[str] = []
    page.on(
        "console",
        lambda message: refused.append(message.text) if "Content Security Policy" in message.text else None,
    )
    page.goto(server.url + "/runs/r")
    page.wait_for_selector("#failures .failure")
    page.wait_for_selector("#gantt-svg")
    page.locator('#dag-svg g.node[data-name="fan"]').click()
    page.wait_for_selector("#histogram")
    context.close()
    assert refused == []

"""Comparing runs in a real browser (Debian's Chromium under Playwright), over ``conveyor ui``:
two runs chosen on the runs page open their comparison, which marks what differs; the runs
page shows relative times, no user column on a laptop, and filters by date and tag."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.executors.run import execute
from conveyor.spec.load import config_from_data, load_pipeline
from support.browser import LocalUi, shot

pytestmark = pytest.mark.browser

PIPELINE = """dag:
  start_at: score
  steps:
    score: {command: ctasks.scored, returns: [{name: quality, kind: metric}], next: check}
    check: {command: ctasks.fail_if, returns: [y], next: success}
"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUi]:
    where = tmp_path_factory.mktemp("compare-browser")
    (where / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (where / "pipeline.yaml").write_text(PIPELINE)
    config = config_from_data({"run_log_store": {"type": "file", "config": {"path": str(where / "runs")}}})
    pipeline = load_pipeline(where / "pipeline.yaml")
    execute(pipeline, config, {"x": 2, "bad": 7}, run_id="good", tag="nightly")
    execute(pipeline, config, {"x": 7, "bad": 7}, run_id="bad", tag="manual")  # check fails
    started = LocalUi(where / "config.yaml", where)
    yield started
    started.stop()


def test_choose_two_runs_and_see_what_differs(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr[data-run='bad']")
    headers = page.locator("#runs thead th").all_inner_texts()
    assert "user" not in headers and "tag" in headers  # a laptop has no users; its runs have tags
    started = page.locator("#runs tbody tr[data-run='good'] time")
    assert started.inner_text() in ("just now",) or started.inner_text().endswith("ago")
    assert started.get_attribute("title").endswith("Z")  # the absolute time, ISO 8601
    compare = page.locator("#compare")
    assert compare.is_disabled()
    page.check("#runs input.pick[data-run='good']")
    assert compare.is_disabled()  # one run chosen: not yet
    page.check("#runs input.pick[data-run='bad']")
    assert compare.is_enabled()
    shot(page, "issue24-runs-two-chosen")
    compare.click()
    page.wait_for_url("**/compare/good/bad")
    page.wait_for_selector("#compare-steps tbody tr[data-step='check']")
    shot(page, "issue24-compare")

    changed = page.locator("#compare-initial tr[data-param='x']")
    assert changed.get_attribute("data-change") == "changed"
    assert changed.locator("td.differs").count() == 2
    assert page.locator("#compare-initial tr[data-param='bad'] td.differs").count() == 0
    check = page.locator("#compare-steps tr[data-step='check'] td.differs")
    assert check.count() >= 2 and "failed" in " ".join(check.all_inner_texts())
    colour = check.first.evaluate("td => getComputedStyle(td).backgroundColor")
    plain = page.locator("#compare-initial tr[data-param='bad'] td").nth(2)
    assert colour != plain.evaluate("td => getComputedStyle(td).backgroundColor")  # highlighted
    assert (
        page.locator("#compare-steps tr[data-step='score'] .differs-key").all_inner_texts() == ["quality"] * 2
    )
    assert "2 of 2 steps differ" in page.inner_text("#compare-summary")

    page.check("#only-differences")  # the unchanged parameter is hidden, the changed stay
    assert not page.locator("#compare-initial tr[data-param='bad']").is_visible()
    assert page.locator("#compare-initial tr[data-param='x']").is_visible()


def test_the_runs_page_filters_by_date_and_tag(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr[data-run='bad']")
    page.select_option("#f-tag", "nightly")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert page.locator("#runs tbody tr").get_attribute("data-run") == "good"
    page.select_option("#f-tag", "")
    page.fill("#f-since", "2000-01-01")  # local days: today's runs are within 2000 to now
    page.fill("#f-until", "2000-01-02")
    page.wait_for_selector("#count:text('no runs')")
    assert "since=2000-01-01" in page.url and "until=2000-01-02" in page.url
    page.fill("#f-until", "")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 2")


def test_times_read_as_how_long_ago(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/good")
    started = page.locator("#header time").first
    started.wait_for()
    assert started.get_attribute("title") == started.get_attribute("datetime")
    assert started.get_attribute("title").endswith("Z") and started.inner_text() == "just now"
    now = 1_796_083_200_000  # ms: 2026-12-01T00:00:00Z
    said = page.evaluate(
        "now => [5, 42, 180, 7200, 86400 + 60, 3 * 86400].map(s => ago(now / 1000 - s, now))", now
    )
    assert said == ["just now", "42 s ago", "3 min ago", "2 h ago", "yesterday", "3 days ago"]

"""Every page of the local UI checked with axe-core in a real browser (Debian's Chromium under
Playwright), as issue 24 asks: the runs list, the page of a failed map run, an item's page, a
log page and the compare page have no ``serious`` or ``critical`` violation. axe-core comes
bundled in the ``axe-playwright-python`` package, so the check needs no network."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from conveyor.executors.run import execute
from conveyor.spec.load import config_from_data, load_pipeline
from support.browser import LocalUi, serious, shot

pytestmark = pytest.mark.browser

PIPELINE = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {start_at: check, steps: {check: {command: ctasks.fail_if, returns: [y], next: success}}}
      next: score
    score: {command: ctasks.scored, returns: [{name: quality, kind: metric}], next: success}
"""

#: Each page as (screenshot name, address, what shows once its data is in).
PAGES = [
    ("a11y-runs", "/", "#runs tbody tr[data-run='r']"),
    ("a11y-run-failed-map", "/runs/r", "#failures .failure"),
    ("a11y-item", "/runs/r?path=fan%2F3", "#item-card"),
    ("a11y-log", "/runs/r/logs?step=fan%2F3%2Fcheck&attempt=1", "#log"),
    ("a11y-compare", "/compare/ok/r", "#compare-steps tbody tr"),
]


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUi]:
    where = tmp_path_factory.mktemp("a11y")
    (where / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (where / "pipeline.yaml").write_text(PIPELINE)
    config = config_from_data({"run_log_store": {"type": "file", "config": {"path": str(where / "runs")}}})
    pipeline = load_pipeline(where / "pipeline.yaml")
    execute(pipeline, config, {"xs": [1, 2], "bad": 3, "x": 1}, run_id="ok", tag="nightly")
    execute(pipeline, config, {"xs": [1, 2, 3, 4], "bad": 3, "x": 1}, run_id="r", tag="manual")
    started = LocalUi(where / "config.yaml", where)
    yield started
    started.stop()


@pytest.mark.parametrize(("name", "address", "ready"), PAGES, ids=[p[0] for p in PAGES])
def test_no_serious_accessibility_violation(
    ui: LocalUi, page: Any, name: str, address: str, ready: str
) -> None:
    page.goto(ui.url + address)
    page.wait_for_selector(ready)
    shot(page, name)
    assert serious(page) == []


def test_no_serious_violation_on_the_metrics_page(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/metrics")
    page.wait_for_selector("#m-pipeline option:nth-child(2)", state="attached")
    page.select_option("#m-pipeline", index=1)
    page.wait_for_selector("#metrics-table tbody tr")
    shot(page, "a11y-metrics")
    assert serious(page) == []


def test_the_check_finds_a_violation_when_there_is_one(ui: LocalUi, page: Any) -> None:
    # The check itself can fail: an image without text and an unlabelled field are caught.
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr")
    page.evaluate(
        "document.querySelector('main').insertAdjacentHTML('beforeend',"
        " '<input type=text id=nolabel><img src=/ui/static/favicon.svg>')"
    )
    found = " ".join(serious(page))
    assert "label" in found and "image-alt" in found

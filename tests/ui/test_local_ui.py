"""``conveyor ui`` over local runs, in a real browser: the runs table and its filters, a
run's DAG colours changing while it runs, a map's failed items, a followed log, metrics
across runs, and markup from the run log shown as text."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import TASKS, run_cli
from support.browser import LocalUi, shot

pytestmark = pytest.mark.browser

CONFIG = (
    "run_log_store: {type: file, config: {path: runs}}\ncatalog: {type: file, config: {location: catalog}}\n"
)
MAPPED = """dag:
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
SLOW = """dag:
  start_at: first
  steps:
    first: {command: ctasks.ticker, returns: [n], next: second}
    second: {command: ctasks.sleep_for, next: success}
"""
HOSTILE = """dag:
  start_at: "<img src=x onerror=window.pwned=1>"
  steps:
    "<img src=x onerror=window.pwned=1>":
      command_type: shell
      command: echo '<script>window.pwned=2</script>'
      next: success
"""


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[LocalUi, Path]]:
    (tmp_path / "config.yaml").write_text(CONFIG)
    started = LocalUi(tmp_path / "config.yaml", tmp_path)
    yield started, tmp_path
    started.stop()


def execute(where: Path, text: str, run_id: str, params: str, name: str | None = None) -> None:
    """Run ``text`` as pipeline ``name`` (the file's stem; the run id by default)."""
    (where / f"{name or run_id}.yaml").write_text(text)
    (where / f"{run_id}-params.yaml").write_text(params)
    out = run_cli(
        "execute", "-f", f"{name or run_id}.yaml", "-c", "config.yaml", "-p", f"{run_id}-params.yaml",
        "--run-id", run_id, cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode in (0, 1), out.stderr


def test_runs_table_filters_and_search(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    execute(where, MAPPED, "mapped-ok", "xs: [1, 2]\nbad: 9\nx: 2\n")
    execute(where, MAPPED, "mapped-bad", "xs: [1, 2, 3]\nbad: 2\nx: 3\n")
    execute(where, HOSTILE, "hostile", "{}")
    page.goto(server.url + "/")
    page.wait_for_selector("#runs tbody tr")
    assert page.locator("#runs tbody tr").count() == 3
    shot(page, "local-runs")
    page.select_option("#f-pipeline", "mapped-ok")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    page.select_option("#f-pipeline", "")
    page.fill("#f-q", "hostile")
    page.press("#f-q", "Enter")
    page.wait_for_function("document.querySelectorAll('#runs tbody tr').length === 1")
    assert page.locator("#runs tbody tr").first.get_attribute("data-run") == "hostile"
    assert "1–1 of 1" in page.inner_text("#count")


def test_map_node_counts_and_failed_items(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    execute(where, MAPPED, "m1", "xs: [1, 2, 3, 4]\nbad: 3\nx: 2\n")
    page.goto(f"{server.url}/runs/m1")
    node = page.locator("#dag-svg g[data-name='fan']")
    node.wait_for()
    assert node.get_attribute("data-status") == "succeeded"  # on_item_failure: continue
    label = node.text_content() or ""
    assert "3 succeeded" in label and "1 failed" in label
    node.click()
    page.wait_for_selector("#failed-items tbody tr")
    assert page.inner_text("#failed-items tbody").startswith("2")  # item index 2 holds x=3
    assert "4 items" in page.inner_text("#map-counts")
    assert page.locator("#histogram rect").count() > 0
    # the opened level shows the branch's step, counted over all items
    page.wait_for_selector("#dag-svg g[data-name='check']")
    assert "failed" in page.locator("#dag-svg g[data-name='check']").get_attribute("data-status")
    shot(page, "local-run-map")


def test_dag_colours_change_while_running_and_log_is_followed(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    (where / "slow.yaml").write_text(SLOW)
    (where / "slow-params.yaml").write_text("lines: 12\npause: 0.25\nseconds: 1.5\n")
    running = subprocess.Popen(
        [sys.executable, "-m", "conveyor.cli", "execute", "-q", "-f", "slow.yaml", "-c", "config.yaml",
         "-p", "slow-params.yaml", "--run-id", "slow"],
        cwd=where, env={**__import__("os").environ, "PYTHONPATH": str(TASKS)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.time() + 20
        while not (where / "runs" / "slow" / "run.json").exists() and time.time() < deadline:
            time.sleep(0.1)
        page.goto(f"{server.url}/runs/slow")
        first = page.locator("#dag-svg g[data-name='first']")
        first.wait_for()
        page.wait_for_function(
            "document.querySelector(\"#dag-svg g[data-name='first']\").dataset.status === 'running'"
        )
        shot(page, "local-run-live")
        page.goto(f"{server.url}/runs/slow/logs?step=first&attempt=1")
        page.wait_for_function("document.getElementById('log')?.textContent.includes('tick 2')")
        assert "tick 11" not in page.inner_text("#log")  # still running: followed, not finished
        page.wait_for_function(
            "document.getElementById('log')?.textContent.includes('tick 11')", timeout=20_000
        )
        page.wait_for_function("document.getElementById('log-status').textContent.includes('ended')")
        shot(page, "local-log")
        page.goto(f"{server.url}/runs/slow")
        page.wait_for_function(
            "document.querySelector(\"#dag-svg g[data-name='second']\")?.dataset.status === 'succeeded'",
            timeout=20_000,
        )
        assert page.locator("#dag-svg g[data-name='first']").get_attribute("data-status") == "succeeded"
    finally:
        running.wait(timeout=30)


def test_markup_from_the_run_log_is_text(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    execute(where, HOSTILE, "hostile", "note: '<b onmouseover=window.pwned=3>hi</b>'\n")
    page.goto(f"{server.url}/runs/hostile")
    page.wait_for_selector("#step-table tbody tr")
    assert "<img src=x onerror=window.pwned=1>" in page.inner_text("#step-table")
    assert "<b onmouseover=window.pwned=3>hi</b>" in page.inner_text("#initial")
    step = "<img src=x onerror=window.pwned=1>"
    page.goto(f"{server.url}/runs/hostile/logs?step={__import__('urllib.parse').parse.quote(step)}&attempt=1")
    page.wait_for_function("document.getElementById('log')?.textContent.includes('<script>')")
    assert page.evaluate("window.pwned") is None
    assert page.locator("main img, main script, main b").count() == 0
    shot(page, "local-escaped")


def test_metrics_across_runs_and_loop_iterations(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    for n, x in enumerate((1, 4, 2)):
        execute(where, MAPPED, f"metric-{n}", f"xs: [1]\nbad: 9\nx: {x}\n", name="scores")
    page.goto(f"{server.url}/metrics")
    page.wait_for_selector("#m-pipeline option[value='scores']", state="attached")
    page.select_option("#m-pipeline", "scores")
    page.wait_for_selector("#metrics-chart circle")
    assert page.locator("#metrics-chart circle").count() == 3
    column = [c.strip() for c in page.locator("#metrics-table tbody td:nth-child(4)").all_inner_texts()]
    assert column == ["1.5", "6", "3"]  # oldest first
    shot(page, "local-metrics")
    from executors.test_loop import LOOP

    (where / "loop-params.yaml").write_text(f"total: 0\nstop_at: 2\nfail_at: -1\nmarker: {where / 'm'}\n")
    (where / "loop.yaml").write_text(LOOP)
    out = run_cli(
        "execute", "-f", "loop.yaml", "-c", "config.yaml", "-p", "loop-params.yaml", "--run-id", "loop",
        cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    page.goto(f"{server.url}/runs/loop")
    node = page.locator("#dag-svg g[data-name='grow']")
    node.wait_for()
    assert "3 iterations" in (node.text_content() or "")
    assert page.locator("#step-table tr[data-step='grow/2/body']").count() == 1
    shot(page, "local-run-loop")


def test_cached_steps_are_marked(ui: tuple[LocalUi, Path], page: Any) -> None:
    server, where = ui
    cached = """dag:
  cache: true
  start_at: sq
  steps:
    sq: {command: ctasks.square, returns: [y], next: success}
"""
    execute(where, cached, "fill", "x: 3\n", name="cached")
    execute(where, cached, "hit", "x: 3\n", name="cached")
    page.goto(f"{server.url}/runs/hit")
    page.wait_for_selector("#step-table .cached")
    assert "from run fill" in page.inner_text("#step-table .cached")


def test_runs_table_and_run_header_show_the_tag(ui: tuple[LocalUi, Path], page: Any) -> None:
    import ctasks

    from conveyor import Pipeline, PythonTask

    server, where = ui
    config = {
        "run_log_store": {"type": "file", "config": {"path": str(where / "runs")}},
        "catalog": {"type": "none"},
    }
    Pipeline(steps=[PythonTask(ctasks.noop)], name="tagged").execute(
        config=config, run_id="t1", tag="nightly"
    )
    Pipeline(steps=[PythonTask(ctasks.noop)], name="plain").execute(config=config, run_id="p1")
    page.goto(server.url + "/")
    page.wait_for_selector("#runs tbody tr[data-run='t1']")
    headers = page.locator("#runs thead th").all_inner_texts()
    column = headers.index("tag") + 1
    cell = f"td:nth-child({column})"
    assert page.locator(f"#runs tbody tr[data-run='t1'] {cell}").inner_text() == "nightly"
    assert page.locator(f"#runs tbody tr[data-run='p1'] {cell}").inner_text() == ""
    page.goto(f"{server.url}/runs/t1")
    page.wait_for_selector("#step-table tbody tr")
    assert "nightly" in page.inner_text(".grid")

"""UI figures: the run page of a run with a 100,000-item map, the runs page with 10,000 runs,
and what a live update costs, against a real `conveyor ui` process (and, when Debian's
Chromium is installed, in the browser: until the DAG, or the runs table, is drawn).

Usage: python benchmarks/ui.py [--items 100000] [--runs 10000] [--repeat 5]
The runs are written straight into a file run log store (the shapes a real run records),
so that the figures are the UI's, not the pipelines'. "cold" is the first request to a
fresh `conveyor ui` (it folds the whole run log, racing the start-up warm-up); the browser
figures are taken WARM_UP seconds after start, when the UI has indexed the runs and folded
the newest (what a user opening it sees), "warm" being the median of the next loads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conveyor.runlog.codec import encode_run
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import EndEvent, NodeEvent, RunRecord, StartEvent, Status
from support.browser import LocalUi, chromium

WARM_UP = 3.0
PIPELINE = {
    "dag": {
        "start_at": "prepare",
        "steps": {
            "prepare": {"command": "m.prepare", "next": "fan"},
            "fan": {
                "type": "map", "iterate_on": "xs", "iterate_as": "x", "next": "report",
                "on_item_failure": "continue",
                "branch": {"start_at": "work", "steps": {"work": {"command": "m.work", "next": "success"}}},
            },
            "report": {"command": "m.report", "next": "success"},
        },
    }
}  # fmt: skip


def big_run(store: FileRunLogStore, items: int) -> None:
    """A finished run whose map had ``items`` items, one in a thousand failed."""
    t = time.time() - items * 0.001 - 10
    store.save_run(
        RunRecord(run_id="big", pipeline_name="big", pipeline=PIPELINE, status=Status.SUCCEEDED,
                  started_at=t, ended_at=t + items * 0.001 + 5),
        create=True,
    )  # fmt: skip
    store.append("big", [StartEvent(["prepare"], 1, t), EndEvent(["prepare"], 1, t + 1, Status.SUCCEEDED)])
    store.append("big", [NodeEvent(["fan"], "map", Status.RUNNING, t + 1, {"items": items})])
    batch: list = []
    for i in range(items):
        status = Status.FAILED if i % 1000 == 7 else Status.SUCCEEDED
        start = t + 1 + i * 0.001
        batch += [
            StartEvent(["fan", str(i), "work"], 1, start),
            EndEvent(["fan", str(i), "work"], 1, start + 0.05, status, started=start,
                     error="ValueError: bad row" if status is Status.FAILED else None),
        ]  # fmt: skip
        if len(batch) >= 20_000:
            store.append("big", batch)
            batch = []
    store.append("big", batch)
    end = t + 2 + items * 0.001
    store.append(
        "big", [NodeEvent(["fan"], "map", Status.SUCCEEDED, end, {"items": items, "failed": items // 1000})]
    )
    store.append("big", [StartEvent(["report"], 1, end), EndEvent(["report"], 1, end + 1, Status.SUCCEEDED)])


def many_runs(root: Path, count: int) -> None:
    """``count`` small finished runs (a record each, as `run.json` files)."""
    for n in range(count):
        run = RunRecord(run_id=f"run-{n:05d}", pipeline_name=f"pipeline-{n % 7}", pipeline=PIPELINE,
                        status=Status.FAILED if n % 13 == 0 else Status.SUCCEEDED,
                        started_at=1.7e9 + n, ended_at=1.7e9 + n + 3)  # fmt: skip
        folder = root / run.run_id
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(encode_run(run))


def timed(client: httpx.Client, url: str, repeat: int) -> tuple[float, float]:
    """(first, median of the next ``repeat``) seconds for GET ``url``."""
    start = time.perf_counter()
    assert client.get(url).status_code == 200
    first = time.perf_counter() - start
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        assert client.get(url).status_code == 200
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def browser_load(url: str, selector: str, repeat: int, mark: str) -> tuple[float, float, float] | None:
    """(first, median) seconds until ``selector`` is in the page, in Chromium, as Playwright
    sees it (its own round trips included); and the median time from navigation start to
    the page's own ``mark`` (set by app.js once it has drawn)."""
    executable = chromium()
    if executable is None:
        return None
    from playwright.sync_api import sync_playwright

    times, drawn = [], []
    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        for _ in range(repeat + 1):
            page = browser.new_page()
            start = time.perf_counter()
            page.goto(url)
            page.wait_for_selector(selector, timeout=60_000)
            times.append(time.perf_counter() - start)
            drawn.append(page.evaluate(f"performance.getEntriesByName('{mark}')[0].startTime") / 1000)
            page.close()
        browser.close()
    return times[0], statistics.median(times[1:]), statistics.median(drawn[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conveyor-ui-bench-"))
    try:
        print(f"writing a run with a {args.items:,}-item map and {args.runs:,} small runs ...")
        big_run(FileRunLogStore(str(work / "big")), args.items)
        many_runs(work / "many", args.runs)
        for name in ("big", "many"):
            (work / f"{name}.yaml").write_text(
                f"run_log_store: {{type: file, config: {{path: {work / name}}}}}\n"
            )

        ui = LocalUi(work / "big.yaml", work)
        try:
            with httpx.Client(base_url=ui.url, timeout=120) as client:
                cold, warm = timed(client, "/ui/api/runs/big", args.repeat)
                print(
                    f"run page data, {args.items:,} items: cold {cold * 1000:.0f} ms, "
                    f"warm {warm * 1000:.1f} ms"
                )
                first, median = timed(client, "/ui/api/runs/big/map?path=fan", args.repeat)
                print(
                    f"map panel (counts, histogram, failed items): first {first * 1000:.0f} ms, "
                    f"next {median * 1000:.0f} ms"
                )
                store = FileRunLogStore(str(work / "big"))
                now = time.time()
                store.append(
                    "big", [NodeEvent(["report"], "task", Status.SUCCEEDED, now, {"note": "x"})] * 100
                )
                start = time.perf_counter()
                assert client.get("/ui/api/runs/big").status_code == 200
                print(
                    f"live update after 100 new events: {(time.perf_counter() - start) * 1000:.1f} ms "
                    "(no re-read)"
                )
            ui.stop()
            ui = LocalUi(work / "big.yaml", work)
            time.sleep(WARM_UP)  # a user opens the page some time after `conveyor ui` started
            shown = browser_load(
                ui.url + "/runs/big", "#dag-svg g[data-name='fan']", args.repeat, "conveyor:dag-drawn"
            )
            if shown:
                print(
                    f"run page in Chromium until the DAG is drawn: first {shown[0] * 1000:.0f} ms, then "
                    f"{shown[1] * 1000:.0f} ms (Playwright's clock); in the page: {shown[2] * 1000:.0f} ms"
                )
        finally:
            ui.stop()

        ui = LocalUi(work / "many.yaml", work)
        try:
            time.sleep(WARM_UP)
            with httpx.Client(base_url=ui.url, timeout=120) as client:
                cold, warm = timed(client, "/ui/api/runs?limit=50", args.repeat)
                print(
                    f"runs page data, {args.runs:,} runs: first {cold * 1000:.0f} ms, "
                    f"warm {warm * 1000:.1f} ms"
                )
                _, filtered = timed(
                    client, "/ui/api/runs?status=failed&pipeline=pipeline-3&limit=50", args.repeat
                )
                print(f"runs page filtered by status and pipeline: {filtered * 1000:.1f} ms")
            shown = browser_load(ui.url + "/", "#runs tbody tr", args.repeat, "conveyor:runs-drawn")
            if shown:
                print(
                    f"runs page in Chromium until the table is drawn: first {shown[0] * 1000:.0f} ms, then "
                    f"{shown[1] * 1000:.0f} ms (Playwright's clock); in the page: {shown[2] * 1000:.0f} ms"
                )
        finally:
            ui.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

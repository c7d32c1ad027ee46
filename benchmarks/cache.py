"""Step caching figures, side by side with the same pipelines uncached, whole processes:

- a chain of 1,000 no-op steps: uncached, then cached (0 executions) on a re-run;
- the lookup cost per step (the cached re-run's time over the uncached one's, per step, and
  a direct measure of StepCache.lookup with the file catalog);
- a map of N no-op items (100,000 by default): uncached, then cached on a re-run.

Usage: python benchmarks/cache.py [--runs 3] [--steps 1000] [--items 100000]
Each figure is the median of ``--runs`` fresh `conveyor execute` processes, file run log
and file catalog; the cached runs read entries that an earlier run filled.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = "run_log_store: {type: file}\ncatalog: {type: file}\n"


def chain(n: int, cache: bool) -> str:
    lines = ["dag:", f"  cache: {'true' if cache else 'false'}", "  start_at: s0", "  steps:"]
    for i in range(n):
        following = f"s{i + 1}" if i + 1 < n else "success"
        lines.append(f"    s{i}: {{command: bench_tasks.touch, returns: [r{i}], next: {following}}}")
    return "\n".join(lines) + "\n"


def mapped(cache: bool) -> str:
    return f"""dag:
  cache: {"true" if cache else "false"}
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: item
      branch:
        start_at: touch
        steps: {{touch: {{command: bench_tasks.touch, returns: [values], next: success}}}}
      next: success
"""


def run(where: Path, text: str, params: str, runs: int, fill: bool) -> float:
    """Median seconds of ``runs`` executions (after one that fills the cache, if ``fill``)."""
    (where / "pipeline.yaml").write_text(text)
    (where / "params.yaml").write_text(params)
    (where / "config.yaml").write_text(CONFIG)
    command = [
        sys.executable,
        "-m",
        "conveyor.cli",
        "execute",
        "-q",
        "-f",
        "pipeline.yaml",
        "-c",
        "config.yaml",
    ]
    env = {"PYTHONPATH": str(HERE), "PATH": "/usr/bin:/bin"}
    times = []
    for n in range(runs + (1 if fill else 0)):
        start = time.perf_counter()
        done = subprocess.run(
            [*command, "-p", "params.yaml"], cwd=where, env=env, capture_output=True, text=True
        )
        took = time.perf_counter() - start
        if done.returncode != 0:
            raise SystemExit(done.stderr[-2000:])
        if fill and n == 0:
            continue
        times.append(took)
    return statistics.median(times)


def lookup_cost(where: Path, count: int = 2000) -> float:
    """Seconds per StepCache.lookup of an existing entry with the file catalog."""
    sys.path.insert(0, str(HERE))
    from conveyor.catalog.store import FsspecCatalog
    from conveyor.spec.models import CacheSpec, TaskNode
    from conveyor.step.cache import StepCache, cache_key

    catalog = FsspecCatalog(str(where / "lookup-catalog"))
    cache = StepCache(catalog, True)
    node = TaskNode(command="bench_tasks.touch", returns=["r"], next="success")  # type: ignore[list-item]
    key = cache_key(node, CacheSpec(), {"item": 1}, where, {})
    cache.fill(key, "run", ["s"], "bench", {"r": 1}, {}, {}, {})
    start = time.perf_counter()
    for _ in range(count):
        hit, _ = cache.lookup(cache_key(node, CacheSpec(), {"item": 1}, where, {}), CacheSpec())
        assert hit is not None
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="conveyor-cache-bench-"))
    try:
        params = "item: 1\n"
        for name in ("chain-plain", "chain-cached", "map-plain", "map-cached"):
            (work / name).mkdir()
        plain = run(work / "chain-plain", chain(args.steps, False), params, args.runs, False)
        cached = run(work / "chain-cached", chain(args.steps, True), params, args.runs, True)
        print(f"chain of {args.steps:,} steps: uncached {plain:.2f} s, cached re-run {cached:.2f} s "
              f"(x{cached / plain:.2f}; 0 executions)")  # fmt: skip
        per_step = lookup_cost(work)
        print(f"lookup with the file catalog: {per_step * 1000:.3f} ms per step (key and entry read)")
        params = f"xs: {list(range(args.items))}\n"
        plain = run(work / "map-plain", mapped(False), params, args.runs, False)
        cached = run(work / "map-cached", mapped(True), params, args.runs, True)
        print(
            f"map of {args.items:,} items: uncached {plain:.2f} s, "
            f"cached re-run {cached:.2f} s (x{cached / plain:.2f})"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

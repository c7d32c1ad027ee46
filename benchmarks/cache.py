"""Step caching figures, side by side with the same pipelines uncached, whole processes:

- a chain of 1,000 no-op steps: uncached, then cached (0 executions) on a re-run;
- the lookup cost per step (the cached re-run's time over the uncached one's, per step, and
  a direct measure of StepCache.lookup with the file catalog);
- a map of N no-op items (100,000 by default): uncached, the run that fills the cache, then
  cached re-runs; the cost per hit against the cost per no-op item run; the files and bytes
  the cache keeps on disk.

Usage: python benchmarks/cache.py [--runs 3] [--steps 1000] [--items 100000] [--src DIR]
       [--items-from params|step] [--skip-chain] [--instructions ITEMS]
Each figure is the median of ``--runs`` fresh `conveyor execute` processes, file run log
and file catalog; the cached runs read entries that an earlier run filled. ``--src`` runs
another checkout's conveyor (its ``src`` directory), to compare before and after.

Figures are CPU seconds (user + system of the process and the children it waited for, from
``os.wait4``; the in-process figures, of the measuring thread): on a machine shared with
other work, wall time moves with the others' load far more than CPU time does.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = [str(HERE.parent / "src")]  # the conveyor measured (--src changes it)
CONFIG = "run_log_store: {type: file}\ncatalog: {type: file}\n"


def chain(n: int, cache: bool) -> str:
    lines = ["dag:", f"  cache: {'true' if cache else 'false'}", "  start_at: s0", "  steps:"]
    for i in range(n):
        following = f"s{i + 1}" if i + 1 < n else "success"
        lines.append(f"    s{i}: {{command: bench_tasks.touch, returns: [r{i}], next: {following}}}")
    return "\n".join(lines) + "\n"


def mapped(cache: bool, from_step: bool = False) -> str:
    """A map of no-op items over ``xs``: a parameter (its file parsed in every run, so
    that per item it counts the YAML too), or what a step returns (``--items-from step``)."""
    first = "make" if from_step else "fan"
    make = "    make: {command: bench_tasks.items, returns: [xs], next: fan}\n" if from_step else ""
    return f"""dag:
  cache: {"true" if cache else "false"}
  start_at: {first}
  steps:
{make}    fan:
      type: map
      iterate_on: xs
      iterate_as: item
      branch:
        start_at: touch
        steps: {{touch: {{command: bench_tasks.touch, returns: [values], next: success}}}}
      next: success
"""


def counted(where: Path, text: str, params: str, fill: bool) -> tuple[int, int]:
    """Instructions of one `conveyor execute` under callgrind (user space, every thread;
    the kernel's work is not counted; the machine's load does not change them), and those
    of the run before it that filled the cache (0 unless ``fill``)."""
    (where / "pipeline.yaml").write_text(text)
    (where / "params.yaml").write_text(params)
    (where / "config.yaml").write_text(CONFIG)
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "conveyor.cli", "execute", "-q",
        "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml",
    ]  # fmt: skip
    env = {"PYTHONPATH": os.pathsep.join([*SRC, str(HERE)]), "PATH": "/usr/bin:/bin"}
    found = []
    for _ in range(2 if fill else 1):
        out = subprocess.run(command, cwd=where, env=env, capture_output=True, text=True, check=True)
        total = [line for line in out.stderr.splitlines() if "Collected :" in line]
        found.append(int(total[-1].rsplit(":", 1)[1]))
    return found[-1], found[0] if fill else 0


def instructions(work: Path, items: int) -> None:
    """Instructions per item (less an empty map's) of a run, a fill and a hit: items from a
    step (callgrind runs Python some 50 times slower: use 20,000 items or so)."""
    for name in ("ic-empty", "ic-plain", "ic-cached"):
        (work / name).mkdir()
    empty, _ = counted(work / "ic-empty", mapped(False, True), "n: 0\n", False)
    plain, _ = counted(work / "ic-plain", mapped(False, True), f"n: {items}\n", False)
    hit, fill = counted(work / "ic-cached", mapped(True, True), f"n: {items}\n", True)
    run, filled, hits = ((n - empty) / items for n in (plain, fill, hit))
    print(
        f"instructions per item ({items:,} items from a step, less an empty map's): run {run:,.0f}, "
        f"fill {filled:,.0f} (x{filled / run:.2f}), hit {hits:,.0f} (x{hits / run:.2f})"
    )


def run(where: Path, text: str, params: str, runs: int, fill: bool) -> tuple[float, float]:
    """Median CPU seconds of ``runs`` executions, and those of the first one (the one that
    fills the cache, left out of the median, if ``fill``)."""
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
    env = {"PYTHONPATH": os.pathsep.join([*SRC, str(HERE)]), "PATH": "/usr/bin:/bin"}
    times, first = [], 0.0
    for n in range(runs + (1 if fill else 0)):
        proc = subprocess.Popen(
            [*command, "-p", "params.yaml"],
            cwd=where,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        _, status, usage = os.wait4(proc.pid, 0)
        took = usage.ru_utime + usage.ru_stime
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(err[-2000:])
        if n == 0:
            first = took
            if fill:
                continue
        times.append(took)
    return statistics.median(times), first


def on_disk(where: Path) -> tuple[int, int]:
    """Files and bytes (allocated blocks) the step cache keeps under ``where``'s catalog."""
    files = size = 0
    for path in (where / ".conveyor/catalog/_shared/cache").rglob("*"):
        if path.is_file():
            files += 1
            size += path.stat().st_blocks * 512
    return files, size


def attempt_costs(where: Path, count: int = 20_000) -> tuple[float, float, float]:
    """Seconds per attempt of a no-op map item through StepContext.run (no engine, file
    catalog): run uncached, run and fill, hit (key, lookup in a log read once, restore)."""
    sys.path[:0] = [*SRC, str(HERE)]
    from conveyor.catalog.store import FsspecCatalog
    from conveyor.spec.models import TaskNode
    from conveyor.step.cache import StepCache
    from conveyor.step.context import StepContext
    from conveyor.step.secrets import NoSecrets

    node = TaskNode.model_validate({"command": "bench_tasks.touch", "returns": ["values"], "next": "success"})

    def per_attempt(cache: bool) -> float:
        context = StepContext("run", FsspecCatalog(str(where / "attempts")), NoSecrets(), where)
        context.cache = StepCache(context.catalog, True) if cache else None
        start = time.thread_time()
        for i in range(count):
            assert context.run(node, {"item": i}, ["fan", str(i), "touch"], 1).ok
        return (time.thread_time() - start) / count

    return per_attempt(False), per_attempt(True), per_attempt(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--src", help="the src directory of the conveyor to measure")
    parser.add_argument(
        "--items-from",
        choices=("params", "step"),
        default="params",
        help="the map's list: a parameters file (its parsing counted per item) or a step's return",
    )
    parser.add_argument("--skip-chain", action="store_true", help="measure the map only")
    parser.add_argument(
        "--instructions",
        type=int,
        metavar="ITEMS",
        help="instead, count instructions per item under callgrind (a map of ITEMS: 20000)",
    )
    args = parser.parse_args()
    if args.src:
        SRC[:] = [str(Path(args.src).resolve())]
    work = Path(tempfile.mkdtemp(prefix="conveyor-cache-bench-"))
    if args.instructions:
        try:
            instructions(work, args.instructions)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return
    try:
        params = "item: 1\n"
        for name in ("chain-plain", "chain-cached", "map-empty", "map-plain", "map-cached"):
            (work / name).mkdir()
        if not args.skip_chain:
            plain, _ = run(work / "chain-plain", chain(args.steps, False), params, args.runs, False)
            cached, _ = run(work / "chain-cached", chain(args.steps, True), params, args.runs, True)
            print(
                f"chain of {args.steps:,} steps (CPU): uncached {plain:.2f} s, "
                f"cached re-run {cached:.2f} s (x{cached / plain:.2f}; 0 executions)"
            )
            plain_one, fill_one, hit_one = attempt_costs(work)
            print(
                f"one map item in StepContext.run: no-op run {plain_one * 1e6:.1f} us, "
                f"run and fill {fill_one * 1e6:.1f} us (x{fill_one / plain_one:.2f}), "
                f"hit {hit_one * 1e6:.1f} us (x{hit_one / plain_one:.2f})"
            )
        step = args.items_from == "step"
        params = f"n: {args.items}\n" if step else f"xs: {list(range(args.items))}\n"
        none = "n: 0\n" if step else "xs: []\n"
        empty, _ = run(work / "map-empty", mapped(False, step), none, args.runs, False)
        plain, _ = run(work / "map-plain", mapped(False, step), params, args.runs, False)
        cached, filling = run(work / "map-cached", mapped(True, step), params, args.runs, True)
        files, size = on_disk(work / "map-cached")
        per_item = (plain - empty) / args.items
        per_hit = (cached - empty) / args.items
        per_fill = (filling - empty) / args.items
        print(
            f"map of {args.items:,} items: uncached {plain:.2f} s, filling {filling:.2f} s "
            f"(x{filling / plain:.2f}), cached re-run {cached:.2f} s (x{cached / plain:.2f}); "
            f"an empty map {empty:.2f} s"
        )
        print(
            f"per item (CPU, less an empty map's): no-op run {per_item * 1e6:.1f} us, "
            f"hit {per_hit * 1e6:.1f} us (x{per_hit / per_item:.2f}), "
            f"fill {per_fill * 1e6:.1f} us (x{per_fill / per_item:.2f}); "
            f"cache on disk: {files:,} files, {size / 1e6:.1f} MB"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Whole-process figures for the core: `conveyor execute` on tiny workloads, file run log.

Usage: python benchmarks/core.py [--runs 5] [--only chain50,map1000,map100k,help]

Each figure is the median wall-clock time of several runs of the real command in a fresh
process (start-up, imports, validation, the run, the run log on disk). Peak memory is the
child's maximum resident set size.
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
CONVEYOR = [sys.executable, "-m", "conveyor.cli.main"]


#: Set by --src/--entry: measure the conveyor of another source tree (an older checkout).
OTHER: list[str] = []


def conveyor_cmd() -> list[str]:
    if OTHER:
        return list(OTHER)
    exe = shutil.which("conveyor", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-c", "from conveyor.cli.main import run; run()"]


def chain(n: int) -> str:
    lines = ["dag:", "  start_at: s0", "  steps:"]
    for i in range(n):
        following = f"s{i + 1}" if i + 1 < n else "success"
        lines.append(f"    s{i}: {{command: bench_tasks.noop, next: {following}}}")
    return "\n".join(lines) + "\n"


def mapped(reducer: bool) -> str:
    return f"""dag:
  start_at: list
  steps:
    list: {{command: bench_tasks.items, returns: [xs], next: fan}}
    fan:
      type: map
      iterate_on: xs
      iterate_as: item
      {"reducer: bench_tasks.total" if reducer else ""}
      branch:
        start_at: touch
        steps:
          touch: {{command: bench_tasks.touch, returns: [values], next: success}}
      next: sum
    sum: {{command: bench_tasks.total, returns: [result], next: success}}
"""


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Wall-clock seconds and peak RSS (KiB) of one run, from the child's own rusage."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    took = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stderr.read()[-2000:] if proc.stderr else ''}")
    return took, usage.ru_maxrss


def measure(
    name: str, pipeline: str | None, params: str | None, runs: int, args: list[str] | None = None
) -> None:
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        work = Path(tmp)
        env = dict(os.environ, PYTHONPATH=str(HERE))
        argv = conveyor_cmd()
        if pipeline is not None:
            (work / "pipeline.yaml").write_text(pipeline)
            (work / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
            argv += ["execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
            if params:
                (work / "params.yaml").write_text(params)
                argv += ["-p", "params.yaml"]
        argv += args or []
        times, peak = [], 0
        for _ in range(runs):
            took, rss = run_once(argv, work, env)
            times.append(took)
            peak = max(peak, rss)
            shutil.rmtree(work / "runs", ignore_errors=True)
        median = statistics.median(times)
        spread = f"min {min(times):.3f}s max {max(times):.3f}s"
        print(f"{name:<10} median {median:.3f}s over {runs} runs ({spread}); peak RSS {peak / 1024:.0f} MiB")
        return median


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", default="help,chain50,map1000,map100k")
    parser.add_argument("--src", type=Path, help="Measure the conveyor in this source tree instead.")
    parser.add_argument("--entry", default="conveyor.cli:main", help="Its entry point, MODULE:FUNCTION.")
    opts = parser.parse_args()
    if opts.src is not None:
        module, _, function = opts.entry.partition(":")
        lines = [f"import sys; sys.path.insert(0, {str(opts.src)!r})", f"from {module} import {function}"]
        OTHER[:] = [sys.executable, "-c", "\n".join([*lines, f"{function}()"])]
    only = set(opts.only.split(","))
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, file run log store")
    if "help" in only:
        measure("help", None, None, opts.runs, ["--help"])
    if "chain50" in only:
        measure("chain50", chain(50), None, opts.runs)
    if "map1000" in only:
        measure("map1000", mapped(False), "n: 1000\n", opts.runs)
    if "map100k" in only:
        runs = max(1, min(opts.runs, 3))
        median = measure("map100k", mapped(False), "n: 100000\n", runs)
        base = measure("map0", mapped(False), "n: 0\n", runs)
        per_item = (median - base) / 100_000 * 1e6
        print(f"map100k    per-item overhead {per_item:.0f} µs (map100k minus an empty map)")


if __name__ == "__main__":
    main()

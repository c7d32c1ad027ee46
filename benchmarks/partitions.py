"""Partition figures: listing and partitioning 100,000 small local files; no-op partition
processing throughput on the local and Dask executors; peak memory for 1,000,000 items given
as a parameter list.

Usage: python benchmarks/partitions.py [--runs 3] [--skip-dask]
Each figure is the median wall-clock time of whole `conveyor` processes.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def conveyor() -> str:
    return str(Path(sys.executable).parent / "conveyor")


def timed(argv: list[str], cwd: Path, runs: int) -> tuple[float, int]:
    times, peak = [], 0
    env = dict(os.environ, PYTHONPATH=str(HERE))
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(proc.pid, 0)
        times.append(time.perf_counter() - started)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed: {proc.stderr.read().decode()[-1500:] if proc.stderr else ''}"
            )
        peak = max(peak, usage.ru_maxrss)
    return statistics.median(times), peak


def mapped(source: str) -> str:
    return f"""dag:
  start_at: each
  steps:
    each:
      type: map
      partition: {{{source}, strategy: count, size: 1000}}
      iterate_as: files
      branch:
        start_at: t
        steps: {{t: {{command: bench_tasks.touch_partition, returns: [n], next: success}}}}
      next: success
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip-dask", action="store_true")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = work / "data"
        for d in range(100):
            (data / f"d{d:02d}").mkdir(parents=True)
            for i in range(1000):
                (data / f"d{d:02d}" / f"f{i:04d}.txt").write_bytes(b"x")
        (work / "files.yaml").write_text(mapped(f'source: "{data}/**/*.txt"'))
        took, _ = timed([conveyor(), "partitions", "-f", "files.yaml", "each"], work, opts.runs)
        print(f"list + partition 100,000 local files (conveyor partitions): median {took:.2f}s")

        (work / "items.yaml").write_text(mapped("parameter: names"))
        (work / "params.yaml").write_text("names:\n" + "".join(f"- item-{i}\n" for i in range(100_000)))
        (work / "local.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
        took, peak = timed(
            [conveyor(), "execute", "-q", "-f", "items.yaml", "-c", "local.yaml", "-p", "params.yaml"],
            work,
            opts.runs,
        )
        print(
            f"local executor: 100,000 items in 100 partitions, median {took:.2f}s whole process "
            f"= {100_000 / took:,.0f} items/s; peak RSS {peak / 1024:.0f} MiB"
        )
        if not opts.skip_dask:
            (work / "dask.yaml").write_text(
                "executor: {type: dask, config: {local: {n_workers: 2, threads_per_worker: 1}}}\n"
                "run_log_store: {type: file, config: {path: runs}}\n"
            )
            took, _ = timed(
                [conveyor(), "execute", "-q", "-f", "items.yaml", "-c", "dask.yaml", "-p", "params.yaml"],
                work,
                opts.runs,
            )
            print(
                f"dask executor (2 local worker processes, started by the run): 100,000 items in 100 "
                f"partitions, median {took:.2f}s whole process = {100_000 / took:,.0f} items/s"
            )

        (work / "params1m.yaml").write_text("names:\n" + "".join(f"- item-{i}\n" for i in range(1_000_000)))
        took, peak = timed(
            [conveyor(), "execute", "-q", "-f", "items.yaml", "-c", "local.yaml", "-p", "params1m.yaml"],
            work,
            1,
        )
        mib = peak / 1024
        print(f"1,000,000 items as a parameter list, 1,000 partitions: {took:.2f}s; peak RSS {mib:.0f} MiB")


if __name__ == "__main__":
    main()

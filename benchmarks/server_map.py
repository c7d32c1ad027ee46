"""The cost of privilege separation: a 1,000-item map run on a sandboxed server, side by side.

Each conveyor source tree given (``--src``, e.g. this checkout's ``src`` and a worktree of an
older commit's) serves the same run in turn, pairs alternated: a server on SQLite with one
worker starts, a 1,000-item map of no-op items is submitted and waited for, the server
stops. Figures per tree, medians: CPU time (user + system) of the whole process tree (the
server, its workers, the run's sandbox, engine and steps: every process is waited for, so
its time reaches this script's children's usage), and the run's own wall time (claimed to
ended, from the API).

    python benchmarks/server_map.py --src src --src ../before/src [--pairs 3] [--items 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "tasks")]

from support.server import tarball_of, wait_for  # noqa: E402
from support.services import Server  # noqa: E402

PIPELINE = """dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: items
      iterate_as: item
      branch:
        start_at: one
        steps:
          one: {command: bench_tasks.touch, returns: [out], next: success}
      next: success
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def once(src: str, items: int, code: str) -> tuple[float, float]:
    """(CPU seconds of the whole tree, the run's wall seconds) for one server run."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        server = Server(f"sqlite:///{work / 'server.db'}", work, workers=1, lease=15)
        server.env["PYTHONPATH"] = os.pathsep.join([os.path.abspath(src), server.env.get("PYTHONPATH", "")])
        server.env["XDG_DATA_HOME"] = str(work / "data")
        before = _children_cpu()
        server.start()
        try:
            with server.client("ann") as ann:
                body = {"pipeline": PIPELINE, "parameters": {"items": list(range(items))}, "code": code}
                run_id = ann.post("/runs", json=body).json()["id"]
                run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=900)
                if run["status"] != "succeeded":
                    raise SystemExit(f"the run failed with {src}: {run.get('error')}")
                wall = float(run["ended_at"]) - float(run["started_at"])
        finally:
            server.stop()
        return _children_cpu() - before, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--src", action="append", required=True, help="a conveyor source tree (repeat)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    code = tarball_of(HERE)  # bench_tasks.py and its neighbours, as the run's code
    results: dict[str, list[tuple[float, float]]] = {src: [] for src in args.src}
    for _ in range(args.pairs):
        for src in args.src:
            results[src].append(once(src, args.items, code))
            time.sleep(1)
    print(f"{args.items:,}-item map on a sandboxed server (SQLite, 1 worker), medians of {args.pairs}:")
    base = statistics.median(cpu for cpu, _ in results[args.src[0]])
    for src, figures in results.items():
        cpu = statistics.median(c for c, _ in figures)
        wall = statistics.median(w for _, w in figures)
        print(f"  {src:40s} CPU {cpu:7.2f} s (x{cpu / base:.2f})   run wall {wall:6.2f} s")


if __name__ == "__main__":
    main()

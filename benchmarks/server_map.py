"""The cost of privilege separation: a 1,000-item map run on a sandboxed server, side by side.

Each conveyor given (``--python``: a virtual environment's interpreter with that conveyor
installed, e.g. an older commit's worktree and this checkout) serves the same run in turn,
pairs alternated: a server on SQLite with one worker starts, a 1,000-item map of no-op
items is submitted and waited for, the server stops. Figures per conveyor, medians: CPU
time (user + system) of the whole process tree (the server, its workers, the run's
sandbox, engine and steps: every process is waited for, so its time reaches this script's
children's usage), and the run's own wall time (claimed to ended, from the API).

    python benchmarks/server_map.py --python OLD/.venv/bin/python --python .venv/bin/python
"""

from __future__ import annotations

import argparse
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


def once(python: str, items: int, code: str) -> tuple[float, float]:
    """(CPU seconds of the whole tree, the run's wall seconds) for one server run."""
    # The test support's Server starts `sys.executable -m conveyor.cli`: each tree's own
    # interpreter (a virtual environment with that tree installed), so the server, its
    # workers and the runs' engines all run that tree's code.
    sys.executable = python
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        server = Server(f"sqlite:///{work / 'server.db'}", work, workers=1, lease=15)
        server.env.pop("PYTHONPATH", None)
        server.env["XDG_DATA_HOME"] = str(work / "data")
        before = _children_cpu()
        server.start()
        try:
            with server.client("ann") as ann:
                body = {"pipeline": PIPELINE, "parameters": {"items": list(range(items))}, "code": code}
                run_id = ann.post("/runs", json=body).json()["id"]
                run = wait_for(ann, run_id, ("succeeded", "failed"), timeout=900)
                if run["status"] != "succeeded":
                    raise SystemExit(f"the run failed with {python}: {run.get('error')}")
                wall = float(run["ended_at"]) - float(run["started_at"])
        finally:
            server.stop()
        return _children_cpu() - before, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--python", action="append", required=True, help="a venv's python with a conveyor installed (repeat)"
    )
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    args = parser.parse_args()
    code = tarball_of(HERE)  # bench_tasks.py and its neighbours, as the run's code
    results: dict[str, list[tuple[float, float]]] = {python: [] for python in args.python}
    for _ in range(args.pairs):
        for python in args.python:
            results[python].append(once(python, args.items, code))
            time.sleep(1)
    print(f"{args.items:,}-item map on a sandboxed server (SQLite, 1 worker), medians of {args.pairs}:")
    base = statistics.median(cpu for cpu, _ in results[args.python[0]])
    for python, figures in results.items():
        cpu = statistics.median(c for c, _ in figures)
        wall = statistics.median(w for _, w in figures)
        print(f"  {python:40s} CPU {cpu:7.2f} s (x{cpu / base:.2f})   run wall {wall:6.2f} s")


if __name__ == "__main__":
    main()

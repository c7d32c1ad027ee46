"""The run log's durability levels side by side: CPU of a map run at each, in one run.

Usage: python benchmarks/durability.py [--items 30000] [--rounds 5] [--workers N]

Each round runs ``conveyor execute -q`` of a map of no-op items (``core.mapped``) with the
file run log at ``strict``, ``batched`` (the default) and ``relaxed``, one after the other
in a fresh process each, so that a drift of the machine's speed hits every level alike. A
run's figure is the CPU time (user + system) of its whole process tree from the kernel's
accounting of the reaped child (``os.wait4``, as ``versus.py``). Printed: each level's
median CPU, per item, and the median of the per-round ratios to ``batched``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from core import mapped
from versus import OURS, command, cpu_once

LEVELS = ("strict", "batched", "relaxed")


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--workers", type=int, default=None, help="executor max_workers (default: the executor's)"
    )
    opts = parser.parse_args()
    cpu: dict[str, list[float]] = {level: [] for level in LEVELS}
    with tempfile.TemporaryDirectory(prefix="durability-") as tmp:
        work = Path(tmp)
        (work / "pipeline.yaml").write_text(mapped(False))
        (work / "params.yaml").write_text(f"n: {opts.items}\n")
        executor = (
            f"executor: {{type: local, config: {{max_workers: {opts.workers}}}}}\n" if opts.workers else ""
        )
        for level in LEVELS:
            store = f"run_log_store: {{type: file, config: {{path: runs, durability: {level}}}}}\n"
            (work / f"{level}.yaml").write_text(executor + store)
        argv = [*command(OURS), "execute", "-q", "-f", "pipeline.yaml", "-p", "params.yaml", "-c"]
        cpu_once([*argv, "batched.yaml"], work)  # warm the file cache and the bytecode
        for _ in range(opts.rounds):
            for level in LEVELS:
                cpu[level].append(cpu_once([*argv, f"{level}.yaml"], work))
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {opts.items} items, {opts.rounds} rounds"
    )
    for level in LEVELS:
        ratio = statistics.median(x / y for x, y in zip(cpu[level], cpu["batched"], strict=True))
        median = statistics.median(cpu[level])
        print(
            f"{level:<8} {median:7.3f}s CPU  {median / opts.items * 1e6:6.1f} us/item (start-up included)  "
            f"ratio to batched {ratio:.3f}  (range {min(cpu[level]):.3f}-{max(cpu[level]):.3f})"
        )


if __name__ == "__main__":
    main()

"""The run log's durability levels side by side, per store: what each costs per map item.

Usage: python benchmarks/durability.py [--items 30000] [--sql-items 5000] [--rounds 5]
       [--stores file,sqlite,postgres] [--workers N]

Each round runs ``conveyor execute -q`` of a map of no-op items (``core.mapped``) with each
store at ``strict``, ``batched`` (the default) and ``relaxed``, one after the other in a
fresh process each, so that a drift of the machine's speed hits every level alike; and a
one-item run at ``batched``, whose figures (start-up, the run's own records) are taken off
the others to give a cost per item. Each item is one append of two events (its start and
its end). Figures: CPU time (user + system) of the run's process tree from the kernel's
accounting of the reaped child (``os.wait4``, as ``versus.py``), and wall time, which is
what a step waiting for ``fsync`` pays. PostgreSQL is a throwaway cluster started here with
``fsync`` on (the tests' runs with it off); its server's CPU is not in the figures, its
flushes are in the wall time. Printed: each store and level's medians, per item, and the
median of the per-round ratios to ``batched``.
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core import mapped
from versus import HERE, OURS, command

sys.path.insert(0, str(HERE.parent / "tests"))
from support.services import Postgres

LEVELS = ("strict", "batched", "relaxed")


def once(argv: list[str], work: Path) -> tuple[float, float]:
    """CPU and wall seconds of one run's process tree; exits on a failed run."""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv[:3])} ... failed:\n{err[-2000:]}")
    shutil.rmtree(work / "runs", ignore_errors=True)
    return usage.ru_utime + usage.ru_stime, wall


@contextmanager
def store_lines(stores: list[str], work: Path) -> Iterator[dict[str, str]]:
    """Each store's ``run_log_store`` line (``{level}`` left to fill), PostgreSQL started."""
    lines = {
        "file": "{type: file, config: {path: runs/r-{n}, durability: {level}}}",
        "sqlite": "{type: sqlite, config: {path: runs/r-{n}.db, durability: {level}}}",
    }
    pg = Postgres(fsync=True) if "postgres" in stores else None
    try:
        if pg is not None:
            lines["postgres"] = "{type: postgres, config: {url: '" + pg.start() + "', durability: {level}}}"
        yield {s: lines[s] for s in stores}
    finally:
        if pg is not None:
            pg.stop()


def measure(store: str, line: str, items: int, opts: argparse.Namespace, work: Path) -> None:
    """Rounds of the three levels and the one-item run, on ``store``; print the figures."""
    executor = f"executor: {{type: local, config: {{max_workers: {opts.workers}}}}}\n" if opts.workers else ""
    argv = [*command(OURS), "execute", "-q", "-f", "pipeline.yaml", "-c"]
    count = iter(range(10**9))

    def run(level: str, n: int) -> tuple[float, float]:
        config = work / f"{store}-{level}.yaml"
        text = line.replace("{level}", level).replace("{n}", str(next(count)))
        config.write_text(executor + f"run_log_store: {text}\n")
        (work / "params.yaml").write_text(f"n: {n}\n")
        return once([*argv, config.name, "-p", "params.yaml"], work)

    run("batched", items)  # warm the file cache, the bytecode, the database
    cpu: dict[str, list[float]] = {level: [] for level in (*LEVELS, "one")}
    wall: dict[str, list[float]] = {level: [] for level in (*LEVELS, "one")}
    for _ in range(opts.rounds):
        for level in (*LEVELS, "one"):
            c, w = run("batched", 1) if level == "one" else run(level, items)
            cpu[level].append(c)
            wall[level].append(w)
    base_cpu, base_wall = statistics.median(cpu["one"]), statistics.median(wall["one"])
    print(
        f"{store}: {items} items, {opts.rounds} rounds; "
        f"a one-item run: {base_cpu:.3f}s CPU, {base_wall:.3f}s wall"
    )
    for level in LEVELS:
        c, w = statistics.median(cpu[level]), statistics.median(wall[level])
        ratio = statistics.median(x / y for x, y in zip(cpu[level], cpu["batched"], strict=True))
        wratio = statistics.median(x / y for x, y in zip(wall[level], wall["batched"], strict=True))
        print(
            f"  {level:<8} CPU {c:7.3f}s {(c - base_cpu) / items * 1e6:7.1f} us/item (x{ratio:.2f} batched)"
            f"   wall {w:7.3f}s {(w - base_wall) / items * 1e6:7.1f} us/item (x{wratio:.2f} batched)"
        )


def main() -> None:
    """Run the rounds and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=30000, help="items of the file store's map")
    parser.add_argument("--sql-items", type=int, default=5000, help="items of the SQL stores' maps")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stores", default="file,sqlite,postgres")
    parser.add_argument(
        "--workers", type=int, default=None, help="executor max_workers (default: the executor's)"
    )
    opts = parser.parse_args()
    stores = [s for s in opts.stores.split(",") if s]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="durability-") as tmp:
        work = Path(tmp)
        (work / "pipeline.yaml").write_text(mapped(False))
        with store_lines(stores, work) as lines:
            for store, line in lines.items():
                measure(store, line, opts.items if store == "file" else opts.sql_items, opts, work)


if __name__ == "__main__":
    main()

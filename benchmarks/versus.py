"""This checkout against another (an older commit), side by side in one run: CPU per workload.

Usage: python benchmarks/versus.py BASE_SRC [--pairs 5] [--only chain50,map0,map100k] [--one-worker]

``BASE_SRC`` is the ``src`` folder of another checkout (``git worktree add /tmp/base REV``
then ``/tmp/base/src``). Each workload runs as ``conveyor execute -q`` with the file run
log, in a fresh process, alternately with this checkout's code (A) and the base's (B), so
that a drift of the machine's speed hits both. A run's figure is the CPU time (user +
system) of its whole process tree, from the kernel's accounting of the reaped child
(``os.wait4``), which counts the threads and the children it waited for: a busy machine
moves wall time much more than CPU time. Printed: each side's median CPU and the median of
the per-pair ratios A/B (below 1: this checkout is cheaper).

Both sides run with the same interpreter and installed packages; only ``conveyor`` differs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from core import chain, mapped

HERE = Path(__file__).resolve().parent
OURS = HERE.parent / "src"
WORKLOADS = {
    "chain50": (lambda: chain(50), None),
    "map0": (lambda: mapped(False), "n: 0\n"),
    "map1000": (lambda: mapped(False), "n: 1000\n"),
    "map30k": (lambda: mapped(False), "n: 30000\n"),
    "map100k": (lambda: mapped(False), "n: 100000\n"),
}


def command(src: Path) -> list[str]:
    """``conveyor`` from the source tree ``src``, whatever is installed."""
    code = f"import sys; sys.path.insert(0, {str(src)!r}); from conveyor.cli.main import run; run()"
    return [sys.executable, "-c", code]


def cpu_once(argv: list[str], work: Path) -> float:
    """CPU seconds (user + system) of one run's process tree; exits on a failed run."""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv[:3])} ... failed:\n{err[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    shutil.rmtree(work / "runs", ignore_errors=True)
    return usage.ru_utime + usage.ru_stime


def compare(name: str, base: Path, pairs: int, one_worker: bool = False) -> tuple[float, float]:
    """Run one workload ``pairs`` times on each side, alternately, and print the figures."""
    pipeline, params = WORKLOADS[name]
    with tempfile.TemporaryDirectory(prefix=f"versus-{name}-") as tmp:
        work = Path(tmp)
        (work / "pipeline.yaml").write_text(pipeline())
        executor = "executor: {type: local, config: {max_workers: 1}}\n" if one_worker else ""
        (work / "config.yaml").write_text(executor + "run_log_store: {type: file, config: {path: runs}}\n")
        args = ["execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
        if params:
            (work / "params.yaml").write_text(params)
            args += ["-p", "params.yaml"]
        ours, theirs = command(OURS) + args, command(base) + args
        cpu_once(ours, work)  # warm the file cache and the bytecode of both sides
        cpu_once(theirs, work)
        a, b = [], []
        for _ in range(pairs):
            a.append(cpu_once(ours, work))
            b.append(cpu_once(theirs, work))
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    print(
        f"{name:<8} this {statistics.median(a):7.3f}s  base {statistics.median(b):7.3f}s  "
        f"CPU ratio this/base {ratio:.3f} (median of {pairs} pairs; "
        f"this {min(a):.3f}-{max(a):.3f}, base {min(b):.3f}-{max(b):.3f})"
    )
    return statistics.median(a), statistics.median(b)


def main() -> None:
    """Parse the arguments and compare each workload asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path, help="the other checkout's src folder")
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--only", default="chain50,map100k", help=f"of {','.join(WORKLOADS)}")
    parser.add_argument(
        "--one-worker", action="store_true", help="run items one at a time (no thread pool's scheduling)"
    )
    opts = parser.parse_args()
    if not (opts.base / "conveyor" / "__init__.py").is_file():
        raise SystemExit(f"{opts.base}: not a src folder with a conveyor package in it")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, file run log; base: {opts.base}")
    medians = {name: compare(name, opts.base, opts.pairs, opts.one_worker) for name in opts.only.split(",")}
    # Per item: a map's CPU less the same map's with no items (start-up, the list and the sum).
    for name, count in (("map1000", 1000), ("map30k", 30_000), ("map100k", 100_000)):
        if name in medians and "map0" in medians:
            this, base = (1e6 * (medians[name][i] - medians["map0"][i]) / count for i in (0, 1))
            print(f"{name:<8} per item, less map0: this {this:.1f} us, base {base:.1f} us")


if __name__ == "__main__":
    main()

"""conveyor beside its peers and the floor, in one run: CPU of the whole process tree.

Usage: python benchmarks/peers.py [--rounds 5] [--only chain50,map1000] [--peers floor,kedro,...]
                                  [--venvs DIR] [--timeout 120] [--instructions [--cg-timeout 900]]

Workloads, each the same work in every system:

- ``chain50``: 50 no-op tasks, each after the one before;
- ``map1000``: a task lists 1,000 items, a no-op task runs on each, a last task sums what they returned;
- ``map100k``: the same with 100,000 items (the floor, conveyor and Dask's bag only: the
  others take minutes);
- ``map0``: the same map over no items (the floor, conveyor and Dask), so that
  ``--only map0,map100k`` also prints each one's CPU per item,
  (T(map100k) - T(map0)) / 100,000, from the medians.

Systems: conveyor (``conveyor execute -q`` from this checkout's ``src``, file run log: every
item's status, attempt and returns durable), and, each in a venv of its own built by this
script on first use (pinned below; ``--venvs``, default ``~/.cache/conveyor-bench/peers``):
Kedro (``SequentialRunner``, a node per item since Kedro has no map), Dask (``dask.delayed``
for the chain, ``dask.bag`` for maps, the threaded scheduler), Hamilton
(``Parallelizable``/``Collect``), Prefect (a flow of tasks, ``task.map``; its ephemeral API in
a fresh ``PREFECT_HOME``), Dagster (a job of ops, ``DynamicOut``, ``execute_in_process`` in a
fresh ``DAGSTER_HOME``) and runnable (its SDK, ``Map``). The floor is a plain Python program
that calls the same function per item and appends one JSON line per item to a file, with an
fsync every 1,000 lines: the least a durable record of each item costs.

Each round runs every (system, workload) once, in turn, so a drift of the machine's speed
hits all alike. A run's figure is the CPU time (user + system) of its process tree, from the
kernel's accounting of the reaped child (``os.wait4``). Printed per workload: each system's
median CPU and the median over rounds of its CPU divided by conveyor's in the same round. A
run that fails or passes ``--timeout`` is reported as such, not as a figure; a system whose
warm-up run passes the timeout is not run again for that workload (runnable's 1,000-item map
would cost the timeout every round). Logging is turned down everywhere (each system's own
setting) so that no one pays for a console.

``--instructions`` (slow: Python under valgrind runs some 50-100 times slower) then runs each
system once more per workload under ``valgrind --tool=callgrind --trace-children=yes`` and
prints the instructions executed and the ratio to conveyor's. Callgrind counts the user-space
instructions of every thread of every process of the tree (valgrind runs a process's threads
one at a time, so thread contention shows as the instructions spent on it, not as waiting);
nothing in the kernel is counted, so system time has no counterpart. A run that passes
``--cg-timeout`` is reported as such. Meant for the smaller workloads (chain50, map1000).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
#: Each peer's pinned requirements (its own venv).
PINS = {
    "kedro": ["kedro==1.7.0"],
    "dask": ["dask[bag]==2026.11.0"],
    "hamilton": ["sf-hamilton==1.90.0"],
    "prefect": ["prefect==3.9.1"],
    "dagster": ["dagster==1.13.29"],
    "runnable": ["runnable==0.50.0"],
}
SIZES = {"chain50": 50, "map1000": 1_000, "map100k": 100_000, "map0": 0}
#: Who runs map100k and map0 (the rest would take minutes per run at 100k).
BIG = {"floor", "conveyor", "dask"}

FLOOR = """
import json, os, sys
def touch(item): return item
n, kind = int(sys.argv[1]), sys.argv[2]
with open("record.jsonl", "a") as out:
    if kind == "chain":
        x = None
        for i in range(n):
            x = touch(i)
            out.write(json.dumps({"path": [f"s{i}"], "status": "SUCCEEDED", "attempt": 1}) + "\\n")
            out.flush(); os.fsync(out.fileno())
    else:
        values = []
        for i in range(n):
            values.append(touch(i))
            out.write(json.dumps({"path": ["fan", str(i), "touch"], "status": "SUCCEEDED",
                                  "attempt": 1, "returns": {"values": values[-1]}}) + "\\n")
            if i % 1000 == 999:
                out.flush(); os.fsync(out.fileno())
        out.flush(); os.fsync(out.fileno())
        print(sum(values))
"""

KEDRO = """
import logging, sys
from functools import partial
logging.disable(logging.WARNING)
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner
def noop(x=None): return 1
def items(): return list(range(N))
def pick(i, xs): return xs[i]
def total(*values): return sum(values)
n, kind = int(sys.argv[1]), sys.argv[2]
N = n
if kind == "chain":
    nodes = [node(noop, inputs=None, outputs="d0", name="s0")]
    nodes += [node(noop, inputs=f"d{i - 1}", outputs=f"d{i}", name=f"s{i}") for i in range(1, n)]
else:
    nodes = [node(items, inputs=None, outputs="xs", name="list")]
    nodes += [node(partial(pick, i), inputs="xs", outputs=f"v{i}", name=f"touch{i}") for i in range(n)]
    nodes.append(node(total, inputs=[f"v{i}" for i in range(n)], outputs="result", name="sum"))
SequentialRunner().run(Pipeline(nodes), DataCatalog())
"""

DASK = """
import sys
import dask
n, kind = int(sys.argv[1]), sys.argv[2]
def noop(x=None): return 1
def touch(item): return item
if kind == "chain":
    x = None
    for i in range(n):
        x = dask.delayed(noop)(x)
    x.compute(scheduler="threads")
else:
    import dask.bag as db
    bag = db.from_sequence(range(n), npartitions=max(1, min(100, n // 100)))
    print(bag.map(touch).sum().compute(scheduler="threads"))
"""

HAMILTON = """
import logging, sys, types
logging.disable(logging.WARNING)
from hamilton import driver
n, kind = int(sys.argv[1]), sys.argv[2]
mod = sys.modules["pipe"] = types.ModuleType("pipe")
if kind == "chain":
    src = ["def s0() -> int:\\n    return 1\\n"]
    src += [f"def s{i}(s{i - 1}: int) -> int:\\n    return 1\\n" for i in range(1, n)]
    exec("".join(src), mod.__dict__)
    driver.Builder().with_modules(mod).build().execute([f"s{n - 1}"])
else:
    exec('''
from hamilton.htypes import Collect, Parallelizable
def xs(n: int) -> Parallelizable[int]:
    for i in range(n):
        yield i
def touch(xs: int) -> int:
    return xs
def total(touch: Collect[int]) -> int:
    return sum(touch)
''', mod.__dict__)
    dr = driver.Builder().with_modules(mod).enable_dynamic_execution(allow_experimental_mode=True).build()
    print(dr.execute(["total"], inputs={"n": n})["total"])
"""

PREFECT = """
import sys
from prefect import flow, task
n, kind = int(sys.argv[1]), sys.argv[2]
@task
def noop(x=None): return 1
@task
def items(n): return list(range(n))
@task
def touch(item): return item
@task
def total(values): return sum(values)
@flow
def chain():
    x = None
    for i in range(n):
        x = noop(x)
@flow
def fan():
    xs = items(n)
    values = touch.map(xs).result()
    return total(values)
print(chain() if kind == "chain" else fan())
"""

DAGSTER = """
import sys
from dagster import DynamicOut, DynamicOutput, In, Nothing, job, op
n, kind = int(sys.argv[1]), sys.argv[2]
@op
def first(): return 1
@op
def noop(x): return 1
@op(out=DynamicOut())
def items():
    for i in range(n):
        yield DynamicOutput(i, mapping_key=str(i))
@op
def touch(item): return item
@op
def total(values): return sum(values)
@job
def chain():
    x = first.alias("s0")()
    for i in range(1, n):
        x = noop.alias(f"s{i}")(x)
@job
def fan():
    total(items().map(touch).collect())
result = (chain if kind == "chain" else fan).execute_in_process()
assert result.success
"""

RUNNABLE = """
import sys
from runnable import Map, Pipeline, PythonTask
import peer_tasks as t
def main():
    n, kind = int(sys.argv[1]), sys.argv[2]
    if kind == "chain":
        pipeline = Pipeline(steps=[PythonTask(name=f"s{i}", function=t.noop) for i in range(n)])
        pipeline.execute()
    else:
        branch = Pipeline(steps=[PythonTask(name="touch", function=t.touch, returns=["values"])])
        pipeline = Pipeline(steps=[
            PythonTask(name="list", function=t.items, returns=["xs"]),
            Map(name="fan", branch=branch, iterate_on="xs", iterate_as="item"),
            PythonTask(name="sum", function=t.total, returns=["result"]),
        ])
        pipeline.execute(parameters_file="params.yaml")
    return pipeline  # runnable finds the pipeline again by calling main()
if __name__ == "__main__":
    main()
"""

TASKS = """
def noop():
    return None
def items(n):
    return list(range(n))
def touch(item):
    return item
def total(values):
    return sum(values) if isinstance(values, list) else values
"""

PROGRAMS = {
    "floor": FLOOR,
    "kedro": KEDRO,
    "dask": DASK,
    "hamilton": HAMILTON,
    "prefect": PREFECT,
    "dagster": DAGSTER,
    "runnable": RUNNABLE,
}


def venv_python(name: str, root: Path) -> Path:
    """The python of ``name``'s own venv, built (pinned) on first use."""
    venv = root / name
    python = venv / "bin" / "python"
    marker = venv / ".pins"
    pins = " ".join(PINS[name])
    if not python.exists() or not marker.exists() or marker.read_text() != pins:
        print(f"building the {name} venv ({pins}) in {venv}", file=sys.stderr)
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *PINS[name]], check=True)
        marker.write_text(pins)
    return python


def conveyor_files(work: Path, workload: str) -> list[str]:
    """Write conveyor's pipeline for ``workload`` into ``work``; its command's arguments."""
    sys.path.insert(0, str(HERE))
    from core import chain, mapped

    size = SIZES[workload]
    (work / "pipeline.yaml").write_text(chain(size) if workload == "chain50" else mapped(False))
    (work / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (work / "params.yaml").write_text(f"n: {size}\n")
    args = ["execute", "-q", "-f", "pipeline.yaml", "-c", "config.yaml"]
    return args + ([] if workload == "chain50" else ["-p", "params.yaml"])


def commands(peers: list[str], workload: str, work: Path, venvs: Path) -> dict[str, list[str]]:
    """Each system's command for ``workload`` (its files written into ``work``)."""
    (work / "peer_tasks.py").write_text(textwrap.dedent(TASKS))
    size, kind = SIZES[workload], "chain" if workload == "chain50" else "map"
    # This checkout's conveyor, whatever the interpreter has installed (as versus.py does).
    src = str(HERE.parent / "src")
    entry = f"import sys; sys.path.insert(0, {src!r}); from conveyor.cli.main import run; run()"
    out = {"conveyor": [sys.executable, "-c", entry, *conveyor_files(work, workload)]}
    for name in peers:
        if workload in ("map100k", "map0") and name not in BIG:
            continue
        (work / f"{name}_prog.py").write_text(textwrap.dedent(PROGRAMS[name]))
        python = Path(sys.executable) if name == "floor" else venv_python(name, venvs)
        out[name] = [str(python), f"{name}_prog.py", str(size), kind]
    return out


def cpu_once(argv: list[str], work: Path, timeout: float) -> float | str:
    """CPU seconds of one run's process tree, or why there is no figure (the caller has just
    reaped every earlier child: the figure is the growth of the children's total)."""
    env = dict(
        os.environ,
        PYTHONPATH=f"{work}{os.pathsep}{HERE}",
        PREFECT_HOME=str(work / "prefect"),
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="300",
        DAGSTER_HOME=str(work / "dagster"),
    )
    # The warm-up run writes bytecode, as an installed package has it: a shell that sets
    # PYTHONDONTWRITEBYTECODE would leave this checkout's src compiled anew at every run.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    (work / "dagster").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        argv, cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        _, err = proc.communicate(timeout=timeout)
    except BaseException as exc:  # a timeout, or this script stopped: its run goes with it
        os.killpg(proc.pid, 9)
        proc.communicate()
        if not isinstance(exc, subprocess.TimeoutExpired):
            raise
        children_cpu()
        return f"over {timeout:.0f} s"
    spent = children_cpu()
    for folder in ("runs", ".run_log_store", ".catalog", "record.jsonl"):
        target = work / folder
        shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
    if proc.returncode != 0:
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        return f"failed: {last[0][:120]}"
    return spent


_last_children = [0.0]


def children_cpu() -> float:
    """CPU of the children reaped since the last call: the growth of the kernel's total of
    this process's waited-for children (each child's own includes those it waited for)."""
    usage = os.times()
    total = usage.children_user + usage.children_system
    spent, _last_children[0] = total - _last_children[0], total
    return spent


def main() -> None:
    """Build the venvs wanted, run the rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", default="chain50,map1000")
    parser.add_argument("--peers", default=",".join(PROGRAMS))
    parser.add_argument("--venvs", type=Path, default=Path.home() / ".cache/conveyor-bench/peers")
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--instructions", action="store_true", help="also count instructions (callgrind)")
    parser.add_argument("--cg-timeout", type=float, default=900.0, help="seconds for one run under callgrind")
    opts = parser.parse_args()
    if opts.instructions and not shutil.which("valgrind"):
        raise SystemExit("--instructions needs valgrind (Debian package valgrind) on PATH")
    # A TERM (a timeout, a kill) ends this script by SystemExit, so the run in progress is
    # killed with it: each run is in a session of its own and would be left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    peers = [p for p in opts.peers.split(",") if p]
    unknown = sorted(set(peers) - set(PROGRAMS))
    if unknown:
        raise SystemExit(f"unknown peer(s) {unknown}; known: {sorted(PROGRAMS)}")
    children_cpu()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; CPU of each process tree, seconds")
    medians: dict[str, dict[str, float]] = {}
    for workload in opts.only.split(","):
        with tempfile.TemporaryDirectory(prefix=f"peers-{workload}-") as tmp:
            work = Path(tmp)
            cmds = commands(peers, workload, work, opts.venvs)
            figures: dict[str, list[float | str]] = {name: [] for name in cmds}  # in the order run
            for name, argv in list(cmds.items()):  # warm: bytecode, file cache, first-run set-up
                warm = cpu_once(argv, work, opts.timeout)
                if isinstance(warm, str) and warm.startswith("over"):
                    figures[name].append(f"{warm} (warm-up run; not run again)")
                    del cmds[name]
            children_cpu()
            for _ in range(opts.rounds):
                for name, argv in cmds.items():
                    figures[name].append(cpu_once(argv, work, opts.timeout))
            if opts.rounds:  # --rounds 0: instruction counts only
                medians[workload] = report(workload, figures)
            if opts.instructions:
                counts = {name: instructions_once(argv, work, opts.cg_timeout) for name, argv in cmds.items()}
                report_instructions(workload, counts)
    if "map0" in medians and "map100k" in medians:
        print(f"\nCPU per item, (T(map100k) - T(map0)) / {SIZES['map100k']:,} from the medians")
        for name, big in medians["map100k"].items():
            if name in medians["map0"]:
                per_item = (big - medians["map0"][name]) / SIZES["map100k"] * 1e6
                print(f"  {name:<9} {per_item:6.2f} us")


def instructions_once(argv: list[str], work: Path, timeout: float) -> int | str:
    """Instructions of one run under callgrind, every process of its tree (one output file
    each, summed), or why there is no figure."""
    out = work / "callgrind"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    grind = ["valgrind", "--tool=callgrind", "--trace-children=yes", f"--callgrind-out-file={out}/cg.%p"]
    spent = cpu_once([*grind, *argv], work, timeout)
    if isinstance(spent, str):
        return spent
    total = 0
    for dump in out.iterdir():
        for line in dump.read_text(errors="replace").splitlines():
            if line.startswith("summary:") or line.startswith("totals:"):
                total += int(line.split()[1])
                break
    return total


def report_instructions(workload: str, counts: dict[str, int | str]) -> None:
    """One workload's instruction counts and their ratio to conveyor's."""
    print(f"\n{workload}: instructions (callgrind, user space, all threads and processes)")
    ours = counts.get("conveyor")
    for name, count in counts.items():
        if isinstance(count, str):
            print(f"  {name:<9} no figure ({count})")
            continue
        ratio = f"{count / ours:7.2f}x conveyor" if isinstance(ours, int) and ours else ""
        print(f"  {name:<9} {count / 1e6:10.1f} M  {ratio}")


def report(workload: str, figures: dict[str, list[float | str]]) -> dict[str, float]:
    """One workload's table: median CPU and the median per-round ratio to conveyor; the
    medians of the systems with a figure in every round."""
    print(f"\n{workload}")
    ours = figures["conveyor"]
    medians: dict[str, float] = {}
    for name, runs in figures.items():
        numbers = [r for r in runs if isinstance(r, float)]
        if len(numbers) < len(runs):
            why = next(r for r in runs if isinstance(r, str))
            print(f"  {name:<9} no figure ({len(runs) - len(numbers)} of {len(runs)} runs: {why})")
            continue
        medians[name] = statistics.median(numbers)
        ratios = [
            r / c for r, c in zip(runs, ours, strict=True) if isinstance(r, float) and isinstance(c, float)
        ]
        ratio = f"{statistics.median(ratios):7.2f}x conveyor" if ratios else ""
        spread = f"{min(numbers):.3f}-{max(numbers):.3f}"
        print(f"  {name:<9} {statistics.median(numbers):8.3f} s  ({spread})  {ratio}")
    return medians


if __name__ == "__main__":
    main()

"""The cost of privilege separation: a 1,000-item map on a sandboxed server against the same
map run locally, side by side in one run.

Each round runs the map locally (``conveyor execute -q``, the default file run log) and then
on a server per database given (SQLite, and PostgreSQL in a throwaway cluster started here),
each server started once with one worker and the sandbox on (bubblewrap) and kept for all
rounds. Figures, medians of the rounds:

- local: CPU (user + system) of the ``conveyor execute`` process tree and its wall time;
- server: CPU of the server's whole process tree while the run is served (its API, its
  worker, the run's sandbox, engine and steps: a cpuacct cgroup the server is moved into,
  where cgroup v1 is writable; else ``/proc``, which misses what the sandbox's own init
  reaps), the run's wall time as the API records it (claimed to ended), and submit-to-end
  as the client sees it.

Each conveyor given (``--python PY`` or ``--python PY@SRC``: an interpreter, and optionally
a ``src`` folder put first on PYTHONPATH, e.g. another commit's worktree) is measured in
turn, rounds alternated.

    python benchmarks/server_map.py [--rounds 3] [--items 1000] [--db sqlite,postgres]
        [--python .venv/bin/python@/work/other/src ...]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE.parent / "tests" / "tasks")]

from support.server import tarball_of  # noqa: E402
from support.services import Postgres, Server  # noqa: E402

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
TICK = os.sysconf("SC_CLK_TCK")


def _tree(root: int) -> dict[int, float]:
    """``root`` and its live descendants: their CPU seconds, waited-for children included."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        cpu[int(entry)] = sum(int(f) for f in fields[11:15]) / TICK  # utime stime cutime cstime
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        found[pid] = cpu.get(pid, 0.0)
        todo.extend(child for child, parent in parents.items() if parent == pid)
    return found


def tree_cpu(root: int) -> float:
    """CPU seconds of ``root``'s process tree, as far as ``/proc`` shows it: processes that
    are not waited for by their parent (a sandbox's own init) are missed."""
    return sum(_tree(root).values())


class Meter:
    """CPU of a server's whole process tree: a cpuacct cgroup of its own (cgroup v1, where
    writable: exact, sandboxes included, as every process started in it stays in it), else
    ``/proc`` (:func:`tree_cpu`). Which one is said by :attr:`how`."""

    ROOT = Path("/sys/fs/cgroup/cpuacct")

    def __init__(self, root: int) -> None:
        self.root = root
        self.group: Path | None = self.ROOT / f"conveyor-bench-{os.getpid()}-{root}"
        try:
            self.group.mkdir()
            for pid in _tree(root):
                with contextlib.suppress(ProcessLookupError):
                    (self.group / "cgroup.procs").write_text(str(pid))
        except OSError:
            self.group = None
        self.how = "cgroup cpuacct" if self.group else "/proc (sandboxes' own CPU missed)"

    def read(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        return tree_cpu(self.root)

    def close(self) -> None:
        """Once the server has stopped: remove the cgroup."""
        if self.group is not None:
            with contextlib.suppress(OSError):
                for pid in (self.group / "cgroup.procs").read_text().split():
                    with contextlib.suppress(OSError):
                        (self.ROOT / "cgroup.procs").write_text(pid)
                self.group.rmdir()


@dataclass
class Conveyor:
    """One conveyor to measure: an interpreter, and the source folder it runs (or its own)."""

    python: str
    src: str | None
    figures: dict[str, list[tuple[float, ...]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> Conveyor:
        python, _, src = text.partition("@")
        return cls(python, src or None)

    def env(self, *paths: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        given = ([self.src] if self.src else []) + list(paths)
        if given:
            env["PYTHONPATH"] = os.pathsep.join(given)
        return env

    def add(self, kind: str, figures: tuple[float, ...]) -> None:
        self.figures.setdefault(kind, []).append(figures)


def local(conveyor: Conveyor, items: int) -> tuple[float, float]:
    """(CPU, wall) of the map run locally with ``conveyor execute -q``."""
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        work = Path(tmp)
        (work / "pipeline.yaml").write_text(PIPELINE)
        (work / "params.yaml").write_text(yaml.safe_dump({"items": list(range(items))}))
        env = conveyor.env(str(HERE))
        env["XDG_DATA_HOME"] = str(work / "data")
        before = _children_cpu()
        started = time.perf_counter()
        argv = [conveyor.python, "-m", "conveyor.cli", "execute", "-q", "-f", "pipeline.yaml"]
        done = subprocess.run([*argv, "-p", "params.yaml"], cwd=work, env=env, capture_output=True)
        wall = time.perf_counter() - started
        if done.returncode:
            raise SystemExit(f"the local run failed:\n{done.stderr.decode()[-2000:]}")
        return _children_cpu() - before, wall


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def start_server(conveyor: Conveyor, url: str, work: Path) -> Server:
    """A server with one worker, as the tests start one, running ``conveyor``'s code."""
    sys.executable = conveyor.python  # Server starts `sys.executable -m conveyor.cli`
    server = Server(url, work, workers=1, lease=15)
    server.env = {**server.env, **conveyor.env()}
    if "PYTHONPATH" not in conveyor.env():
        server.env.pop("PYTHONPATH", None)
    server.env["XDG_DATA_HOME"] = str(work / "data")
    return server.start()


def served(server: Server, meter: Meter, items: int, code: str) -> tuple[float, float, float]:
    """(CPU of the server's tree, run wall, submit-to-end) for one run of the map."""
    with server.client("ann") as ann:
        body = {"pipeline": PIPELINE, "parameters": {"items": list(range(items))}, "code": code}
        before = meter.read()
        submitted = time.perf_counter()
        run_id = ann.post("/runs", json=body).json()["id"]
        while True:
            run = ann.get(f"/runs/{run_id}").json()
            if run["status"] in ("succeeded", "failed", "cancelled"):
                break
            time.sleep(0.1)  # the API's own CPU for these reads counts: not too often
        end = time.perf_counter() - submitted
        time.sleep(0.3)  # the worker waits for the run's processes (their CPU reaches it)
        cpu = meter.read() - before
    if run["status"] != "succeeded":
        raise SystemExit(f"the server run failed: {run.get('error')}")
    return cpu, float(run["ended_at"]) - float(run["started_at"]), end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", help="PY or PY@SRC (repeat); default: this python")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--db", default="sqlite,postgres", help="sqlite, postgres or both")
    args = parser.parse_args()
    conveyors = [Conveyor.parse(p) for p in args.python or [sys.executable]]
    code = tarball_of(HERE)  # bench_tasks.py and its neighbours, as the run's code
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
        postgres = Postgres() if "postgres" in kinds else None
        urls = {"sqlite": f"sqlite:///{tmp}/server-{{}}.db"}
        if postgres is not None:
            base = postgres.start()
            urls["postgres"] = base
        servers: dict[tuple[int, str], Server] = {}
        meters: dict[tuple[int, str], Meter] = {}
        try:
            for index, conveyor in enumerate(conveyors):
                for kind in kinds:
                    url = urls[kind].format(index)
                    if kind == "postgres":
                        from support.services import fresh_database

                        url = fresh_database(url, f"bench{index}_")
                    folder = Path(tmp) / f"{kind}-{index}"
                    folder.mkdir()
                    servers[index, kind] = server = start_server(conveyor, url, folder)
                    assert server.proc is not None
                    meters[index, kind] = Meter(server.proc.pid)
                    served(server, meters[index, kind], 10, code)  # warm: imports, the first claim
            for _ in range(args.rounds):
                for index, conveyor in enumerate(conveyors):
                    conveyor.add("local", local(conveyor, args.items))
                    for kind in kinds:
                        conveyor.add(
                            kind, served(servers[index, kind], meters[index, kind], args.items, code)
                        )
        finally:
            for server in servers.values():
                server.stop()
            for meter in meters.values():
                meter.close()
            if postgres is not None:
                postgres.stop()
    how = next(iter(meters.values())).how if meters else "-"
    print(f"{args.items:,}-item map, local and on a sandboxed server (1 worker), medians of {args.rounds}:")
    print(f"  (server CPU measured by {how}; local CPU: the waited-for process tree)")
    for conveyor in conveyors:
        print(f"  {conveyor.python}{' @ ' + conveyor.src if conveyor.src else ''}")
        cpu0, wall0 = (statistics.median(f[i] for f in conveyor.figures["local"]) for i in (0, 1))
        print(f"    local      CPU {cpu0:6.2f} s            wall {wall0:6.2f} s")
        for kind in kinds:
            cpu, wall, end = (statistics.median(f[i] for f in conveyor.figures[kind]) for i in (0, 1, 2))
            print(
                f"    {kind:10s} CPU {cpu:6.2f} s (x{cpu / cpu0:.2f})  run wall {wall:6.2f} s "
                f"(x{wall / wall0:.2f})  submit-to-end {end:6.2f} s (x{end / wall0:.2f})"
            )


if __name__ == "__main__":
    main()

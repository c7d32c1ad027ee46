"""Per-run resource limits on the server: no run starves the others or the server.

The operator sets them (environment of ``conveyor server start``); the defaults suit a
shared machine. Each names the variable that sets it:

=============================  ==========  ===================================================
variable                       default     what it bounds, and how
=============================  ==========  ===================================================
CONVEYOR_RUN_MAX_PROCESSES     1024        processes and threads of the run, together: a
                                           ``pids`` cgroup (v1 or v2)
CONVEYOR_RUN_MAX_MEMORY_MB     8192        memory of the run, together: a ``memory`` cgroup;
                                           without one, the address space of each process
CONVEYOR_RUN_MAX_CPU_SECONDS   86400       CPU time of each process (RLIMIT_CPU)
CONVEYOR_RUN_MAX_OPEN_FILES    4096        open files of each process (RLIMIT_NOFILE)
CONVEYOR_RUN_MAX_DISK_MB       10240       the run's work directory (the worker measures it
                                           every few seconds) and any one file (RLIMIT_FSIZE)
CONVEYOR_RUN_MAX_SECONDS       604800      wall time of the run
=============================  ==========  ===================================================

cgroups: v1 where ``/sys/fs/cgroup/pids`` and ``/sys/fs/cgroup/memory`` are writable (a
child of the worker's own cgroup, else of the hierarchy's root); v2 under the delegated
directory named by ``CONVEYOR_CGROUP_ROOT`` (its ``cgroup.subtree_control`` must enable
``pids`` and ``memory``). Without cgroups, a process count cannot be bounded for root, and
memory is bounded per process only: ``conveyor server start`` says which applies.
"""

from __future__ import annotations

import contextlib
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

V1 = Path("/sys/fs/cgroup")


def _env(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, default)))
    except ValueError:
        return default


@dataclass
class RunLimits:
    """The operator's limits for one run (0: unbounded)."""

    processes: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_PROCESSES", 1024))
    memory_mb: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_MEMORY_MB", 8192))
    cpu_seconds: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_CPU_SECONDS", 86400))
    open_files: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_OPEN_FILES", 4096))
    disk_mb: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_DISK_MB", 10240))
    seconds: int = field(default_factory=lambda: _env("CONVEYOR_RUN_MAX_SECONDS", 604800))


def _own_cgroup(controller: str) -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, names, path = line.split(":", 2)
            if controller in names.split(","):
                return path.lstrip("/")
    return ""


def _make(parents: list[Path], name: str) -> Path | None:
    for parent in parents:
        try:
            group = parent / name
            group.mkdir(exist_ok=True)
            return group
        except OSError:
            continue
    return None


class Confinement:
    """The cgroups and rlimits of one run: made before it starts, read and removed after."""

    def __init__(self, run_id: str, limits: RunLimits | None = None) -> None:
        self.limits = limits or RunLimits()
        self.groups: dict[str, Path] = {}
        self.version = 0
        name = f"conveyor-{run_id}"
        v2 = os.environ.get("CONVEYOR_CGROUP_ROOT")
        if v2:
            group = _make([Path(v2)], name)
            if group is not None:
                self.version = 2
                self.groups = {"pids": group, "memory": group}
                self._write("pids", "pids.max", self.limits.processes)
                self._write("memory", "memory.max", self.limits.memory_mb << 20)
                self._write("memory", "memory.swap.max", 0)
            return
        for controller, knob, value in (
            ("pids", "pids.max", self.limits.processes),
            ("memory", "memory.limit_in_bytes", self.limits.memory_mb << 20),
        ):
            root = V1 / controller
            if not value or not (root / "cgroup.procs").exists():
                continue
            own = root / _own_cgroup(controller)
            group = _make([own, root] if own != root else [root], name)
            if group is not None:
                self.groups[controller] = group
                self.version = 1
                self._write(controller, knob, value)

    def _write(self, controller: str, knob: str, value: int) -> None:
        if not value:
            return
        try:
            (self.groups[controller] / knob).write_text(str(value))
        except OSError:
            self.groups.pop(controller, None)

    def describe(self) -> str:
        """Which mechanism bounds what, for the server's start-up message."""
        kinds = sorted(self.groups)
        how = f"cgroup v{self.version} ({', '.join(kinds)})" if kinds else "no cgroups"
        return f"{how}, rlimits (CPU time, open files, file size{'' if 'memory' in kinds else ', memory'})"

    def preexec(self) -> Callable[[], None]:
        """What the run's first process does before it starts: join the cgroups, set rlimits."""
        procs = [group / "cgroup.procs" for group in dict.fromkeys(self.groups.values())]
        limits = self.limits
        by_process = "memory" not in self.groups

        def enter() -> None:
            for path in procs:
                with contextlib.suppress(OSError):
                    path.write_text(str(os.getpid()))
            rules = [
                (resource.RLIMIT_CPU, limits.cpu_seconds),
                (resource.RLIMIT_NOFILE, limits.open_files),
                (resource.RLIMIT_FSIZE, limits.disk_mb << 20),
                (resource.RLIMIT_CORE, 0),
            ]
            if by_process:
                rules.append((resource.RLIMIT_AS, limits.memory_mb << 20))
            if "pids" not in self.groups and os.getuid() != 0:
                rules.append((resource.RLIMIT_NPROC, limits.processes))
            for rule, value in rules:
                if value or rule == resource.RLIMIT_CORE:
                    with contextlib.suppress(ValueError, OSError):
                        resource.setrlimit(rule, (value, value))

        return enter

    def _count(self, controller: str, knob: str, key: str) -> int:
        group = self.groups.get(controller)
        if group is None:
            return 0
        try:
            for line in (group / knob).read_text().splitlines():
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def exceeded(self) -> list[str]:
        """The limits the run ran into, one message each (empty if none)."""
        found = []
        if self._count("pids", "pids.events", "max"):
            found.append(
                f"the run reached its limit of {self.limits.processes:,} processes and threads "
                "(CONVEYOR_RUN_MAX_PROCESSES): starting more failed"
            )
        knob, key = ("memory.events", "oom_kill") if self.version == 2 else ("memory.oom_control", "oom_kill")
        if self._count("memory", knob, key):
            found.append(
                f"the run reached its memory limit of {self.limits.memory_mb:,} MiB "
                "(CONVEYOR_RUN_MAX_MEMORY_MB): a process of it was killed"
            )
        return found

    def remove(self) -> None:
        """Remove the run's cgroups (once its processes are gone)."""
        for group in dict.fromkeys(self.groups.values()):
            with contextlib.suppress(OSError):
                group.rmdir()


def disk_usage(root: Path, stop_at: int) -> int:
    """Bytes held under ``root`` (links not followed), counting no further than ``stop_at``."""
    total, stack = 0, [str(root)]
    while stack and total <= stop_at:
        try:
            entries = list(os.scandir(stack.pop()))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                else:
                    total += entry.stat(follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return total

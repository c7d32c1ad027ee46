"""Steps a hostile user submits to a shared server: each tries to get out of its run.

Every object these steps return carries a ``__reduce__`` that, when unpickled, writes a
marker file at a path outside the sandbox: the marker appears only if something outside the
sandbox unpickled it (inside, the path's folder does not exist and nothing can be written).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any


def detonate(marker: str, label: str) -> dict[str, Any]:
    """What unpickling a Bomb runs: leave a trace at ``marker``, if this process can."""
    try:
        with open(marker, "a") as out:
            out.write(f"{label} unpickled in pid {os.getpid()}\n")
    except OSError:
        pass
    return {"bomb": label}


class Bomb:
    """An object whose unpickling runs :func:`detonate`."""

    def __init__(self, marker: str, label: str) -> None:
        self.marker, self.label = marker, label

    def __reduce__(self) -> tuple[Any, ...]:
        return (detonate, (self.marker, self.label))


def make_bomb(marker: str) -> Bomb:
    """An object return that runs code when unpickled."""
    return Bomb(marker, "return")


def item_bomb(marker: str, item: int) -> Bomb:
    """A map item's object return (the reducer's input)."""
    return Bomb(marker, f"item {item}")


def count(values: list[Any]) -> int:
    """A reducer: how many values it got (each a Bomb, unpickled here)."""
    return len(values)


def use_bomb(bomb: Any) -> str:
    """The consuming step: the object arrives (unpickled in this step's process)."""
    return str(bomb.get("bomb")) if isinstance(bomb, dict) else type(bomb).__name__


def stamp() -> str:
    """A value that differs on every execution: a cached result is recognised by it."""
    return uuid.uuid4().hex


def look_around(home_file: str, pg_socket: str, pg_dir: str) -> dict[str, str]:
    """What a step can see of the server user's home and PostgreSQL's unix socket."""
    seen: dict[str, str] = {}
    try:
        seen["home_file"] = f"read {len(Path(home_file).read_bytes())} bytes"
    except OSError as exc:
        seen["home_file"] = f"refused: {type(exc).__name__}"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(pg_socket)
            seen["pg_socket"] = "connected"
    except OSError as exc:
        seen["pg_socket"] = f"refused: {type(exc).__name__}"
    try:
        seen["pg_dir"] = ",".join(sorted(os.listdir(pg_dir))) or "empty"
    except OSError as exc:
        seen["pg_dir"] = f"refused: {type(exc).__name__}"
    seen["run_dir"] = ",".join(sorted(os.listdir("/run"))) or "empty"
    seen["home"] = ",".join(sorted(os.listdir(os.path.expanduser("~")))) or "empty"
    return seen


def plant_links(victim: str) -> None:
    """Replace the files the worker writes into the work directory with links to ``victim``
    (a file of the server user's), then fail, so that a retry prepares the directory again."""
    for name in ("pipeline.yaml", "params.yaml", ".conveyor-config.yaml", ".conveyor-runlog.jsonl"):
        if os.path.lexists(name):
            os.unlink(name)
        os.symlink(victim, name)
    if os.path.isdir("code"):
        os.rename("code", "code.old")
    os.symlink(os.path.dirname(victim), "code")
    raise RuntimeError("links planted")


def fork_swarm(count: int) -> int:
    """Start ``count`` sleeping processes (a fork bomb in slow motion)."""
    children = [subprocess.Popen(["sleep", "30"]) for _ in range(count)]
    for child in children:
        child.kill()
    return len(children)


def memory_hog(megabytes: int) -> int:
    """Allocate and touch ``megabytes`` of memory."""
    block = bytearray(megabytes << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    return len(block)


def disk_filler(megabytes: int) -> int:
    """Write ``megabytes`` into the work directory in 4 MiB files, then wait to be noticed."""
    for n in range(0, megabytes, 4):
        Path(f"filler-{n}.bin").write_bytes(b"\1" * (4 << 20))
    time.sleep(15)
    return megabytes


def secret_seen(name: str) -> dict[str, bool]:
    """Whether this step can see the secret ``name``: in its environment, or in any process
    of the sandbox it can read (the sandbox's first process holds the environment it began
    with). Says only whether, never the value."""
    seen = {"env": bool(os.environ.get(name)), "elsewhere": False}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as environ:
                if f"{name}=".encode() in environ.read():
                    seen["elsewhere"] = seen["elsewhere"] or int(pid) != os.getpid()
        except OSError:
            continue
    return seen

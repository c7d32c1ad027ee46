"""The sandbox a server run executes in: its engine and every step, under bubblewrap.

Everything that interprets what a user made (their code, the objects it returns, cache
entries, catalog files, reducers, notebooks) runs in here; the trusted side (the worker)
only reads the run's relayed JSON (``conveyor.server.relay``). What a run sees:

- the host's file system read-only, with these hidden (empty): the server user's home
  (the run gets a fresh empty one), ``/run`` and ``/var/run`` (where PostgreSQL and other
  services keep their unix sockets), ``/tmp`` (sockets too; the run's temporary files go to
  its work directory), the server's data and state directories, the database's directory or
  socket directory, and any path the operator lists in ``CONVEYOR_SANDBOX_HIDE``;
- what Python needs to start, read-only, where it lies under a hidden directory (the
  interpreter's prefix and the import path: a virtual environment in a home);
- writable: the run's work directory, the user's catalog, and ``CONVEYOR_SANDBOX_EXTRA``;
- no network (loopback and abstract sockets included) unless ``network`` (Argo runs, or
  ``CONVEYOR_SANDBOX_NETWORK=1``); its own process, IPC and UTS namespaces; it dies with
  the worker.
"""

from __future__ import annotations

import os
import pwd
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def _paths(name: str) -> list[str]:
    return [p for p in os.environ.get(name, "").split(os.pathsep) if p]


def database_places(url: str) -> list[str]:
    """The database's own files: a SQLite file's directory, a PostgreSQL socket directory."""
    places = []
    if url.startswith("sqlite:///"):
        places.append(str(Path(url.removeprefix("sqlite:///")).parent))
    parts = urlsplit(url)
    for host in parse_qs(parts.query).get("host", []):
        if host.startswith("/"):
            places.append(host)
    if parts.hostname is None and url.startswith("postgresql"):
        places.append("/var/run/postgresql")
    return places


def _account_home() -> str:
    """The server user's home as the system knows it (``$HOME`` may say otherwise)."""
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        return "/"


def _under(path: str, places: list[str]) -> bool:
    return any(path == place or path.startswith(place.rstrip("/") + "/") for place in places)


@dataclass
class Sandbox:
    """How one run is confined; :meth:`argv` wraps its command in bubblewrap."""

    work: Path
    writable: list[Path] = field(default_factory=list)
    hidden: list[str] = field(default_factory=list)
    network: bool = False

    def hidden_places(self) -> list[str]:
        """Every directory (or file) the run must not see, real paths, existing ones."""
        wanted = [str(Path.home()), _account_home(), "/run", "/var/run", "/tmp", *self.hidden]
        wanted += _paths("CONVEYOR_SANDBOX_HIDE")
        places: list[str] = []
        for place in wanted:
            real = os.path.realpath(place)
            if os.path.exists(real) and real != "/" and real not in places:
                places.append(real)
        return sorted(places, key=len)

    def _needed(self, hidden: list[str]) -> list[str]:
        """What Python needs to start, where it lies under a hidden place (bound read-only)."""
        needed = [sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.dirname(sys.executable)]
        # The import path, but not the worker's working directory (``-m`` puts it first).
        needed += [p for p in sys.path if p and os.path.realpath(p) != os.path.realpath(os.getcwd())]
        needed.append(str(Path(__file__).resolve().parents[2]))  # conveyor itself
        out: list[str] = []
        for entry in needed:
            real = os.path.realpath(entry)
            if os.path.isdir(real) and _under(real, hidden) and real not in hidden and real not in out:
                out.append(real)
        return sorted(out, key=len)

    def argv(self, command: list[str]) -> list[str]:
        """``command`` as it runs in this sandbox."""
        bwrap = shutil.which("bwrap") or "bwrap"
        args = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        hidden = self.hidden_places()
        for place in hidden:
            args += ["--tmpfs", place] if os.path.isdir(place) else ["--ro-bind", "/dev/null", place]
        for place in self._needed(hidden):
            args += ["--ro-bind", place, place]
        extra = [os.path.realpath(p) for p in _paths("CONVEYOR_SANDBOX_EXTRA")]
        for real in extra:
            args += ["--bind", real, real]
        # An operator's writable path never shows the server's places again (other runs).
        for place in hidden:
            if any(place != real and _under(place, [real]) for real in extra) and os.path.isdir(place):
                args += ["--tmpfs", place]
        for folder in [self.work, *self.writable]:
            real = os.path.realpath(folder)
            args += ["--bind", real, real]
        home = self.work / ".home"
        # --cap-drop ALL: bubblewrap started by root would otherwise keep root's capabilities
        # in the sandbox (enough to unmount what hides the server's files); dropped from the
        # bounding set too, so no setuid program gets them back.
        args += ["--unshare-all", "--cap-drop", "ALL", "--die-with-parent", "--new-session"]
        args += ["--chdir", str(self.work)]
        args += ["--setenv", "HOME", str(home), "--setenv", "TMPDIR", str(self.work / ".tmp")]
        if self.network:
            args.append("--share-net")
        return [*args, "--", *command]

    def prepare(self) -> None:
        """Make the run's home and temporary directory (in its work directory)."""
        for name in (".home", ".tmp"):
            place = self.work / name
            if place.is_symlink() or (place.exists() and not place.is_dir()):
                place.unlink()  # planted by a step of an earlier attempt: never followed
            place.mkdir(exist_ok=True)


def mode() -> str:
    """``bwrap`` (the default: runs sandboxed) or ``none`` (the operator's weaker choice)."""
    return os.environ.get("CONVEYOR_SERVER_SANDBOX", "bwrap")

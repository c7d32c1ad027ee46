"""Checks of a backend's config that need no connection (a directory where a file should
be, a garbage URL), and, asked for, ones that connect (``conveyor validate -c --check``).

``registry.build`` runs the first kind before building any backend, so ``validate -c`` and
``execute`` agree on what is usable; each problem is one located message.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path

#: A Dask scheduler address: protocol, host, port.
DASK_ADDRESS = re.compile(r"^(tcp|tls|inproc|ucx|ws|wss)://[^\s/:]+(:\d{1,5})?/?$")
CONNECT_TIMEOUT = 5.0


def _local(path: str) -> bool:
    return "://" not in path or path.startswith("file://")


def _writable_place(path: Path, want_dir: bool) -> str | None:
    """Why ``path`` cannot be used (as a directory, or a file), or None if it can."""
    if path.exists():
        if want_dir and not path.is_dir():
            return f"{path} is a file where a directory should be"
        if not want_dir and path.is_dir():
            return f"{path} is a directory where a file should be"
        return None if os.access(path if want_dir else path.parent, os.W_OK) else f"{path} is not writable"
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so {path} cannot be made under it"
    return None if os.access(parent, os.W_OK) else f"{path} cannot be made: {parent} is not writable"


def _file_store(config: Mapping[str, object], connect: bool) -> list[str]:
    path = str(config.get("path", ".conveyor/runs"))
    if _local(path):
        problem = _writable_place(Path(path.removeprefix("file://")).expanduser(), want_dir=True)
        return [problem] if problem else []
    return _fsspec_reachable(path, config.get("storage_options"), connect)


def _sqlite_store(config: Mapping[str, object], connect: bool) -> list[str]:
    path = Path(str(config.get("path", ".conveyor/runs.db"))).expanduser()
    problem = _writable_place(path, want_dir=False)
    return [problem] if problem else []


def _sql_store(config: Mapping[str, object], connect: bool) -> list[str]:
    url = config.get("url")
    if not isinstance(url, str):
        return []
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        parsed.get_dialect()  # an unknown database kind fails here, not at the first run
    except ImportError:
        return []
    except Exception as exc:  # sqlalchemy's ArgumentError and friends: not a URL it knows
        return [f"'{url.split('@')[-1]}' is not a database URL: {exc}"]
    if not connect:
        return []
    try:
        from sqlalchemy import create_engine, text

        args = {"connect_timeout": int(CONNECT_TIMEOUT)} if parsed.get_backend_name() == "postgresql" else {}
        engine = create_engine(parsed, connect_args=args)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return [
            f"cannot connect to {parsed.render_as_string(hide_password=True)}: {type(exc).__name__}: {exc}"
        ]
    return []


def _fsspec_reachable(url: str, options: object, connect: bool) -> list[str]:
    if not connect:
        return []
    try:
        import fsspec.core

        if not isinstance(options, Mapping):
            if options:  # reported below, as fsspec's own errors are
                raise TypeError(f"storage_options must be a mapping, not {type(options).__name__}")
            options = {}
        fs, root = fsspec.core.url_to_fs(url, **options)
        fs.ls(root.rsplit("/", 1)[0] or root, detail=False)
    except FileNotFoundError:
        return []
    except Exception as exc:
        return [f"cannot reach {url}: {type(exc).__name__}: {exc}"]
    return []


def _catalog(config: Mapping[str, object], connect: bool) -> list[str]:
    location = str(config.get("location", ".conveyor/catalog"))
    if _local(location):
        problem = _writable_place(Path(location.removeprefix("file://")).expanduser(), want_dir=True)
        return [problem] if problem else []
    return _fsspec_reachable(location, config.get("storage_options"), connect)


def _dotenv(config: Mapping[str, object], connect: bool) -> list[str]:
    path = Path(str(config.get("location", ".env"))).expanduser()
    if path.exists() and not path.is_file():
        return [f"{path} is not a file"]
    if path.exists() and not os.access(path, os.R_OK):
        return [f"{path} is not readable"]
    return []


def _dask(config: Mapping[str, object], connect: bool) -> list[str]:
    address = config.get("address")
    if address is None:
        return []
    if not isinstance(address, str) or not DASK_ADDRESS.match(address):
        return [f"address {address!r} is not a Dask scheduler address, such as tcp://scheduler:8786"]
    if not connect:
        return []
    try:
        from distributed import Client

        Client(address, timeout=CONNECT_TIMEOUT, set_as_default=False).close()
    except Exception as exc:
        return [f"cannot connect to the Dask scheduler at {address}: {type(exc).__name__}: {exc}"]
    return []


CHECKS: dict[tuple[str, str], Callable[[Mapping[str, object], bool], list[str]]] = {
    ("conveyor.run_log_stores", "file"): _file_store,
    ("conveyor.run_log_stores", "sqlite"): _sqlite_store,
    ("conveyor.run_log_stores", "postgres"): _sql_store,
    ("conveyor.run_log_stores", "sql"): _sql_store,
    ("conveyor.catalogs", "file"): _catalog,
    ("conveyor.secrets", "dotenv"): _dotenv,
    ("conveyor.executors", "dask"): _dask,
}


def problems(group: str, kind: str, config: Mapping[str, object], connect: bool = False) -> list[str]:
    """What makes this backend's config unusable; with ``connect``, reaching it too."""
    check = CHECKS.get((group, kind))
    return check(config, connect) if check is not None else []

"""``conveyor server start|migrate|worker|users|tokens``."""

from __future__ import annotations

import os
import re
import signal
import sys
from typing import Any

from conveyor.cli.errors import friendly
from conveyor.errors import ConveyorError

#: The databases a server runs on, as a user writes their URLs.
DATABASES = "sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME"


def _url(db: str | None) -> str:
    """The server's database URL: ``--db``, else $CONVEYOR_SERVER_DB, else SQLite in the data
    directory. A URL given is checked before any driver sees it; a relative SQLite file is
    made absolute against this directory (runs execute in folders of their own)."""
    from conveyor.server.db import absolute_url, default_url

    given, source = (db, "--db") if db else (os.environ.get("CONVEYOR_SERVER_DB"), "CONVEYOR_SERVER_DB")
    if not given:
        return default_url()
    problem = _url_problem(given)
    if problem:
        from conveyor.cli.params import shown

        masked = re.sub(r"://[^@/]*@", "://…@", given)  # never echo a password
        raise ConveyorError(
            f"{source}: expected a database URL, {DATABASES}; found {shown(masked)}: {problem}"
        )
    return absolute_url(given)


def _url_problem(url: str) -> str | None:
    dialect = url.partition("://")[0].partition("+")[0] if "://" in url else ""
    if dialect not in ("sqlite", "postgresql"):
        return "a conveyor server keeps its data in SQLite or PostgreSQL"
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(url).port  # noqa: B018 - parsing the port is part of the check
    except (ArgumentError, ValueError) as exc:
        return str(exc)
    return None


def _safe(url: str) -> str:
    return url.split("@")[-1] if "@" in url else url


def _engine(db: str | None) -> Any:
    from conveyor.server.db import check, engine_for

    url = _url(db)
    engine = engine_for(url)
    try:
        check(engine)
    except Exception as exc:  # a message for the user, not a traceback
        raise ConveyorError(f"cannot reach the database {_safe(url)}: {type(exc).__name__}: {exc}") from None
    return engine


def _migrated(db: str | None) -> Any:
    """The database engine, its schema brought up to date first: creating the first user
    before the first ``server start`` is a newcomer's natural first step."""
    from conveyor.server.db import migrate as run_migrations

    engine = _engine(db)
    try:
        run_migrations(_url(db))
    except Exception as exc:  # a migration that cannot apply: say which database and why
        raise ConveyorError(f"migrating {_safe(_url(db))} failed: {type(exc).__name__}: {exc}") from None
    return engine


@friendly
def migrate(db: str | None) -> int:
    """``conveyor server migrate``: bring the database to the newest schema."""
    from conveyor.server.db import migrate as run_migrations

    url = _url(db)
    _engine(db)
    try:
        run_migrations(url)
    except Exception as exc:  # a migration that cannot apply: say which database and why
        raise ConveyorError(f"migrating {_safe(url)} failed: {type(exc).__name__}: {exc}") from None
    print(f"database {_safe(url)} is at the newest schema")
    return 0


@friendly
def start(db: str | None, host: str, port: int, workers: int, api_workers: int) -> int:
    """``conveyor server start``: migrations, run workers, then the HTTP API."""
    import shutil

    import uvicorn

    from conveyor.cli.params import check_listenable
    from conveyor.server.sandbox import mode as sandbox_mode
    from conveyor.server.supervise import Supervisor

    mode = sandbox_mode()
    if mode == "bwrap" and shutil.which("bwrap") is None:
        raise ConveyorError(
            "runs' steps are sandboxed with bubblewrap, which is not installed: "
            "apt-get install bubblewrap (or, for a server only you use, CONVEYOR_SERVER_SANDBOX=none)"
        )
    if mode == "none":
        print(
            "conveyor: warning: runs are NOT sandboxed (CONVEYOR_SERVER_SANDBOX=none): their steps run as "
            "this server's user and can read its database credentials and files; do not share this server",
            file=sys.stderr,
        )
    elif mode != "bwrap":
        raise ConveyorError(f"CONVEYOR_SERVER_SANDBOX must be 'bwrap' or 'none', not {mode!r}")
    from conveyor.server.limits import LimitError, check_bundles

    try:
        check_bundles()
    except LimitError as exc:
        raise ConveyorError(str(exc)) from None
    check_listenable(host, port)
    url = _url(db)
    code = migrate(url)
    if code:
        return code

    supervisor = Supervisor(url, workers)
    os.environ.update(CONVEYOR_SERVER_DB=url, CONVEYOR_SERVER_STATE=str(supervisor.state))
    supervisor.start()
    print(f"conveyor server on http://{host}:{port} with {workers} run workers; database {_safe(url)}")
    try:
        # uvicorn handles SIGTERM and SIGINT: either ends this call, then the workers stop.
        uvicorn.run(
            "conveyor.server.app:from_env",
            factory=True,
            host=host,
            port=port,
            workers=api_workers,
            log_level="warning",
        )
    finally:
        supervisor.stop()
    return 0


@friendly
def worker(db: str | None, once: bool) -> int:
    """``conveyor server worker``: claim and run queued runs (started by ``start``)."""
    from conveyor.server.supervise import die_with_supervisor
    from conveyor.server.worker import loop

    die_with_supervisor()
    _engine(db)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    loop(_url(db), once=once)
    return 0


@friendly
def users_create(db: str | None, name: str, admin: bool) -> int:
    """``conveyor server users create``."""
    from conveyor.server.auth import create_user

    user = create_user(_migrated(db), name, admin)
    print(f"created {'admin ' if user.is_admin else ''}user {user.name} (id {user.id})")
    return 0


@friendly
def tokens_create(db: str | None, name: str) -> int:
    """``conveyor server tokens create``: the token is printed once, stored hashed."""
    from conveyor.server.auth import create_token

    token_id, token = create_token(_migrated(db), name)
    print(token)
    print(f"token {token_id} for {name}: shown once, store it now", file=sys.stderr)
    return 0


@friendly
def tokens_revoke(db: str | None, token: str) -> int:
    """``conveyor server tokens revoke``."""
    from conveyor.server.auth import AuthError, revoke_token

    if token.isdigit() and int(token) >= 2**63:  # an id no database holds: too big for its integers
        raise AuthError("no such token")
    token_id = revoke_token(_migrated(db), token)
    print(f"revoked token {token_id}")
    return 0


@friendly
def tokens_list(db: str | None, name: str) -> int:
    """``conveyor server tokens list``: ids and whether revoked, never the tokens."""
    from conveyor.server.auth import list_tokens

    for entry in list_tokens(_migrated(db), name):
        print(f"{entry['id']}\t{'revoked' if entry['revoked'] else 'active'}")
    return 0

"""The server's tables (SQLAlchemy Core) and database set-up; Alembic migrations manage them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from conveyor.runlog.sql import make_engine, tables

metadata = MetaData()

users = Table(
    "server_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("is_admin", Boolean, nullable=False, default=False),
    Column("created_at", Float, nullable=False),
)

tokens = Table(
    "server_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("user_id", Integer, ForeignKey("server_users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
)

sessions = Table(
    "server_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # The cookie holds a random id; only its SHA-256 is kept (as for tokens).
    Column("session_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("server_users.id"), nullable=False),
    # The token signed in with: revoking it ends its sessions too.
    Column("token_id", Integer, ForeignKey("server_tokens.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("revoked_at", Float, nullable=True),
    Index("server_sessions_expiry", "expires_at"),
)

runs = Table(
    "server_runs",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("user_id", Integer, ForeignKey("server_users.id"), nullable=False),
    Column("pipeline_name", String(200), nullable=False),
    #: The file the pipeline was submitted from, as the user named it (migration 0003).
    Column("pipeline_file", String(1000), nullable=True),
    #: The run this one re-runs with edited parameters (migration 0004): same pipeline, config
    #: and code. A plain id, not a foreign key: the old run may be purged before the new one.
    Column("rerun_of", String(64), nullable=True),
    Column("pipeline", Text, nullable=False),
    Column("config", Text, nullable=False),
    Column("parameters", Text, nullable=False),
    Column("code", LargeBinary, nullable=True),
    Column("status", String(20), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("ended_at", Float, nullable=True),
    Column("worker", String(100), nullable=True),
    Column("lease_until", Float, nullable=True),
    Column("claims", Integer, nullable=False, default=0),
    Column("cancel_requested", Boolean, nullable=False, default=False),
    Column("error", Text, nullable=True),
    Index("server_runs_queue", "status", "created_at"),
    Index("server_runs_user", "user_id", "created_at"),
)

#: A run's tags (migration 0005), one row each: the listing filters by one in SQL. A plain
#: run id, not a foreign key, as ``rerun_of`` is.
run_tags = Table(
    "server_run_tags",
    metadata,
    Column("run_id", String(64), primary_key=True),
    Column("tag", String(100), primary_key=True),
    Index("server_run_tags_tag", "tag", "run_id"),
)

run_log_runs, run_log_events, run_log_logs = tables(metadata)


def default_url() -> str:
    """A SQLite file in the user's data directory."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "conveyor"
    base.mkdir(mode=0o700, parents=True, exist_ok=True)
    return f"sqlite:///{base / 'server.db'}"


def absolute_url(url: str, cwd: str | None = None) -> str:
    """``url`` with a relative SQLite file made absolute against ``cwd`` (default: the current
    directory): the API, the workers and each run's process (which works in a folder of its
    own) must all open the same file. Other URLs, and in-memory SQLite, are left as they are."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite"):
        return url
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return url
    path = str(Path(cwd or os.getcwd()) / Path(database).expanduser())  # an absolute one stays
    return url if path == database else parsed.set(database=path).render_as_string(hide_password=False)


def _create_private(url: str) -> None:
    """Create a new SQLite database file readable by the server's user only (0600): it holds
    token hashes, every run's config and parameters. SQLite gives its journal and WAL files the
    database file's mode, so they follow. An existing file keeps the mode its operator chose."""
    from sqlalchemy.engine import make_url

    if not url.startswith("sqlite"):
        return
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    # There already: kept; its folder missing: SQLite reports that in its own words.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def engine_for(url: str) -> Any:
    """The server's database engine (SQLite or PostgreSQL) from its URL."""
    _create_private(url)
    return make_engine(url)


def check(engine: Any) -> None:
    """Raise if the database cannot be reached."""
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def migrate(url: str) -> str:
    """Bring the schema to the newest revision; return it."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    engine = engine_for(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    engine.dispose()
    return "head"

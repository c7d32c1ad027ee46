"""The first schema: users, tokens, the run queue, and the run log tables.

A database first used as a ``postgres``/``sql`` run log store already holds the run log
tables (``conveyor.runlog.sql`` creates them): they are adopted as they are, runs and all,
once their columns are checked to be the run log's; anything else of the same name is
refused with what to do.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from conveyor.errors import ConveyorError

#: The run log tables and their columns, as ``conveyor.runlog.sql.tables`` makes them.
RUN_LOG_COLUMNS = {
    "conveyor_runs": {"run_id", "status", "started_at", "data"},
    "conveyor_events": {"seq", "run_id", "data"},
    "conveyor_logs": {"location", "text"},
}


def _adoptable() -> set[str]:
    """The run log tables that exist already (a run log store's), after checking each has
    the run log's columns; ConveyorError saying what to do if one has not."""
    inspector = sa.inspect(op.get_bind())
    present = set(inspector.get_table_names()) & set(RUN_LOG_COLUMNS)
    for table in sorted(present):
        found = {c["name"] for c in inspector.get_columns(table)}
        if found != RUN_LOG_COLUMNS[table]:
            raise ConveyorError(
                f"the database already has a table '{table}' that is not conveyor's run log: its columns are "
                f"{', '.join(sorted(found))}; a run log's are {', '.join(sorted(RUN_LOG_COLUMNS[table]))}. "
                "Rename or drop that table, or give the server a database of its own"
            )
    return present


revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create users, tokens, the run queue and the run log tables (adopting a run log's)."""
    adopted = _adoptable()
    op.create_table(
        "server_users",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("is_admin", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "server_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("server_users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_table(
        "server_runs",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("server_users.id"), nullable=False),
        sa.Column("pipeline_name", sa.String(200), nullable=False),
        sa.Column("pipeline", sa.Text, nullable=False),
        sa.Column("config", sa.Text, nullable=False),
        sa.Column("parameters", sa.Text, nullable=False),
        sa.Column("code", sa.LargeBinary, nullable=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("started_at", sa.Float, nullable=True),
        sa.Column("ended_at", sa.Float, nullable=True),
        sa.Column("worker", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.Float, nullable=True),
        sa.Column("claims", sa.Integer, nullable=False),
        sa.Column("cancel_requested", sa.Boolean, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("server_runs_queue", "server_runs", ["status", "created_at"])
    op.create_index("server_runs_user", "server_runs", ["user_id", "created_at"])
    if "conveyor_runs" not in adopted:
        _run_log_runs()
    if "conveyor_events" not in adopted:
        _run_log_events()
    elif "conveyor_events_run" not in {
        i["name"] for i in sa.inspect(op.get_bind()).get_indexes("conveyor_events")
    }:
        op.create_index("conveyor_events_run", "conveyor_events", ["run_id", "seq"])
    if "conveyor_logs" not in adopted:
        _run_log_logs()


def _run_log_runs() -> None:
    op.create_table(
        "conveyor_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32)),
        sa.Column("started_at", sa.Float),
        sa.Column("data", sa.Text, nullable=False),
    )


def _run_log_events() -> None:
    op.create_table(
        "conveyor_events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("conveyor_events_run", "conveyor_events", ["run_id", "seq"])


def _run_log_logs() -> None:
    op.create_table(
        "conveyor_logs",
        sa.Column("location", sa.String(300), primary_key=True),
        sa.Column("text", sa.Text, nullable=False),
    )


def downgrade() -> None:
    """Drop everything ``upgrade`` made."""
    for table in (
        "conveyor_logs",
        "conveyor_events",
        "conveyor_runs",
        "server_runs",
        "server_tokens",
        "server_users",
    ):
        op.drop_table(table)

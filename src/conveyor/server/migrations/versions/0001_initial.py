"""The first schema: users, tokens, the run queue, and the run log tables.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create users, tokens, the run queue and the run log tables."""
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
    op.create_table(
        "conveyor_runs",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("status", sa.String(32)),
        sa.Column("started_at", sa.Float),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "conveyor_events",
        sa.Column(
            "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
        sa.Column("run_id", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_index("conveyor_events_run", "conveyor_events", ["run_id", "seq"])
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

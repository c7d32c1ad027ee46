"""The run a run re-runs with edited parameters (``POST /api/v1/runs/{id}/rerun``, the run
page's "Re-run with parameters…"): its page links back to it.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the re-run run's id to runs (empty for every run submitted before)."""
    with op.batch_alter_table("server_runs") as batch:
        batch.add_column(sa.Column("rerun_of", sa.String(64), nullable=True))


def downgrade() -> None:
    """Drop the re-run run's id."""
    with op.batch_alter_table("server_runs") as batch:
        batch.drop_column("rerun_of")

"""The name of the file a run's pipeline was submitted from (``conveyor submit -f PATH``), as
the user gave it: the run pages show it instead of the worker's own copy of the pipeline.

Revision ID: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the submitted file's name to runs (empty for runs submitted before)."""
    with op.batch_alter_table("server_runs") as batch:
        batch.add_column(sa.Column("pipeline_file", sa.String(1000), nullable=True))


def downgrade() -> None:
    """Drop the submitted file's name."""
    with op.batch_alter_table("server_runs") as batch:
        batch.drop_column("pipeline_file")

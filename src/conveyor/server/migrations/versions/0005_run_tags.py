"""Tags on server runs (``conveyor submit --tag``, the API's ``tags``): one row per run and
tag, so that the runs listing filters by a tag in SQL, through the index on ``tag``.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the run tags table (runs submitted before carry no tags)."""
    op.create_table(
        "server_run_tags",
        sa.Column("run_id", sa.String(64), primary_key=True),
        sa.Column("tag", sa.String(100), primary_key=True),
    )
    op.create_index("server_run_tags_tag", "server_run_tags", ["tag", "run_id"])


def downgrade() -> None:
    """Drop the run tags table."""
    op.drop_index("server_run_tags_tag", table_name="server_run_tags")
    op.drop_table("server_run_tags")

"""Web UI sessions kept by the server: a random id (stored hashed) per sign-in, bound to its
user, the token signed in with, an expiry and its CSRF token; signing out revokes it.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the sessions table."""
    op.create_table(
        "server_sessions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("session_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("server_users.id"), nullable=False),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("server_tokens.id"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.Column("expires_at", sa.Float, nullable=False),
        sa.Column("revoked_at", sa.Float, nullable=True),
    )
    op.create_index("server_sessions_expiry", "server_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop the sessions table."""
    op.drop_index("server_sessions_expiry", "server_sessions")
    op.drop_table("server_sessions")

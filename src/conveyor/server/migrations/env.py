"""Alembic environment: migrations run on the connection the server passes in."""

from __future__ import annotations

from alembic import context

from conveyor.server.db import metadata

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

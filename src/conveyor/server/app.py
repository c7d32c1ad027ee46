"""The app for uvicorn's own worker processes: ``conveyor.server.app:from_env`` (factory)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from conveyor.server.api import create_app
from conveyor.server.db import absolute_url


def from_env() -> FastAPI:
    """The app for uvicorn's workers: the database URL comes from the environment (a
    relative SQLite file is taken from this directory, as ``server start`` does)."""
    return create_app(absolute_url(os.environ["CONVEYOR_SERVER_DB"]))

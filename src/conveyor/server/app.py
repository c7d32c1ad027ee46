"""The app for uvicorn's own worker processes: ``conveyor.server.app:from_env`` (factory)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from conveyor.server.api import create_app


def from_env() -> FastAPI:
    """The app for uvicorn's workers: the database URL comes from the environment."""
    return create_app(os.environ["CONVEYOR_SERVER_DB"])

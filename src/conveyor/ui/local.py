"""The UI app of ``conveyor ui``: the pages over one run log store, for whoever can reach
the port (it listens on loopback unless told otherwise), read-only."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request

import conveyor
from conveyor.runlog.base import RunLogStore
from conveyor.ui.routes import UIState, ui_router
from conveyor.ui.source import LocalSource, Viewer


def local_app(store: RunLogStore, catalog: Path | None = None) -> FastAPI:
    """A FastAPI app serving the UI over ``store`` (and the file catalog folder ``catalog``,
    where runs' artifacts are read); at start it indexes the runs and folds the newest in
    the background, so that the first look costs what a later one does."""
    source = LocalSource(store, catalog)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=source.warm, name="conveyor-ui-warm", daemon=True).start()
        yield

    app = FastAPI(
        title="conveyor ui",
        version=conveyor.__version__,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=lifespan,
    )

    def anyone(request: Request) -> Viewer:
        return Viewer()

    app.state.ui = UIState(source, anyone, mode="local")
    app.include_router(ui_router())
    return app

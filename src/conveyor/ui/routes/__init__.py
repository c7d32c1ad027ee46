"""The UI's endpoints, one router per resource (``pages``: the shell, assets and session;
``runs``: listings, one run, map items; ``logs``: an attempt's output; ``metrics``;
``artifacts``: catalog files; ``compare``: two runs side by side).

The routers are built once, at import, and hold no state: what they share is the
:class:`~conveyor.ui.routes.deps.UIState` the app keeps in ``app.state.ui`` (``conveyor ui``
over a run log store, the server over its queue), reached through FastAPI dependencies.
"""

from fastapi import APIRouter

from conveyor.ui.routes import artifacts, compare, logs, metrics, pages, runs
from conveyor.ui.routes.deps import UIState

__all__ = ["UIState", "ui_router"]


def ui_router() -> APIRouter:
    """Every UI route, in the order they are matched (pages first). The app that includes
    it keeps a :class:`UIState` in ``app.state.ui``."""
    router = APIRouter()
    for part in (pages, runs, logs, metrics, artifacts, compare):
        router.include_router(part.router)
    return router

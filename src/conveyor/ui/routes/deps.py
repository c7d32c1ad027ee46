"""What the UI's endpoints share, reached through FastAPI dependencies: the
:class:`UIState` an app keeps in ``app.state.ui`` (the run source, who is looking, the
mode and the redaction), the viewer, and the run views a viewer may see."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from conveyor.runlog.base import RunNotFoundError
from conveyor.ui.app import Guard
from conveyor.ui.source import RunSource, Viewer
from conveyor.ui.views import RunView


def _unchanged(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class UIState:
    """Everything the UI's endpoints share: where runs come from (``source``), who is
    looking (``guard``, raising 401), ``mode`` (``local`` or ``server``, for the page) and
    ``redact`` (applied to configs and logs on their way out: the server hides credentials).
    Kept in ``app.state.ui`` by the app that mounts the routers, so that the routers hold
    no state and one endpoint can be served alone over a source of a test's choosing."""

    source: RunSource
    guard: Guard
    mode: str
    redact: Callable[[Any], Any] = field(default=_unchanged)


def redact_texts(ui: UIState, value: object) -> object:
    """``value`` (a page's JSON) with ``ui.redact`` applied to every string in it: errors, log
    heads, summaries and values recorded by a run may hold a URL's password, and each
    endpoint that shows them must hide it as the log endpoint does. Keys are left alone
    (only text is masked, so no field of the page is renamed or dropped)."""
    if ui.redact is _unchanged:
        return value
    if isinstance(value, str):
        return ui.redact(value)
    if isinstance(value, dict):
        return {k: redact_texts(ui, v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_texts(ui, v) for v in value]
    return value


async def ui_state(request: Request) -> UIState:
    """The app's UI state (see :class:`UIState`); a coroutine, so no thread is taken for it."""
    state: UIState = request.app.state.ui
    return state


UI = Annotated[UIState, Depends(ui_state)]


def viewer(request: Request, ui: UI) -> Viewer:
    """Who is looking, as the app's guard says (401 when nobody may)."""
    return ui.guard(request)


Look = Annotated[Viewer, Depends(viewer)]


def view_of(ui: UIState, run_id: str, viewer: Viewer) -> RunView:
    """The folded view of a run ``viewer`` may see; 404 as for a missing run otherwise.
    Raises RunNotFoundError for a run the source knows with no run log (yet)."""
    if not ui.source.visible(viewer, run_id):
        raise HTTPException(404, f"no run '{run_id}'")
    return ui.source.views.get(run_id)


def started_view(ui: UIState, run_id: str, viewer: Viewer) -> RunView:
    """:func:`view_of` for what only a started run has (logs, artifacts, map items): a run
    still queued answers 409, saying so, not a server error."""
    try:
        return view_of(ui, run_id, viewer)
    except RunNotFoundError:
        raise HTTPException(409, f"run '{run_id}' has not started yet: nothing is recorded") from None

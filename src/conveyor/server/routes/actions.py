"""The UI's actions on the server: cancel, retry and re-run with edited parameters, as POSTs
carrying the session's own CSRF token (``X-CSRF-Token``) and, when the browser says where
they come from, an ``Origin`` of this server; and a run's lineage (the run it re-runs, the
runs that re-run it, its submitted parameters) for the run page's links and form."""

import hmac
import json
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from conveyor.server import queue
from conveyor.server.auth import Session
from conveyor.server.db import runs
from conveyor.server.pages import _same_origin
from conveyor.server.routes.deps import ServerState
from conveyor.server.routes.signin import current
from conveyor.server.schemas import MAX_BODY
from conveyor.server.submission import Refused, parameters_from_text, rerun
from conveyor.ui.routes.deps import UI
from conveyor.ui.source import Viewer

router = APIRouter()


class RerunForm(BaseModel):
    """The body of the run page's re-run form: the parameters as the user wrote them (YAML or
    JSON text), read on the server so that its issues are located in that text."""

    model_config = ConfigDict(extra="forbid")

    parameters: Annotated[str, Field(max_length=MAX_BODY)]


def _acting(request: Request) -> Session:
    """The session of a request that may act: 403 without the session's CSRF token or from
    another origin (401 without a session)."""
    session = current(request)
    sent = request.headers.get("x-csrf-token", "")
    if not _same_origin(request) or not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, "cross-site request refused (missing or wrong CSRF token)")
    return session


def _seen(state: ServerState, viewer: Viewer, run_id: str) -> queue.QueuedRun:
    """The queue's row of a run the viewer may see; 404 (as for a missing run) otherwise."""
    run = queue.get(state.readonly, run_id)
    if run is None or not (viewer.admin or run["user_id"] == viewer.id):
        raise HTTPException(404, f"no run '{run_id}'")
    return run


@router.get("/ui/api/runs/{run_id}/lineage", include_in_schema=False)
def lineage(request: Request, run_id: str) -> JSONResponse:
    """The run it re-runs, the runs (the viewer may see) that re-run it, and the parameters it
    was submitted with (what the re-run form starts from)."""
    user = current(request).user
    viewer = Viewer(user.name, user.is_admin, user.id)
    state: ServerState = request.app.state.server
    run = _seen(state, viewer, run_id)
    later = select(runs.c.id).where(runs.c.rerun_of == run_id).order_by(runs.c.created_at)
    if not viewer.admin:
        later = later.where(runs.c.user_id == viewer.id)
    with state.readonly.connect() as conn:
        reruns = [str(i) for (i,) in conn.execute(later)]
    origin = run["rerun_of"]
    # A run purged since is still named, not linked.
    gone = origin is not None and queue.get(state.readonly, origin) is None
    return JSONResponse(
        {
            "rerun_of": origin,
            "rerun_of_gone": gone,
            "reruns": reruns,
            "parameters": json.loads(run["parameters"] or "{}"),
        }
    )


@router.post("/ui/api/runs/{run_id}/rerun", include_in_schema=False)
def rerun_with(request: Request, run_id: str, form: RerunForm) -> JSONResponse:
    """A new run of the run's pipeline, config and code with the edited parameters, through
    the API's own submission checks; 422 with located issues for parameters that cannot be
    read or are refused, 404 for a run the user cannot see."""
    user = _acting(request).user
    viewer = Viewer(user.name, user.is_admin, user.id)
    state: ServerState = request.app.state.server
    _seen(state, viewer, run_id)
    try:
        parameters = parameters_from_text(form.parameters)
        new = rerun(state.engine, state.limits, user.id, run_id, parameters)
    except Refused as exc:
        return exc.response()
    except LookupError:
        raise HTTPException(404, f"no run '{run_id}'") from None
    return JSONResponse({"id": new, "rerun_of": run_id}, status_code=201)


@router.post("/ui/api/runs/{run_id}/{action}", include_in_schema=False)
def act(request: Request, run_id: str, action: str, ui: UI) -> JSONResponse:
    """Cancel or retry a run the signed-in user may see: 403 without the session's CSRF
    token or from another origin, 404 for a run they cannot see, 422 for what cannot be done."""
    user = _acting(request).user
    viewer = Viewer(user.name, user.is_admin, user.id)
    try:
        status = ui.source.act(viewer, run_id, action)
    except LookupError:
        raise HTTPException(404, f"no run '{run_id}'") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return JSONResponse(json.loads(json.dumps({"id": run_id, "status": status})))

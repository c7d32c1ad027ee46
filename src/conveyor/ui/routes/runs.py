"""The UI's runs: a page of them, one run (header, step tree, Gantt chart, the DAG at a
level), and the items of a map."""

from typing import Annotated, NotRequired, TypedDict

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse

from conveyor.runlog.base import RunNotFoundError
from conveyor.ui.app import _choices, _json, _level
from conveyor.ui.routes.deps import UI, Look, UIState, redact_texts, started_view, view_of
from conveyor.ui.when import BadRange, date_range

router = APIRouter()


@router.get("/ui/api/runs", include_in_schema=False)
def runs(
    viewer: Look,
    ui: UI,
    status: Annotated[str, Query(max_length=20)] = "",
    pipeline: Annotated[str, Query(max_length=200)] = "",
    user: Annotated[str, Query(max_length=100)] = "",
    q: Annotated[str, Query(max_length=100)] = "",
    tag: Annotated[str, Query(max_length=200)] = "",
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> JSONResponse:
    """A page of the runs ``viewer`` may see, newest first, filtered (``since`` and
    ``until``: when they started, see ``ui.when``; a bad one is a 422 saying why)."""
    try:
        date_range(since, until)
    except BadRange as exc:
        raise HTTPException(422, str(exc)) from None
    filters = {"status": status, "pipeline": pipeline, "user": user, "q": q, "tag": tag}
    filters |= {"since": since, "until": until}
    return _json(redact_texts(ui, ui.source.runs(viewer, filters, offset, limit)))


class Waiting(TypedDict):
    """The header of a run with no run log yet: what the queue knows of it."""

    run_id: str
    status: str
    config: dict[str, object]
    progress: None
    error: NotRequired[str]


def _waiting(ui: UIState, run_id: str) -> JSONResponse:
    """A run the source knows with no run log yet: its status and why it ended, if it did."""
    status, error = ui.source.pending(run_id)
    waiting: Waiting = {"run_id": run_id, "status": status, "config": {}, "progress": None}
    if error:
        waiting["error"] = error
    reason = "the run has not started yet" if status == "queued" else f"the run {status}: {error or ''}"
    empty = {"nodes": [], "edges": [], "error": reason}
    return _json({"header": waiting, "tree": [], "gantt": [], "dag": empty, "crumbs": [], "can_act": False})


@router.get("/ui/api/runs/{run_id}", include_in_schema=False)
def run(
    viewer: Look,
    ui: UI,
    run_id: str,
    path: Annotated[str, Query(max_length=2000)] = "",
    expand: Annotated[list[str] | None, Query(max_length=500)] = None,
    fold: Annotated[list[str] | None, Query(max_length=500)] = None,
) -> JSONResponse:
    """One run: its header (config redacted), step tree, Gantt chart and the DAG at ``path``
    (a failure to draw it is said in the DAG, the rest still shows); ``expand`` and ``fold``
    name (repeated) the composites of that level the page's toggles opened or shut."""
    try:
        view = view_of(ui, run_id, viewer)
    except RunNotFoundError:  # known to the server's queue, with no run log (yet)
        return _waiting(ui, run_id)
    with view.lock:  # another request may be folding new events into it
        header = view.header()
        body: dict[str, object] = {"header": header, "tree": view.tree(), "gantt": view.gantt()}
        try:
            if view.pipeline is None:
                raise ValueError(view.pipeline_error)
            graph, prefix, pattern, crumbs = _level(view.pipeline, path)
            opened, shut = frozenset(expand or ()), frozenset(fold or ())
            body["dag"] = view.dag(graph, prefix, pattern, opened, shut)
            body["crumbs"] = crumbs
            body["choices"] = _choices(view.pipeline, path, view.steps)
        except (ValueError, KeyError) as exc:
            body["dag"], body["crumbs"] = {"nodes": [], "edges": [], "error": str(exc)}, []
    header["config"] = ui.redact(header["config"])
    header["user"] = ui.source.owner(run_id)
    body["can_act"] = ui.source.actions and view.status.value in ("failed", "cancelled", "running", "queued")
    return _json(redact_texts(ui, body))


@router.get("/ui/api/runs/{run_id}/map", include_in_schema=False)
def map_items(
    viewer: Look,
    ui: UI,
    run_id: str,
    path: Annotated[str, Query(max_length=2000)],
    page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> JSONResponse:
    """A page of one map's items (``path`` names the map), with their statuses."""
    view = started_view(ui, run_id, viewer)
    return _json(redact_texts(ui, view.map_detail(tuple(p for p in path.split("/") if p), page)))

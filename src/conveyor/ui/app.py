"""The web UI: pages (one HTML shell and its script) and the JSON they read, over a
:class:`~conveyor.ui.source.RunSource`.

``conveyor ui`` serves it over a run log store, read-only; the server mounts the same
router with its users, sessions and actions. Every value from the run log reaches the page
as JSON and is put into the document as text (never as markup) by ``static/app.js``. The
pages load nothing from elsewhere: the Content-Security-Policy allows this origin only.
"""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.codec import finite
from conveyor.runlog.records import Status
from conveyor.spec.models import Graph, Pipeline, step_in
from conveyor.step.context import path_slug
from conveyor.ui.source import RunSource, Viewer
from conveyor.ui.views import RunView

STATIC = resources.files("conveyor.ui") / "static"
ASSETS = {"app.js": "text/javascript", "app.css": "text/css", "favicon.svg": "image/svg+xml"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
LOG_PAGE = 256 * 1024
#: Beyond any log a step writes (1 TiB): a larger offset, like a negative one, is refused (422).
MAX_LOG_OFFSET = 2**40
PAGES = ("/", "/runs/{run_id}", "/runs/{run_id}/logs", "/metrics", "/login")

#: Who is looking, from a request (the server reads its session cookie; a laptop: anyone).
Guard = Callable[[Request], Viewer]


def _json(data: Any) -> JSONResponse:
    try:
        return JSONResponse(data, headers=SECURITY_HEADERS)
    except ValueError:  # NaN or infinities recorded by a run
        return JSONResponse(finite(data), headers=SECURITY_HEADERS)


def _shell() -> str:
    return (STATIC / "index.html").read_text(encoding="utf-8")


def ui_router(
    source: RunSource, guard: Guard, mode: str, redact: Callable[[Any], Any] = lambda v: v
) -> APIRouter:
    """The UI's routes over ``source``; ``guard`` says who is looking (raising 401)."""
    router = APIRouter()
    Look = Annotated[Viewer, Depends(guard)]

    def view_of(run_id: str, viewer: Viewer) -> RunView:
        if not source.visible(viewer, run_id):
            raise HTTPException(404, f"no run '{run_id}'")
        return source.views.get(run_id)

    for page in PAGES:

        @router.get(page, response_class=HTMLResponse, include_in_schema=False)
        def shell() -> HTMLResponse:
            return HTMLResponse(_shell(), headers=SECURITY_HEADERS)

    @router.get("/ui/static/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, "no such asset")
        body = (STATIC / name).read_bytes()
        return Response(
            body, media_type=ASSETS[name], headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"}
        )

    @router.get("/ui/api/session", include_in_schema=False)
    def session(request: Request) -> JSONResponse:
        try:
            viewer = guard(request)
        except HTTPException:
            return _json({"mode": mode, "user": None, "actions": source.actions})
        return _json({"mode": mode, "user": viewer.name, "admin": viewer.admin, "actions": source.actions})

    @router.get("/ui/api/runs", include_in_schema=False)
    def runs(
        viewer: Look,
        status: Annotated[str, Query(max_length=20)] = "",
        pipeline: Annotated[str, Query(max_length=200)] = "",
        user: Annotated[str, Query(max_length=100)] = "",
        q: Annotated[str, Query(max_length=100)] = "",
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> JSONResponse:
        filters = {"status": status, "pipeline": pipeline, "user": user, "q": q}
        return _json(source.runs(viewer, filters, offset, limit))

    @router.get("/ui/api/runs/{run_id}", include_in_schema=False)
    def run(viewer: Look, run_id: str, path: Annotated[str, Query(max_length=2000)] = "") -> JSONResponse:
        try:
            view = view_of(run_id, viewer)
        except RunNotFoundError:  # known to the server's queue, with no run log (yet)
            status, error = source.pending(run_id)
            waiting: dict[str, Any] = {"run_id": run_id, "status": status, "config": {}, "progress": None}
            if error:
                waiting["error"] = error
            reason = (
                "the run has not started yet" if status == "queued" else f"the run {status}: {error or ''}"
            )
            empty = {"nodes": [], "edges": [], "error": reason}
            return _json(
                {"header": waiting, "tree": [], "gantt": [], "dag": empty, "crumbs": [], "can_act": False}
            )
        with view.lock:  # another request may be folding new events into it
            header = view.header()
            body: dict[str, Any] = {"header": header, "tree": view.tree(), "gantt": view.gantt()}
            try:
                if view.pipeline is None:
                    raise ValueError(view.pipeline_error)
                graph, prefix, pattern, crumbs = _level(view.pipeline, path)
                body["dag"] = view.dag(graph, prefix, pattern)
                body["crumbs"] = crumbs
            except (ValueError, KeyError) as exc:
                body["dag"], body["crumbs"] = {"nodes": [], "edges": [], "error": str(exc)}, []
        header["config"] = redact(header["config"])
        header["user"] = source.owner(run_id)
        body["can_act"] = source.actions and view.status.value in ("failed", "cancelled", "running", "queued")
        return _json(body)

    @router.get("/ui/api/runs/{run_id}/map", include_in_schema=False)
    def map_items(
        viewer: Look,
        run_id: str,
        path: Annotated[str, Query(max_length=2000)],
        page: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    ) -> JSONResponse:
        view = view_of(run_id, viewer)
        return _json(view.map_detail(tuple(p for p in path.split("/") if p), page))

    def attempt_log(view: RunView, step: str, attempt: int) -> tuple[str, bool]:
        """Where an attempt's output is, and whether the attempt is still running."""
        key = tuple(p for p in step.split("/") if p)
        with view.lock:
            record = view.record(key)
        if record is None:
            raise HTTPException(404, f"no step '{step}' in run '{view.run_id}'")
        found = next((a for a in record.attempts if a.attempt == attempt), None)
        if found is None:
            raise HTTPException(404, f"step '{step}' has no attempt {attempt}")
        running = found.status is Status.RUNNING
        location = found.log or view.store.log_location(
            view.run_id, f"{path_slug(list(key))}/attempt-{attempt}.log"
        )
        return location, running

    def read_part(view: RunView, location: str, offset: int, limit: int) -> tuple[str, int]:
        """Characters from ``offset`` (at most ``limit``) and the total size: a file is read
        from where it is asked, never whole."""
        if _in_store(view, location):
            with open(location, encoding="utf-8", errors="replace") as handle:
                size = os.fstat(handle.fileno()).st_size
                handle.seek(min(offset, size))
                return handle.read(limit), size
        text = view.store.read_log(location)
        return text[offset : offset + limit], len(text)

    @router.get("/ui/api/runs/{run_id}/log", include_in_schema=False)
    def log(
        viewer: Look,
        run_id: str,
        step: Annotated[str, Query(max_length=2000)],
        attempt: Annotated[int, Query(ge=1)] = 1,
        offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
        limit: Annotated[int, Query(ge=1, le=LOG_PAGE)] = LOG_PAGE,
    ) -> JSONResponse:
        view = view_of(run_id, viewer)
        location, running = attempt_log(view, step, attempt)
        text, size = read_part(view, location, offset, limit)
        return _json(
            {
                "text": redact(text),
                "offset": offset,
                "next": offset + len(text),
                "size": size,
                "running": running,
            }
        )

    @router.get("/ui/api/runs/{run_id}/log/download", include_in_schema=False)
    def download(
        viewer: Look, run_id: str, step: Annotated[str, Query(max_length=2000)], attempt: int = 1
    ) -> Response:
        view = view_of(run_id, viewer)
        location, _ = attempt_log(view, step, attempt)
        text = redact(view.store.read_log(location))
        name = f"{run_id}-{path_slug([p for p in step.split('/') if p])}-attempt-{attempt}.log".replace(
            "/", "_"
        )
        return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @router.get("/ui/api/runs/{run_id}/log/stream", include_in_schema=False)
    async def stream(
        request: Request,
        viewer: Look,
        run_id: str,
        step: Annotated[str, Query(max_length=2000)],
        attempt: int = 1,
        offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    ) -> StreamingResponse:
        view = view_of(run_id, viewer)
        attempt_log(view, step, attempt)

        async def events() -> AsyncIterator[str]:
            at = offset
            while True:
                fresh = source.views.get(run_id)
                location, running = attempt_log(fresh, step, attempt)
                text, _ = await asyncio.to_thread(read_part, fresh, location, at, LOG_PAGE)
                if text:
                    at += len(text)
                    yield f"data: {json.dumps({'text': redact(text), 'next': at})}\n\n"
                if not running and not text:
                    yield "event: end\ndata: {}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @router.get("/ui/api/metrics", include_in_schema=False)
    def metrics(
        viewer: Look,
        pipeline: Annotated[str, Query(max_length=200)],
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> JSONResponse:
        listed = source.runs(viewer, {"pipeline": pipeline}, 0, limit)["runs"]
        points = []
        for row in reversed(listed):
            view = source.views.get(row["id"])
            values: dict[str, Any] = {}
            with view.lock:
                records = list(view.steps.values())
            for record in records:
                for attempt in record.attempts[-1:]:
                    for name, value in attempt.metrics.items():
                        values[f"{'/'.join(record.path)}:{name}" if len(record.path) > 1 else name] = value
            points.append(
                {
                    "run_id": row["id"],
                    "status": row["status"],
                    "started_at": row["started_at"],
                    "metrics": values,
                }
            )
        return _json({"pipeline": pipeline, "runs": points})

    return router


def _in_store(view: RunView, location: str) -> bool:
    """Whether a log location is a file of the view's file store (read from an offset);
    anything else is read through the store."""
    root = getattr(view.store, "root", None)
    if not isinstance(root, Path) or not os.path.isabs(location):
        return False
    return Path(location).resolve().is_relative_to(root.resolve()) and os.path.isfile(location)


def _level(
    pipeline: Pipeline, path: str
) -> tuple[Graph, tuple[str, ...], tuple[str, ...], list[dict[str, str]]]:
    """The graph a DAG path opens (``fan``: a map's branch over all items; ``par/a``: a
    branch; ``grow/2``: a loop's iteration 2), its concrete prefix, its pattern and the
    breadcrumbs to it."""
    graph: Graph = pipeline.dag
    prefix: tuple[str, ...] = ()
    pattern: tuple[str, ...] = ()
    crumbs = [{"label": "pipeline", "path": ""}]
    parts = [p for p in path.split("/") if p]
    i = 0
    while i < len(parts):
        name = parts[i]
        node = step_in(graph, name)
        if node is None or not node.subgraphs():
            raise KeyError(f"'{name}' has no steps inside it")
        key = parts[i + 1] if i + 1 < len(parts) else None
        if node.entry in ("item", "iteration"):
            graph = node.inner("0")
            if key is not None and key.isdigit():
                prefix, pattern = (*prefix, name, key), (*pattern, name, key)
            else:
                prefix, pattern, key = (*prefix, name, "*"), (*pattern, name, "*"), None
            label = f"{name} [{key}]" if key else f"{name} (all)"
        else:
            names = list(node.named_subgraphs())
            key = key if key in names else names[0]
            graph = node.inner(key)
            prefix, pattern = (*prefix, name, key), (*pattern, name, key)
            label = f"{name} / {key}"
        crumbs.append({"label": label, "path": "/".join(p for p in prefix if p != "*")})
        i += 2
    return graph, prefix, pattern, crumbs

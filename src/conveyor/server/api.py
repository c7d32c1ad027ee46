"""The HTTP API under /api/v1 (FastAPI; OpenAPI at /openapi.json).

Every call needs ``Authorization: Bearer TOKEN`` except ``GET /api/v1/health`` (for load
balancers and probes). Users see and act on their own runs; admins on all. Errors are JSON:
``{"error": {"status": 404, "message": "...", "issues": [...]}}``.
"""

# No "from __future__ import annotations": FastAPI must see the real annotations of the
# endpoints defined inside create_app (their dependencies are local names).
import base64
import binascii
import os
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import conveyor
from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.records import RUN_ID_PATTERN
from conveyor.runlog.sql import SQLRunLogStore, reader
from conveyor.server import queue
from conveyor.server.auth import AuthError, User, authenticate
from conveyor.server.db import check, engine_for
from conveyor.server.limits import LimitError, Limits, check_code, check_parameters
from conveyor.server.redact import finite, without_credentials
from conveyor.server.supervise import live_workers
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue, SpecError
from conveyor.spec.load import load_pipeline_text
from conveyor.spec.validate import build_model
from conveyor.spec.yamlload import load_yaml_text

MAX_BODY = 16 * 1024 * 1024
RUN_ID = RUN_ID_PATTERN


class SubmitRun(BaseModel):
    """The body of ``POST /runs``."""

    pipeline: Annotated[str, Field(description="The pipeline YAML text.", max_length=MAX_BODY)]
    config: Annotated[str | None, Field(description="The run config YAML text.")] = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    code: Annotated[str | None, Field(description="A base64 tar(.gz) of the user's package.")] = None
    name: Annotated[str | None, Field(max_length=200)] = None
    run_id: Annotated[str | None, Field(pattern=RUN_ID)] = None


class RunSummary(BaseModel):
    """A run as the queue knows it."""

    id: str
    pipeline_name: str
    status: str
    user: str
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    claims: int = 0
    error: str | None = None
    cancel_requested: bool = False


class RunList(BaseModel):
    """A page of runs."""

    runs: list[RunSummary]
    total: int
    limit: int
    offset: int


class RunDetail(RunSummary):
    """A run with its run log: the step tree, attempts, parameters and metrics."""

    parameters: dict[str, Any] = Field(default_factory=dict)
    run_log: dict[str, Any] | None = None
    steps: list[dict[str, Any]] = Field(default_factory=list)


class Health(BaseModel):
    """What ``/health`` says to probes."""

    status: str
    database: str
    workers: int | None = None


class Version(BaseModel):
    """What ``/version`` says."""

    version: str


def error(status: int, message: str, issues: list[dict[str, Any]] | None = None) -> JSONResponse:
    """The JSON error every failing call returns."""
    body: dict[str, Any] = {"status": status, "message": message}
    if issues is not None:
        body["issues"] = issues
    return JSONResponse({"error": body}, status_code=status)


def issue_dict(issue: Issue) -> dict[str, Any]:
    """A located validation issue as JSON (the same text as ``conveyor validate``)."""
    return {
        "file": issue.file,
        "line": issue.line,
        "path": list(issue.path),
        "message": issue.message,
        "expected": issue.expected,
        "found": issue.found,
        "hint": issue.hint,
        "text": issue.render(),
    }


class BodyLimit:
    """Refuse request bodies over MAX_BODY with 413, whether or not Content-Length is sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            await error(413, f"request body over {MAX_BODY} bytes")(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise HTTPException(413, f"request body over {MAX_BODY} bytes")
            return message

        await self.app(scope, limited, send)


def backend_problems(config: RunConfig, text: str) -> SpecError | None:
    """A submitted config's backends checked now, with locations, not when a worker runs it:
    keys, values and what can be told without connecting. A Dask address must be the one
    the operator set (``CONVEYOR_SERVER_DASK_ADDRESS``): a user never points a worker at an
    address of their choosing."""
    from conveyor.executors.registry import build

    try:
        for group, backend in (
            ("conveyor.executors", config.executor),
            ("conveyor.catalogs", config.catalog),
            ("conveyor.secrets", config.secrets),
        ):
            build(group, backend, check_only=True)
    except SpecError as exc:
        return config.locate(exc)
    if config.executor.type == "dask":
        allowed = os.environ.get("CONVEYOR_SERVER_DASK_ADDRESS")
        given = config.executor.config.get("address")
        if "local" in config.executor.config or not allowed or given not in (None, allowed):
            return SpecError(
                [
                    Issue(
                        "a Dask run uses the operator's cluster",
                        path=("executor", "config"),
                        file="<submitted config>",
                        expected=f"address: {allowed}"
                        if allowed
                        else "no Dask runs (no cluster is configured)",
                        found=f"address: {given}" if given else "a local cluster",
                        hint="remove the executor's config or use the server's address",
                    )
                ],
                "invalid config",
            )
    return None


def create_app(url: str) -> FastAPI:
    """The HTTP API over the server's database: runs, logs, cancel, retry, health."""
    engine = engine_for(url)
    store = SQLRunLogStore(url, create=False)
    readonly = reader(engine)
    # No /docs or /redoc: their pages load scripts from a CDN. /openapi.json documents the API.
    app = FastAPI(title="conveyor", version=conveyor.__version__, docs_url=None, redoc_url=None)
    limits = Limits.from_env()
    app.add_middleware(BodyLimit)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        issues = [
            {"path": [str(p) for p in e["loc"]], "message": e["msg"], "found": repr(e.get("input"))[:80]}
            for e in exc.errors()
        ]
        return error(422, "invalid request", issues)

    # Status polling is the hot path: authentication and reading one run are short indexed
    # reads, done on the event loop. Handing each request to the thread pool twice (for the
    # dependency, then the endpoint) cost more than the reads themselves under 20 clients
    # (p99 63 ms -> 18 ms, measured with wrk). Submissions, which parse YAML, stay threaded.
    async def user(authorization: Annotated[str | None, Header()] = None) -> User:
        try:
            return authenticate(readonly, authorization)
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None

    Caller = Annotated[User, Depends(user)]

    def visible(run_id: str, caller: User) -> dict[str, Any]:
        run = queue.get(readonly, run_id)
        # Another user's run answers exactly as a missing one: ids of others' runs stay unknown.
        if run is None or (not caller.is_admin and run["user_id"] != caller.id):
            raise HTTPException(404, f"no run '{run_id}'")
        return run

    @app.get("/api/v1/health", response_model=Health)
    def health() -> Any:
        try:
            check(engine)
        except Exception as exc:  # the database is down: say so, do not crash
            return JSONResponse(
                {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}: {exc}"[:300]},
                status_code=503,
            )
        workers = live_workers()
        if workers is not None and workers.get("expected") and not workers.get("live"):
            return JSONResponse({"status": "unavailable", "database": "ok", "workers": 0}, status_code=503)
        return {"status": "ok", "database": "ok", "workers": None if workers is None else workers["live"]}

    @app.get("/api/v1/version", response_model=Version)
    async def version(caller: Caller) -> Any:
        return {"version": conveyor.__version__}

    @app.post("/api/v1/runs", response_model=RunSummary, status_code=201)
    def submit(body: SubmitRun, caller: Caller) -> Any:
        name = body.name or "pipeline"
        try:
            loaded = load_pipeline_text(body.pipeline, name=name, file="<submitted pipeline>")
            located = load_yaml_text(body.config or "", file="<submitted config>")
            config = build_model(RunConfig, located, "invalid config")
            config._source = located
        except SpecError as exc:
            return error(422, exc.title, [issue_dict(i) for i in exc.issues])
        if config.executor.type not in limits.executors:
            kind, allowed = config.executor.type, ", ".join(limits.executors)
            return error(422, f"this server lets users choose the executor(s) {allowed}, not '{kind}'")
        refused = backend_problems(config, body.config or "")
        if refused is not None:
            return error(422, refused.title, [issue_dict(i) for i in refused.issues])
        code = None
        try:
            check_parameters(body.parameters, limits)
            if body.code:
                try:
                    code = base64.b64decode(body.code, validate=True)
                except (binascii.Error, ValueError):
                    return error(422, "code must be a base64-encoded tar archive")
                check_code(code, limits)
        except LimitError as exc:
            return error(exc.status, str(exc))
        if body.run_id and queue.get(engine, body.run_id) is not None:
            return error(422, f"run '{body.run_id}' exists already")
        run_id = queue.submit(
            engine,
            caller.id,
            loaded.name,
            body.pipeline,
            body.config or "",
            body.parameters,
            code,
            body.run_id,
        )
        return queue.get(engine, run_id)

    @app.get("/api/v1/runs", response_model=RunList)
    def list_runs(
        caller: Caller,
        status: Annotated[str | None, Query(max_length=20)] = None,
        user_name: Annotated[str | None, Query(alias="user", max_length=100)] = None,
        pipeline: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    ) -> Any:
        owner = None if caller.is_admin else caller.id
        rows, total = queue.listing(readonly, owner, status, user_name, pipeline, limit, offset)
        return {"runs": rows, "total": total, "limit": limit, "offset": offset}

    @app.get("/api/v1/runs/{run_id}", response_model=RunDetail)
    async def get_run(run_id: str, caller: Caller) -> Any:
        import json

        from conveyor.runlog.endings import settle

        run = visible(run_id, caller)
        detail = {**run, "parameters": json.loads(run.pop("parameters") or "{}")}
        detail["error"] = without_credentials(detail.get("error"))
        try:
            log = settle(store.load(run_id))  # an ended run's open steps read as its ending
            detail["run_log"] = {**log.run.to_json(), "status": str(log.status)}
            detail["run_log"]["config"] = without_credentials(detail["run_log"].get("config"))
            detail["steps"] = [record.to_json() for record in log.steps.values()]
        except RunNotFoundError:
            pass
        # The hot path of status polling: serialise directly (the model documents the shape).
        try:
            return JSONResponse(detail)
        except ValueError:  # NaN or an infinity somewhere in what the run recorded
            return JSONResponse(finite(detail))

    @app.get("/api/v1/runs/{run_id}/logs", response_class=PlainTextResponse)
    def logs(run_id: str, caller: Caller, step: Annotated[str | None, Query(max_length=1000)] = None) -> Any:
        visible(run_id, caller)
        try:
            log = store.load(run_id)
        except RunNotFoundError:
            return PlainTextResponse("")
        wanted = [p for p in step.split("/") if p] if step else None
        parts = []
        for record in log.steps.values():
            if wanted is not None and record.path[: len(wanted)] != wanted:
                continue
            for attempt in record.attempts:
                if attempt.log:
                    parts.append(f"==> {' / '.join(record.path)} (attempt {attempt.attempt}) <==\n")
                    parts.append(store.read_log(attempt.log))
        return PlainTextResponse(without_credentials("".join(parts)))

    @app.post("/api/v1/runs/{run_id}/cancel", response_model=RunSummary)
    def cancel(run_id: str, caller: Caller) -> Any:
        visible(run_id, caller)
        queue.request_cancel(engine, run_id)
        return queue.get(engine, run_id)

    @app.post("/api/v1/runs/{run_id}/retry", response_model=RunSummary)
    def retry(run_id: str, caller: Caller) -> Any:
        run = visible(run_id, caller)
        if not queue.requeue(engine, run_id):
            return error(
                422, f"run '{run_id}' is {run['status']}: only failed or cancelled runs can be retried"
            )
        return queue.get(engine, run_id)

    from conveyor.server.pages import pages_router

    app.include_router(pages_router(engine, readonly, store))
    app.state.started = time.time()
    return app

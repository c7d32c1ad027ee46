"""The HTTP API under /api/v1 (FastAPI; OpenAPI at /openapi.json).

Every call needs ``Authorization: Bearer TOKEN`` except ``GET /api/v1/health`` (for load
balancers and probes). Users see and act on their own runs; admins on all. Errors are JSON:
``{"error": {"status": 404, "message": "...", "issues": [...]}}``. A request body with a field
the API does not know, and any request with a NUL character in its path, query or JSON body,
is refused with 422 saying where.
"""

# No "from __future__ import annotations": FastAPI must see the real annotations of the
# endpoints defined inside create_app (their dependencies are local names).
import base64
import binascii
import difflib
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import yaml
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import conveyor
from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.records import RUN_ID_PATTERN, Status
from conveyor.runlog.sql import SQLRunLogStore, reader
from conveyor.server import policy, queue
from conveyor.server.auth import AuthError, User, authenticate
from conveyor.server.db import check, engine_for
from conveyor.server.limits import LimitError, Limits, check_code, check_parameters, check_pipeline
from conveyor.server.pages import SignIn, pages_router
from conveyor.server.redact import finite, without_credentials
from conveyor.server.supervise import live_workers
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue, SpecError
from conveyor.spec.load import LoadedPipeline, load_pipeline_text
from conveyor.spec.load import _config as read_config  # the one reading of a config: runnable's names too
from conveyor.spec.yamlload import load_yaml_text
from conveyor.step.context import path_slug

MAX_BODY = 16 * 1024 * 1024
RUN_ID = RUN_ID_PATTERN


class SubmitRun(BaseModel):
    """The body of ``POST /runs``. A misspelt field (``paramters``) is refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    pipeline: Annotated[str, Field(description="The pipeline YAML text.", max_length=MAX_BODY)]
    config: Annotated[str | None, Field(description="The run config YAML text.")] = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    code: Annotated[str | None, Field(description="A base64 tar(.gz) of the user's package.")] = None
    name: Annotated[str | None, Field(max_length=200)] = None
    file: Annotated[
        str | None,
        Field(
            description="The file the pipeline came from, as the user named it (shown on run pages).",
            max_length=1000,
            pattern=r"^[^\x00-\x1f\x7f]+$",
        ),
    ] = None
    run_id: Annotated[str | None, Field(pattern=RUN_ID)] = None


class RunSummary(BaseModel):
    """A run as the queue knows it."""

    id: str
    pipeline_name: str
    #: The file the pipeline was submitted from, as the user named it (None if not given).
    pipeline_file: str | None = None
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


# A JSON ``\u0000`` escape: preceded by an even number of backslashes (``\\u0000`` is text).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _nul_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in decoded JSON a NUL character is (a key or a string), if anywhere."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return (*path, key.replace("\x00", "\\u0000"))
        found = _nul_path(item, (*path, str(key)))
        if found is not None:
            return found
    return None


def nul_in_url(scope: Scope) -> list[str] | None:
    """The location of a NUL character in a request's path or query, if there is one."""
    if "\x00" in scope.get("path", ""):
        return ["path"]
    query = scope.get("query_string", b"").decode("latin-1")
    for name, value in parse_qsl(query, keep_blank_values=True):
        if "\x00" in name or "\x00" in value:
            return ["query", name.replace("\x00", "\\u0000")]
    return None


def nul_in_body(body: bytes) -> list[str] | None:
    """The location of a NUL character in a JSON request body, if there is one."""
    if b"\x00" not in body and not _ESCAPED_NUL.search(body):
        return None
    try:
        found = _nul_path(json.loads(body))
    except ValueError:
        found = None
    return ["body", *found] if found is not None else ["body"]


class RefuseNul:
    """Refuse a NUL character anywhere a request can carry one to the database (path, query
    parameters, JSON body) with 422, the same on every database: PostgreSQL cannot store NUL
    in text, and a filter or run name holding one would otherwise be a 500 there."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = nul_in_url(scope)
        if where is None and scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)  # no body to read (and log streams keep receive)
            return
        body, more = b"", True
        while where is None and more:
            try:
                message = await receive()
            except HTTPException as exc:  # BodyLimit, outside this middleware, refused the size
                await error(exc.status_code, str(exc.detail))(scope, receive, send)
                return
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
        where = where or nul_in_body(body)
        if where is not None:
            issue = {"path": where, "message": "NUL character (\\u0000) refused", "found": "\\u0000"}
            await error(422, f"the request's {where[0]} holds a NUL character", [issue])(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


#: Request bodies by endpoint, to suggest a known field for an unknown one.
BODY_FIELDS: dict[str, list[str]] = {
    "/api/v1/runs": list(SubmitRun.model_fields),
    "/ui/api/login": list(SignIn.model_fields),
}


def validation_issues(request: Request, exc: RequestValidationError) -> tuple[str, list[dict[str, Any]]]:
    """A request's validation errors as the API's message and issues; unknown fields are
    named in the message, with the field meant where one is close."""
    issues, unknown = [], []
    for e in exc.errors():
        issue = {"path": [str(p) for p in e["loc"]], "message": e["msg"], "found": repr(e.get("input"))[:80]}
        if e["type"] == "extra_forbidden":
            name = str(e["loc"][-1])
            unknown.append(f"'{name}'")
            issue["message"] = f"unknown field '{name}'"
            close = difflib.get_close_matches(name, BODY_FIELDS.get(request.url.path, []), n=1)
            if close:
                issue["hint"] = f"did you mean '{close[0]}'?"
        issues.append(issue)
    if unknown:
        return f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} in the request", issues
    return "invalid request", issues


@dataclass
class Accepted:
    """A submission that passed every check, its config in conveyor's own spelling."""

    pipeline: LoadedPipeline
    config: RunConfig
    config_text: str
    code: bytes | None


class Refused(Exception):
    """A submission refused: the HTTP status, the message and located issues."""

    def __init__(self, status: int, message: str, issues: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.issues = status, message, issues

    def response(self) -> JSONResponse:
        """The API's JSON error for it."""
        return error(self.status, self.message, self.issues)


def normalised_config(text: str) -> tuple[RunConfig, str]:
    """A submitted config read as ``conveyor run`` reads one (runnable's spellings and type
    names translated) and written back in conveyor's own spelling: the text a worker runs
    with, so it never meets ``pipeline-executor`` or ``file-system``."""
    located = load_yaml_text(text, file="<submitted config>")
    # No variable of the server's own environment is ever filled into a user's config.
    config = read_config(located, environ={})
    config._source = located
    data = config.model_dump(exclude_unset=True)
    return config, yaml.safe_dump(data, sort_keys=False) if data else ""


def accept(body: SubmitRun, limits: Limits) -> Accepted:
    """Every check of a submission (sizes, pipeline, config, backends, parameters, code);
    Refused with what is wrong otherwise."""
    try:
        check_pipeline(body.pipeline, limits)
        check_pipeline(body.config or "", limits, "the config")
        check_parameters(body.parameters, limits)
    except LimitError as exc:
        raise Refused(exc.status, str(exc)) from None
    try:
        loaded = load_pipeline_text(body.pipeline, name=body.name or "pipeline", file="<submitted pipeline>")
        config, config_text = normalised_config(body.config or "")
    except SpecError as exc:
        raise Refused(422, exc.title, [issue_dict(i) for i in exc.issues]) from None
    if config.retry_of is not None:
        raise Refused(422, f"to retry run '{config.retry_of}' on a server: conveyor retry {config.retry_of}")
    if config.executor.type not in limits.executors:
        kind, allowed = config.executor.type, ", ".join(limits.executors)
        raise Refused(422, f"this server lets users choose the executor(s) {allowed}, not '{kind}'")
    # What only the operator chooses (stores, catalog locations, secrets files): refused.
    refused = backend_problems(config, config_text) or policy.problems(config, config._source)
    if refused is not None:
        raise Refused(422, refused.title, [issue_dict(i) for i in refused.issues])
    return Accepted(loaded, config, config_text, decoded_code(body.code, limits))


def decoded_code(text: str | None, limits: Limits) -> bytes | None:
    """The code bundle's bytes, checked to unpack safely within the limits."""
    if not text:
        return None
    try:
        code = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(422, "code must be a base64-encoded tar archive") from None
    try:
        check_code(code, limits)
    except LimitError as exc:
        raise Refused(exc.status, str(exc)) from None
    return code


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
    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit)  # added last, so outermost: sizes are refused before anything is read

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, *validation_issues(request, exc))

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
        try:
            accepted = accept(body, limits)
        except Refused as exc:
            return exc.response()
        if body.run_id and queue.get(engine, body.run_id) is not None:
            return error(422, f"run '{body.run_id}' exists already")
        run_id = queue.submit(
            engine,
            caller.id,
            accepted.pipeline.name,
            body.pipeline,
            accepted.config_text,
            body.parameters,
            accepted.code,
            body.run_id,
            body.file,
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
                # A running attempt's output so far is written every second under the name
                # its final output will have (it has no log on record until it ends).
                location = attempt.log or (
                    store.log_location(run_id, f"{path_slug(record.path)}/attempt-{attempt.attempt}.log")
                    if attempt.status is Status.RUNNING
                    else None
                )
                text = store.read_log(location) if location else ""
                if attempt.log or text:
                    parts.append(f"==> {' / '.join(record.path)} (attempt {attempt.attempt}) <==\n")
                    parts.append(text)
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

    app.include_router(pages_router(engine, readonly, store))
    app.state.started = time.time()
    return app

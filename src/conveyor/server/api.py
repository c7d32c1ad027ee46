"""The HTTP API under /api/v1 (FastAPI; OpenAPI at /openapi.json).

Every call needs ``Authorization: Bearer TOKEN`` except ``GET /api/v1/health`` (for load
balancers and probes). Users see and act on their own runs; admins on all. Errors are JSON:
``{"error": {"status": 404, "message": "...", "issues": [...]}}``. A request body with a field
the API does not know, and any request with a NUL character in its path, query or JSON body,
is refused with 422 saying where.
"""

import difflib
import json
import re
import time
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import conveyor
from conveyor.server.pages import ServerSource, SignIn
from conveyor.server.redact import without_credentials
from conveyor.server.routes import actions, health, runs, signin
from conveyor.server.routes.deps import ServerState
from conveyor.server.routes.signin import guard
from conveyor.server.schemas import MAX_BODY, IssueBody, SubmitRun, error
from conveyor.ui.routes import UIState, ui_router


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
        if length is not None and length.isascii() and length.isdigit() and int(length) > MAX_BODY:
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


# A JSON ``\u0000`` escape, or a surrogate's (``\ud800``): preceded by an even number of
# backslashes (``\\u0000`` is text).
_ESCAPED_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u(?:0000|[dD][89a-fA-F][0-9a-fA-F]{2})")
#: What no database column can hold: NUL, and a lone surrogate (JSON's ``\ud800`` without its
#: pair decodes to one; PostgreSQL refuses it and encoding it for a page fails: a 500).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _nul_path(value: Any, path: tuple[str, ...] = ()) -> tuple[str, ...] | None:
    """Where in decoded JSON a NUL or a lone surrogate is (a key or a string), if anywhere."""
    if isinstance(value, str):
        return path if _UNSTORABLE.search(value) else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(key, str) and _UNSTORABLE.search(key):
            return (*path, _UNSTORABLE.sub(lambda m: f"\\u{ord(m[0]):04x}", key))
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
    """The location of a NUL character or a lone surrogate in a JSON request body, if any."""
    if b"\x00" not in body and not _ESCAPED_NUL.search(body):
        return None
    try:
        decoded = json.loads(body)
    except ValueError:
        return ["body"]
    found = _nul_path(decoded)  # None for a surrogate pair: one character, stored as any other
    return ["body", *found] if found is not None else None


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
            issue: IssueBody = {
                "path": where,
                "message": "NUL character (\\u0000) or lone surrogate (\\ud800-\\udfff) refused",
                "found": "\\u0000 or a lone \\ud800-\\udfff",
            }
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


def validation_issues(request: Request, exc: RequestValidationError) -> tuple[str, list[IssueBody]]:
    """A request's validation errors as the API's message and issues; unknown fields are
    named in the message, with the field meant where one is close."""
    issues: list[IssueBody] = []
    unknown = []
    for e in exc.errors():
        issue: IssueBody = {
            "path": [str(p) for p in e["loc"]],
            "message": e["msg"],
            "found": repr(e.get("input"))[:80],
        }
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


def create_app(url: str) -> FastAPI:
    """The HTTP API over the server's database (runs, logs, cancel, retry, health) and the
    UI's pages for signed-in users. The endpoints live in routers per resource
    (:mod:`conveyor.server.routes`, :mod:`conveyor.ui.routes`); what they share is kept in
    ``app.state`` (``server``: database, store, limits; ``ui``: the UI's source and guard)."""
    state = ServerState.for_url(url)
    # No /docs or /redoc: their pages load scripts from a CDN. /openapi.json documents the API.
    app = FastAPI(title="conveyor", version=conveyor.__version__, docs_url=None, redoc_url=None)
    app.state.server = state
    app.state.ui = UIState(
        ServerSource(state.engine, state.readonly, state.store), guard, "server", without_credentials
    )
    app.add_middleware(RefuseNul)
    app.add_middleware(BodyLimit)  # added last, so outermost: sizes are refused before anything is read

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, *validation_issues(request, exc))

    app.include_router(health.router)
    app.include_router(runs.router)
    # The sign-in page before the UI's routes (whose shell answers /login too), the actions after.
    app.include_router(signin.router)
    app.include_router(ui_router())
    app.include_router(actions.router)
    app.state.started = time.time()
    return app

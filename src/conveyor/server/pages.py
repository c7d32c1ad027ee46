"""The web UI on the server: the same pages as ``conveyor ui``, over the server's runs, for
signed-in users, with retry and cancel.

Signing in exchanges an API token for a server-side session (``conveyor.server.auth``): the
cookie holds a fresh random session id, never the token, in an HttpOnly, SameSite=Strict
cookie (scripts cannot read it; other sites' requests do not carry it). Signing out revokes
the session on every API worker; revoking the token ends its sessions too. Actions are POSTs
that must carry the session's own CSRF token in an ``X-CSRF-Token`` header (the page reads it
from the ``conveyor_csrf`` cookie; a cookie planted by anyone else matches no session) and,
when the browser says where they come from, an ``Origin`` of this server. Cookies are
``Secure`` when the request came over HTTPS (behind a proxy: one uvicorn trusts through
``FORWARDED_ALLOW_IPS`` and its ``X-Forwarded-Proto``) or when the operator says the server
is behind TLS (``CONVEYOR_SERVER_SECURE_COOKIES=1``). After signing in, the page goes only
to a path of this server (``safe_next``). Users see their own runs and admins all runs,
exactly as in the API: another user's run is "not found".
"""

import hmac
import json
import os
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from conveyor.runlog.base import RunLogStore
from conveyor.server import queue
from conveyor.server.auth import (
    SESSION_SECONDS,
    AuthError,
    Session,
    close_session,
    find_session,
    open_session,
)
from conveyor.server.db import runs, users
from conveyor.server.redact import without_credentials
from conveyor.ui.app import SECURITY_HEADERS, _shell, ui_router
from conveyor.ui.source import Viewer, Views, add_progress

SESSION = "conveyor_session"
CSRF = "conveyor_csrf"
MAX_AGE = int(SESSION_SECONDS)


class SignIn(BaseModel):
    """The body of ``POST /ui/api/login``."""

    model_config = ConfigDict(extra="forbid")

    token: Annotated[str, Field(max_length=500)]
    next: Annotated[str | None, Field(max_length=2000)] = None


def safe_next(value: str | None) -> str:
    """Where to go after signing in: ``value`` if it is a path of this server, else ``/``.
    A path starts with one ``/`` followed by neither ``/`` nor ``\\`` (browsers read ``/\\``
    as ``//``, another host), has no scheme or host, and no control characters (browsers drop
    tabs and newlines, so ``/\\t/evil`` would become ``//evil``)."""
    if not value or not value.startswith("/") or value[1:2] in ("/", "\\"):
        return "/"
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        return "/"
    parts = urlsplit(value)
    return value if not parts.scheme and not parts.netloc else "/"


def secure_cookies(request: Request) -> bool:
    """Cookies get ``Secure`` over HTTPS, or always when the operator says the server is
    behind TLS (``CONVEYOR_SERVER_SECURE_COOKIES=1``)."""
    said = os.environ.get("CONVEYOR_SERVER_SECURE_COOKIES", "").strip().lower()
    return request.url.scheme == "https" or said in ("1", "true", "yes", "on")


class ServerSource:
    """The server's runs: the queue's table for listings and ownership, its run log store
    for what each run recorded."""

    actions = True

    def __init__(self, engine: Any, readonly: Any, store: RunLogStore) -> None:
        self.engine, self.readonly, self.store = engine, readonly, store
        self.views = Views(store)

    def runs(self, viewer: Viewer, filters: dict[str, str], offset: int, limit: int) -> dict[str, Any]:
        owner = None if viewer.admin else viewer.id
        rows, total = queue.listing(
            self.readonly, owner, filters.get("status") or None, filters.get("user") or None,
            filters.get("pipeline") or None, limit, offset, id_contains=filters.get("q") or None,
        )  # fmt: skip
        page = [
            {
                "id": r["id"],
                "status": r["status"],
                "pipeline": r["pipeline_name"],
                "user": r["user"],
                "started_at": r["started_at"] or r["created_at"],
                "duration": (r["ended_at"] - r["started_at"]) if r["ended_at"] and r["started_at"] else None,
            }
            for r in rows
        ]
        add_progress(self.views, [row for row in page if row["status"] != "queued"])
        named = select(runs.c.pipeline_name).distinct()
        if owner is not None:
            named = named.where(runs.c.user_id == owner)
        with self.readonly.connect() as conn:
            pipelines = sorted(str(n) for (n,) in conn.execute(named))
            names = [str(n) for (n,) in conn.execute(select(users.c.name).order_by(users.c.name))]
        if not viewer.admin:
            names = []
        return {"runs": page, "total": total, "pipelines": pipelines, "users": names}

    def visible(self, viewer: Viewer, run_id: str) -> bool:
        run = queue.get(self.readonly, run_id)
        return run is not None and (viewer.admin or run["user_id"] == viewer.id)

    def owner(self, run_id: str) -> str | None:
        run = queue.get(self.readonly, run_id)
        return str(run["user"]) if run is not None else None

    def pending(self, run_id: str) -> tuple[str, str | None]:
        run = queue.get(self.readonly, run_id)
        if run is None:
            return "queued", None
        return str(run["status"]), without_credentials(run.get("error"))

    def act(self, viewer: Viewer, run_id: str, action: str) -> str:
        if not self.visible(viewer, run_id):
            raise LookupError(run_id)
        if action == "cancel":
            return queue.request_cancel(self.engine, run_id)
        if action == "retry":
            if not queue.requeue(self.engine, run_id):
                raise ValueError(
                    f"run '{run_id}' cannot be retried now: only failed or cancelled runs can be"
                )
            return "queued"
        raise ValueError(f"no action '{action}'")


def _same_origin(request: Request) -> bool:
    """A request the browser says comes from another origin is refused (when it says)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def pages_router(engine: Any, readonly: Any, store: RunLogStore) -> APIRouter:
    """The UI's pages and their JSON, plus signing in and out and the actions."""
    source = ServerSource(engine, readonly, store)

    def current(request: Request) -> Session:
        try:
            return find_session(readonly, request.cookies.get(SESSION))
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None

    def guard(request: Request) -> Viewer:
        user = current(request).user
        return Viewer(user.name, user.is_admin, user.id)

    router = APIRouter()

    # Before the UI's own routes: an unsafe ``next`` never reaches the sign-in page's script.
    @router.get("/login", response_class=HTMLResponse, include_in_schema=False)
    def login_page(next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
        if next is not None and safe_next(next) != next:
            return RedirectResponse("/login?next=" + quote(safe_next(next), safe=""), status_code=303)
        return HTMLResponse(_shell(), headers=SECURITY_HEADERS)

    router.include_router(ui_router(source, guard, mode="server", redact=without_credentials))

    @router.post("/ui/api/login", include_in_schema=False)
    def login(request: Request, body: SignIn) -> JSONResponse:
        if not _same_origin(request):
            raise HTTPException(403, "cross-site sign-in refused")
        try:
            session_id, session = open_session(engine, body.token.strip())
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
        user = session.user
        response = JSONResponse({"user": user.name, "admin": user.is_admin, "next": safe_next(body.next)})
        secure = secure_cookies(request)
        response.set_cookie(
            SESSION, session_id, max_age=MAX_AGE, httponly=True, samesite="strict", secure=secure
        )
        response.set_cookie(CSRF, session.csrf, max_age=MAX_AGE, samesite="strict", secure=secure)
        return response

    @router.post("/ui/api/logout", include_in_schema=False)
    def logout(request: Request) -> JSONResponse:
        if not _same_origin(request):
            raise HTTPException(403, "cross-site sign-out refused")
        close_session(engine, request.cookies.get(SESSION))
        response = JSONResponse({"signed_out": True})
        secure = secure_cookies(request)
        response.delete_cookie(SESSION, httponly=True, samesite="strict", secure=secure)
        response.delete_cookie(CSRF, samesite="strict", secure=secure)
        return response

    @router.post("/ui/api/runs/{run_id}/{action}", include_in_schema=False)
    def act(request: Request, run_id: str, action: str) -> JSONResponse:
        session = current(request)
        user = session.user
        viewer = Viewer(user.name, user.is_admin, user.id)
        sent = request.headers.get("x-csrf-token", "")
        if (
            not _same_origin(request)
            or not sent
            or not hmac.compare_digest(sent.encode(), session.csrf.encode())
        ):
            raise HTTPException(403, "cross-site request refused (missing or wrong CSRF token)")
        try:
            status = source.act(viewer, run_id, action)
        except LookupError:
            raise HTTPException(404, f"no run '{run_id}'") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return JSONResponse(json.loads(json.dumps({"id": run_id, "status": status})))

    return router

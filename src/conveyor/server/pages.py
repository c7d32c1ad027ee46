"""The web UI on the server: the same pages as ``conveyor ui``, over the server's runs, for
signed-in users, with retry and cancel.

Signing in exchanges an API token for a session: the token is kept in an HttpOnly,
SameSite=Strict cookie (scripts cannot read it; other sites' requests do not carry it), so
revoking the token ends the session at once, on every API worker. Actions are POSTs that
must carry the value of the ``conveyor_csrf`` cookie in an ``X-CSRF-Token`` header (a page
of another origin can neither read that cookie nor set that header) and, when the browser
says where they come from, an ``Origin`` of this server. Users see their own runs and
admins all runs, exactly as in the API: another user's run is "not found".
"""

import hmac
import json
import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from conveyor.runlog.base import RunLogStore
from conveyor.server import queue
from conveyor.server.auth import AuthError, authenticate
from conveyor.server.db import runs, users
from conveyor.server.redact import without_credentials
from conveyor.ui.app import ui_router
from conveyor.ui.source import Viewer, Views, add_progress

SESSION = "conveyor_session"
CSRF = "conveyor_csrf"
MAX_AGE = 12 * 3600


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

    def guard(request: Request) -> Viewer:
        token = request.cookies.get(SESSION)
        if not token:
            raise HTTPException(401, "sign in first")
        try:
            user = authenticate(readonly, f"Bearer {token}")
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
        return Viewer(user.name, user.is_admin, user.id)

    router = ui_router(source, guard, mode="server", redact=without_credentials)

    @router.post("/ui/api/login", include_in_schema=False)
    async def login(request: Request) -> JSONResponse:
        if not _same_origin(request):
            raise HTTPException(403, "cross-site sign-in refused")
        try:
            token = str((await request.json()).get("token") or "").strip()
        except (ValueError, AttributeError):
            token = ""
        try:
            user = authenticate(readonly, f"Bearer {token}")
        except AuthError as exc:
            raise HTTPException(401, str(exc)) from None
        response = JSONResponse({"user": user.name, "admin": user.is_admin})
        secure = request.url.scheme == "https"
        response.set_cookie(SESSION, token, max_age=MAX_AGE, httponly=True, samesite="strict", secure=secure)
        response.set_cookie(
            CSRF, secrets.token_urlsafe(24), max_age=MAX_AGE, samesite="strict", secure=secure
        )
        return response

    @router.post("/ui/api/logout", include_in_schema=False)
    def logout() -> JSONResponse:
        response = JSONResponse({"signed_out": True})
        response.delete_cookie(SESSION)
        response.delete_cookie(CSRF)
        return response

    @router.post("/ui/api/runs/{run_id}/{action}", include_in_schema=False)
    def act(request: Request, run_id: str, action: str) -> JSONResponse:
        viewer = guard(request)
        sent, kept = request.headers.get("x-csrf-token", ""), request.cookies.get(CSRF, "")
        if not _same_origin(request) or not kept or not hmac.compare_digest(sent, kept):
            raise HTTPException(403, "cross-site request refused (missing or wrong CSRF token)")
        try:
            status = source.act(viewer, run_id, action)
        except LookupError:
            raise HTTPException(404, f"no run '{run_id}'") from None
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None
        return JSONResponse(json.loads(json.dumps({"id": run_id, "status": status})))

    return router

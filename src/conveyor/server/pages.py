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

This module holds the policy (the sign-in body, safe redirects, secure cookies, same origin)
and the server's :class:`ServerSource`; the endpoints are in :mod:`conveyor.server.routes`
(``signin``, ``actions``), with the UI's own routes between them.
"""

import os
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from conveyor.runlog.base import RunLogStore
from conveyor.runlog.records import RunRecord
from conveyor.server import policy, queue
from conveyor.server.auth import SESSION_SECONDS
from conveyor.server.db import runs, users
from conveyor.server.redact import without_credentials
from conveyor.ui.source import RunsPage, TableRow, Viewer, Views, add_progress
from conveyor.ui.when import date_range

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

    def runs(self, viewer: Viewer, filters: dict[str, str], offset: int, limit: int) -> RunsPage:
        owner = None if viewer.admin else viewer.id
        span = date_range(filters.get("since", ""), filters.get("until", ""))
        rows, total = queue.listing(
            self.readonly, owner, filters.get("status") or None, filters.get("user") or None,
            filters.get("pipeline") or None, limit, offset, id_contains=filters.get("q") or None,
            since=span.since, until=span.until, tag=filters.get("tag") or None,
        )  # fmt: skip
        page: list[TableRow] = [
            {
                "id": r["id"],
                "status": r["status"],
                "pipeline": r["pipeline_name"],
                "user": r["user"],
                "started_at": r["started_at"] or r["created_at"],
                "duration": (r["ended_at"] - r["started_at"]) if r["ended_at"] and r["started_at"] else None,
                "tags": r["tags"],
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
        tags = queue.all_tags(self.readonly, owner)
        return {"runs": page, "total": total, "pipelines": pipelines, "users": names, "tags": tags}

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

    def catalog(self, run_id: str, run: RunRecord) -> Path | None:
        """The owner's catalog folder (``policy.user_catalog``), never a location the run
        recorded: a run decides what it writes, not where the server reads."""
        queued = queue.get(self.readonly, run_id)
        return policy.user_catalog(int(queued["user_id"])) if queued is not None else None

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

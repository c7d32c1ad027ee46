"""The UI's sessions on the server: the sign-in page, signing in (a token exchanged for a
server-side session in an HttpOnly, SameSite=Strict cookie) and out, and the guard that
tells the UI's routes who is looking. See :mod:`conveyor.server.pages` for the policy."""

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from conveyor.server.auth import AuthError, Session, close_session, find_session, open_session
from conveyor.server.pages import CSRF, MAX_AGE, SESSION, SignIn, _same_origin, safe_next, secure_cookies
from conveyor.server.routes.deps import ServerState, State
from conveyor.ui.app import SECURITY_HEADERS, _shell
from conveyor.ui.source import Viewer

router = APIRouter()


def current(request: Request) -> Session:
    """The session the request's cookie names; 401 without a live one. Called as a plain
    function by the UI's guard (which receives only the request), so it reads the app's
    state itself."""
    state: ServerState = request.app.state.server
    try:
        return find_session(state.readonly, request.cookies.get(SESSION))
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from None


def guard(request: Request) -> Viewer:
    """Who is looking, for the UI's routes: the signed-in user (401 otherwise)."""
    user = current(request).user
    return Viewer(user.name, user.is_admin, user.id)


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    """The sign-in page; an unsafe ``next`` is replaced (redirect) before the page's script
    ever reads it. Mounted before the UI's routes, whose shell would answer ``/login`` too."""
    if next is not None and safe_next(next) != next:
        return RedirectResponse("/login?next=" + quote(safe_next(next), safe=""), status_code=303)
    return HTMLResponse(_shell(), headers=SECURITY_HEADERS)


@router.post("/ui/api/login", include_in_schema=False)
def login(request: Request, body: SignIn, state: State) -> JSONResponse:
    """A session for a valid API token: its id and CSRF token as cookies, never the token."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-site sign-in refused")
    try:
        session_id, session = open_session(state.engine, body.token.strip())
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from None
    user = session.user
    response = JSONResponse({"user": user.name, "admin": user.is_admin, "next": safe_next(body.next)})
    secure = secure_cookies(request)
    response.set_cookie(SESSION, session_id, max_age=MAX_AGE, httponly=True, samesite="strict", secure=secure)
    response.set_cookie(CSRF, session.csrf, max_age=MAX_AGE, samesite="strict", secure=secure)
    return response


@router.post("/ui/api/logout", include_in_schema=False)
def logout(request: Request, state: State) -> JSONResponse:
    """Revokes the session (on every API worker) and clears its cookies."""
    if not _same_origin(request):
        raise HTTPException(403, "cross-site sign-out refused")
    close_session(state.engine, request.cookies.get(SESSION))
    response = JSONResponse({"signed_out": True})
    secure = secure_cookies(request)
    response.delete_cookie(SESSION, httponly=True, samesite="strict", secure=secure)
    response.delete_cookie(CSRF, samesite="strict", secure=secure)
    return response

"""The UI's pages: one HTML shell for every page (its script draws them), the static
assets it loads, and the session the script asks for first (who is looking, what they may do)."""

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from conveyor.ui.app import ASSETS, PAGES, SECURITY_HEADERS, STATIC, _json, _shell
from conveyor.ui.routes.deps import UI

router = APIRouter()


def shell() -> HTMLResponse:
    """The page's shell, the same at every page address (the script reads the address)."""
    return HTMLResponse(_shell(), headers=SECURITY_HEADERS)


for _page in PAGES:
    router.add_api_route(_page, shell, methods=["GET"], response_class=HTMLResponse, include_in_schema=False)


@router.get("/ui/static/{name}", include_in_schema=False)
def asset(name: str) -> Response:
    """One of the page's own assets (only those listed: no path reaches the disk)."""
    if name not in ASSETS:
        raise HTTPException(404, "no such asset")
    body = (STATIC / name).read_bytes()
    return Response(
        body, media_type=ASSETS[name], headers={**SECURITY_HEADERS, "Cache-Control": "max-age=300"}
    )


@router.get("/ui/api/session", include_in_schema=False)
def session(request: Request, ui: UI) -> JSONResponse:
    """Who is looking (no user when nobody is signed in: the page then offers to sign in),
    the mode and whether actions exist here."""
    try:
        viewer = ui.guard(request)
    except HTTPException:
        return _json({"mode": ui.mode, "user": None, "actions": ui.source.actions})
    return _json({"mode": ui.mode, "user": viewer.name, "admin": viewer.admin, "actions": ui.source.actions})

"""The UI's actions on the server: cancel and retry, as POSTs carrying the session's own
CSRF token (``X-CSRF-Token``) and, when the browser says where they come from, an
``Origin`` of this server."""

import hmac
import json

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse

from conveyor.server.pages import _same_origin
from conveyor.server.routes.signin import current
from conveyor.ui.routes.deps import UI
from conveyor.ui.source import Viewer

router = APIRouter()


@router.post("/ui/api/runs/{run_id}/{action}", include_in_schema=False)
def act(request: Request, run_id: str, action: str, ui: UI) -> JSONResponse:
    """Cancel or retry a run the signed-in user may see: 403 without the session's CSRF
    token or from another origin, 404 for a run they cannot see, 422 for what cannot be done."""
    session = current(request)
    user = session.user
    viewer = Viewer(user.name, user.is_admin, user.id)
    sent = request.headers.get("x-csrf-token", "")
    if not _same_origin(request) or not sent or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise HTTPException(403, "cross-site request refused (missing or wrong CSRF token)")
    try:
        status = ui.source.act(viewer, run_id, action)
    except LookupError:
        raise HTTPException(404, f"no run '{run_id}'") from None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return JSONResponse(json.loads(json.dumps({"id": run_id, "status": status})))

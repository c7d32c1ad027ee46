"""``/api/v1/health`` (for load balancers and probes, no token) and ``/api/v1/version``."""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

import conveyor
from conveyor.server.db import check
from conveyor.server.routes.deps import Caller, State
from conveyor.server.schemas import Health, Version
from conveyor.server.supervise import live_workers

router = APIRouter()


# Endpoints in the OpenAPI schema say why in comments: a docstring would become their
# description there, and /openapi.json stays as it was before the routers were split.


# Whether the database answers and, when the server runs workers, whether any is alive:
# 503 otherwise, so that a balancer stops sending work to a server that cannot do it.
@router.get("/api/v1/health", response_model=Health)
def health(state: State) -> Any:
    try:
        check(state.engine)
    except Exception as exc:  # the database is down: say so, do not crash
        return JSONResponse(
            {"status": "unavailable", "database": f"unreachable: {type(exc).__name__}: {exc}"[:300]},
            status_code=503,
        )
    workers = live_workers()
    if workers is not None and workers.get("expected") and not workers.get("live"):
        return JSONResponse({"status": "unavailable", "database": "ok", "workers": 0}, status_code=503)
    return {"status": "ok", "database": "ok", "workers": None if workers is None else workers["live"]}


# The server's conveyor version (for a client to compare with its own).
@router.get("/api/v1/version", response_model=Version)
async def version(caller: Caller) -> Any:
    return {"version": conveyor.__version__}

"""What the server's endpoints share, reached through FastAPI dependencies: the
:class:`ServerState` an app keeps in ``app.state.server``, the caller a bearer token names,
and the runs a caller may see."""

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from starlette.exceptions import HTTPException

from conveyor.runlog.sql import SQLRunLogStore, reader
from conveyor.server import queue
from conveyor.server.auth import AuthError, User, authenticate
from conveyor.server.db import engine_for
from conveyor.server.limits import Limits


@dataclass(frozen=True)
class ServerState:
    """Everything the endpoints share, built once per app: the database (``engine`` for
    writes, ``readonly`` for the hot reads of polling), the run log store and the
    submission limits. Kept in ``app.state.server`` so that routers hold no state of their
    own and a test can give one router a state of its choosing."""

    engine: Any
    readonly: Any
    store: SQLRunLogStore
    limits: Limits

    @classmethod
    def for_url(cls, url: str) -> "ServerState":
        """The state over the server database at ``url`` (already migrated), with the limits
        the environment sets."""
        engine = engine_for(url)
        return cls(engine, reader(engine), SQLRunLogStore(url, create=False), Limits.from_env())


# Status polling is the hot path: authentication and reading one run are short indexed
# reads, done on the event loop. Handing each request to the thread pool twice (for the
# dependency, then the endpoint) cost more than the reads themselves under 20 clients
# (p99 63 ms -> 18 ms, measured with wrk). Submissions, which parse YAML, stay threaded.
# The dependencies are coroutines for the same reason: a plain function would be a hop.
async def server_state(request: Request) -> ServerState:
    """The app's shared state (see :class:`ServerState`)."""
    state: ServerState = request.app.state.server
    return state


State = Annotated[ServerState, Depends(server_state)]


async def user(state: State, authorization: Annotated[str | None, Header()] = None) -> User:
    """The caller a bearer token names; 401 without a valid one."""
    try:
        return authenticate(state.readonly, authorization)
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from None


Caller = Annotated[User, Depends(user)]


def visible(state: ServerState, run_id: str, caller: User) -> queue.QueuedRun:
    """The queue's row of a run the caller may see (their own; any for an admin), else 404."""
    run = queue.get(state.readonly, run_id)
    # Another user's run answers exactly as a missing one: ids of others' runs stay unknown.
    if run is None or (not caller.is_admin and run["user_id"] != caller.id):
        raise HTTPException(404, f"no run '{run_id}'")
    return run

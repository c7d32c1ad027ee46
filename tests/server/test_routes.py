"""Each server router served alone on a bare app over a real (SQLite) server database: the
routers hold no state of their own; what they share is the ``ServerState`` the app keeps in
``app.state.server``, and a test may give its own or override a dependency."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

import conveyor
from conveyor.server.auth import User, create_token, create_user
from conveyor.server.db import migrate
from conveyor.server.limits import Limits
from conveyor.server.pages import ServerSource
from conveyor.server.routes import actions, health, runs, signin
from conveyor.server.routes.deps import ServerState, user
from conveyor.server.routes.signin import guard
from conveyor.ui.routes import UIState

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


@pytest.fixture
def state(tmp_path: Path) -> ServerState:
    url = f"sqlite:///{tmp_path / 'server.db'}"
    migrate(url)
    return ServerState.for_url(url)


def token(state: ServerState, name: str) -> dict[str, str]:
    create_user(state.engine, name)
    return {"Authorization": f"Bearer {create_token(state.engine, name)[1]}"}


def served(state: ServerState, *routers: APIRouter) -> TestClient:
    app = FastAPI()
    app.state.server = state
    app.state.ui = UIState(ServerSource(state.engine, state.readonly, state.store), guard, "server")
    for router in routers:
        app.include_router(router)
    return TestClient(app)


def test_health_alone_reads_the_states_database(state: ServerState, tmp_path: Path) -> None:
    assert served(state, health.router).get("/api/v1/health").json() == {
        "status": "ok",
        "database": "ok",
        "workers": None,
    }
    gone = ServerState.for_url(f"sqlite:///{tmp_path / 'no such folder' / 'server.db'}")
    answer = served(gone, health.router).get("/api/v1/health")
    assert answer.status_code == 503 and answer.json()["database"].startswith("unreachable")


def test_version_needs_a_caller_unless_overridden(state: ServerState) -> None:
    client = served(state, health.router)
    assert client.get("/api/v1/version").status_code == 401
    app = FastAPI()
    app.include_router(health.router)  # no state at all: the override is the caller
    app.dependency_overrides[user] = lambda: User(1, "ada", False)
    assert TestClient(app).get("/api/v1/version").json() == {"version": conveyor.__version__}


def test_runs_alone_submit_list_cancel_retry(state: ServerState) -> None:
    ada, bob = token(state, "ada"), token(state, "bob")
    client = served(state, runs.router)
    made = client.post("/api/v1/runs", json={"pipeline": PIPELINE, "name": "tiny"}, headers=ada)
    assert made.status_code == 201, made.text
    run_id = made.json()["id"]
    assert made.json()["status"] == "queued" and made.json()["user"] == "ada"
    assert client.get(f"/api/v1/runs/{run_id}", headers=bob).status_code == 404  # not bob's
    assert client.get("/api/v1/runs", headers=bob).json()["total"] == 0
    assert client.get("/api/v1/runs", headers=ada).json()["runs"][0]["pipeline_name"] == "tiny"
    early = client.post(f"/api/v1/runs/{run_id}/retry", headers=ada)
    assert early.status_code == 422 and "is queued" in early.json()["error"]["message"]
    assert client.post(f"/api/v1/runs/{run_id}/cancel", headers=ada).json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{run_id}/retry", headers=ada).json()["status"] == "queued"


def test_runs_alone_use_the_states_limits(state: ServerState) -> None:
    ada = token(state, "ada")
    tight = ServerState(state.engine, state.readonly, state.store, Limits(pipeline_bytes=10))
    refused = served(tight, runs.router).post("/api/v1/runs", json={"pipeline": PIPELINE}, headers=ada)
    assert refused.status_code == 413 and "10" in refused.json()["error"]["message"]


def test_signin_and_actions_alone(state: ServerState) -> None:
    ada = token(state, "ada")
    client = served(state, runs.router, signin.router, actions.router)
    run_id = client.post("/api/v1/runs", json={"pipeline": PIPELINE}, headers=ada).json()["id"]
    signed = client.post("/ui/api/login", json={"token": ada["Authorization"].split()[1]})
    assert signed.json() == {"user": "ada", "admin": False, "next": "/"}
    assert client.post(f"/ui/api/runs/{run_id}/cancel").status_code == 403  # no CSRF token
    csrf = {"X-CSRF-Token": client.cookies["conveyor_csrf"]}
    assert client.post(f"/ui/api/runs/{run_id}/cancel", headers=csrf).json() == {
        "id": run_id,
        "status": "cancelled",
    }
    assert client.post("/ui/api/logout").json() == {"signed_out": True}
    assert client.post(f"/ui/api/runs/{run_id}/retry", headers=csrf).status_code == 401

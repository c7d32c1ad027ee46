"""Each UI router served alone on a bare app, over a real run recorded in memory: the
routers hold no state of their own; what they read (the source, who is looking, the mode,
the redaction) is the ``UIState`` the app keeps in ``app.state.ui``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI, HTTPException, Request
from fastapi.testclient import TestClient

from conveyor.runlog.base import RunLogStore
from conveyor.testing import run_pipeline
from conveyor.ui.routes import UIState, logs, metrics, pages, runs, ui_router
from conveyor.ui.routes.deps import ui_state
from conveyor.ui.source import LocalSource, Viewer

PIPELINE = """
dag:
  start_at: score
  steps:
    score: {command: ctasks.scored, returns: [{name: quality, kind: metric}], next: say}
    say: {command_type: shell, command: "echo token=hunter2", next: success}
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> RunLogStore:
    """A memory run log holding run 'r1' of pipeline 'scoring': a metric, then a shell step
    that prints a secret."""
    where = tmp_path_factory.mktemp("routes")
    (where / "scoring.yaml").write_text(PIPELINE)
    run = run_pipeline(where / "scoring.yaml", {"x": 2}, run_id="r1", cwd=where)
    run.assert_succeeded()
    return run.store


def anyone(request: Request) -> Viewer:
    return Viewer()


def nobody(request: Request) -> Viewer:
    raise HTTPException(401, "sign in first")


def served(
    router: APIRouter,
    store: RunLogStore,
    guard: Callable[[Request], Viewer] = anyone,
    mode: str = "local",
    redact: Callable[[Any], Any] = lambda value: value,
) -> TestClient:
    """One router on an app of its own, with the state it asks for."""
    app = FastAPI()
    app.state.ui = UIState(LocalSource(store), guard, mode, redact)
    app.include_router(router)
    return TestClient(app)


def test_metrics_alone(store: RunLogStore) -> None:
    client = served(metrics.router, store)
    answer = client.get("/ui/api/metrics", params={"pipeline": "scoring"}).json()
    assert answer["runs"] == [
        {
            "run_id": "r1",
            "status": "succeeded",
            "started_at": answer["runs"][0]["started_at"],
            "metrics": {"quality": 3.0},
        }
    ]
    assert client.get("/ui/api/runs").status_code == 404  # only the metrics router is there


def test_runs_alone_use_the_states_guard(store: RunLogStore) -> None:
    listed = served(runs.router, store).get("/ui/api/runs").json()
    assert [(r["id"], r["pipeline"], r["status"]) for r in listed["runs"]] == [("r1", "scoring", "succeeded")]
    refused = served(runs.router, store, guard=nobody).get("/ui/api/runs/r1")
    assert refused.status_code == 401 and "sign in first" in refused.text
    assert served(runs.router, store).get("/ui/api/runs/nothing").status_code == 404


def test_logs_alone_use_the_states_redaction(store: RunLogStore) -> None:
    hide = lambda value: value.replace("hunter2", "***") if isinstance(value, str) else value  # noqa: E731
    client = served(logs.router, store, redact=hide)
    page = client.get("/ui/api/runs/r1/log", params={"step": "say", "attempt": 1}).json()
    assert page["text"] == "token=***\n" and page["running"] is False
    download = client.get("/ui/api/runs/r1/log/download", params={"step": "say"})
    assert download.text == "token=***\n"
    named = download.headers["content-disposition"]
    assert named.startswith('attachment; filename="r1-say') and named.endswith('-attempt-1.log"')
    missing = client.get("/ui/api/runs/r1/log", params={"step": "say", "attempt": 2})
    assert missing.status_code == 404 and "has no attempt 2" in missing.text


def test_session_says_the_states_mode_and_viewer(store: RunLogStore) -> None:
    seen = served(pages.router, store, mode="server").get("/ui/api/session").json()
    assert seen == {"mode": "server", "user": None, "admin": True, "actions": False}
    unknown = served(pages.router, store, guard=nobody).get("/ui/api/session").json()
    assert unknown == {"mode": "local", "user": None, "actions": False}


def test_state_can_be_given_by_dependency_override(store: RunLogStore) -> None:
    """No ``app.state.ui`` at all: a test's override of the dependency serves instead."""
    app = FastAPI()
    app.include_router(ui_router())
    app.dependency_overrides[ui_state] = lambda: UIState(LocalSource(store), anyone, "local")
    client = TestClient(app)
    assert client.get("/ui/api/runs").json()["total"] == 1
    assert client.get("/ui/api/runs/r1").json()["header"]["status"] == "succeeded"


FAILING = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch:
        start_at: leak
        steps:
          leak: {command_type: shell, command: "echo postgresql://app:hunter2pw@db/x; exit 1", next: success}
      next: success
"""


def test_every_text_of_a_run_page_goes_through_the_states_redaction(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """A failed run's summary, its log heads, its tree and its map's items show a URL's
    password masked, as its log does (they used to be sent as recorded)."""
    from conveyor.server.redact import without_credentials

    where = tmp_path_factory.mktemp("leaky")
    (where / "leaky.yaml").write_text(FAILING)
    run = run_pipeline(where / "leaky.yaml", {"xs": [1, 2]}, run_id="r2", cwd=where)
    assert run.status.value == "failed"
    plain = served(runs.router, run.store).get("/ui/api/runs/r2").text
    assert "hunter2pw" in plain  # the run did record it: locally nothing is hidden
    client = served(runs.router, run.store, redact=without_credentials)
    page = client.get("/ui/api/runs/r2")
    assert page.status_code == 200 and page.json()["header"]["failures"]
    assert "hunter2pw" not in page.text and "app:***@db" in page.text
    items = client.get("/ui/api/runs/r2/map", params={"path": "fan"})
    assert items.status_code == 200 and "hunter2pw" not in items.text
    assert "hunter2pw" not in client.get("/ui/api/runs").text

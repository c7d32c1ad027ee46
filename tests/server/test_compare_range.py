"""On the server (SQLite and PostgreSQL): the runs listings' date range, applied by the
database query (the API's ``/api/v1/runs`` and the UI's ``/ui/api/runs``), and the
comparison of two runs, only of runs the user may read and with credentials hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from conveyor.executors.run import execute
from conveyor.server.api import create_app
from conveyor.server.auth import create_token, create_user
from conveyor.server.db import migrate, runs
from conveyor.spec.load import config_from_data, load_pipeline

PIPELINE = """
dag:
  start_at: score
  steps:
    score: {command: ctasks.scored, returns: [{name: quality, kind: metric}], next: success}
"""
DAY = 1_796_083_200.0  # 2026-12-01T00:00:00Z


def bearer(engine: object, name: str) -> dict[str, str]:
    create_user(engine, name)
    return {"Authorization": f"Bearer {create_token(engine, name)[1]}"}


@pytest.fixture
def served(db_url: str, tmp_path: Path) -> tuple[TestClient, dict[str, dict[str, str]], dict[str, str]]:
    """The server app over a fresh database: ann's runs a1 and a2 (recorded, a2 with a URL
    password among its parameters), bob's run b1 (recorded), ann's queued q; with their
    start times set a day apart."""
    migrate(db_url)
    app = create_app(db_url)
    client = TestClient(app)
    engine = app.state.server.engine
    users = {"ann": bearer(engine, "ann"), "bob": bearer(engine, "bob")}
    ids: dict[str, str] = {}
    for name, owner in (("a1", "ann"), ("a2", "ann"), ("b1", "bob"), ("q", "ann")):
        made = client.post("/api/v1/runs", json={"pipeline": PIPELINE, "name": "scoring", "run_id": name},
                           headers=users[owner])  # fmt: skip
        assert made.status_code == 201, made.text
        ids[name] = made.json()["id"]
    (tmp_path / "p.yaml").write_text(PIPELINE)
    config = config_from_data({"run_log_store": {"type": "sql", "config": {"url": db_url}}})
    given = {"a1": {"x": 2}, "a2": {"x": 4, "db": "postgresql://app:hunter2pw@db/x"}, "b1": {"x": 2}}
    for name, params in given.items():  # recorded as a worker would, under the queued run's id
        execute(load_pipeline(tmp_path / "p.yaml"), config, params, run_id=ids[name])
    with engine.begin() as conn:
        for n, name in enumerate(("a1", "a2", "b1", "q")):
            started = DAY + n * 86400 if name != "q" else None  # q: queued, never started
            conn.execute(
                update(runs)
                .where(runs.c.id == ids[name])
                .values(started_at=started, created_at=DAY + n * 86400)
            )
    return client, users, ids


def ids_of(answer: object) -> list[str]:
    return [r["id"] for r in answer["runs"]]  # type: ignore[index]


def test_the_api_and_ui_listings_filter_by_date_in_the_query(
    served: tuple[TestClient, dict[str, dict[str, str]], dict[str, str]],
) -> None:
    client, users, ids = served
    ann = users["ann"]
    api = client.get("/api/v1/runs", params={"since": DAY + 86400}, headers=ann).json()
    assert sorted(ids_of(api)) == sorted([ids["a2"], ids["q"]]) and api["total"] == 2  # not bob's b1
    api = client.get(
        "/api/v1/runs", params={"since": "2026-12-01", "until": "2026-12-02"}, headers=ann
    ).json()
    assert ids_of(api) == [ids["a1"]]
    # q never started: it is placed by when it was queued, as the listings show it
    assert ids_of(client.get("/api/v1/runs", params={"since": "2026-12-04"}, headers=ann).json()) == [
        ids["q"]
    ]
    bad = client.get("/api/v1/runs", params={"until": "tomorrow"}, headers=ann)
    assert bad.status_code == 422
    issue = bad.json()["error"]["issues"][0]
    assert issue["path"] == ["query", "until"] and issue["found"] == "tomorrow" and issue["hint"]
    reversed_ = client.get("/api/v1/runs", params={"since": DAY + 10, "until": DAY}, headers=ann)
    assert reversed_.status_code == 422 and "swap them" in reversed_.json()["error"]["issues"][0]["hint"]

    client.cookies.clear()
    signed = client.post("/ui/api/login", json={"token": ann["Authorization"].split()[1]})
    assert signed.status_code == 200, signed.text
    page = client.get("/ui/api/runs", params={"until": DAY + 86400}).json()
    assert ids_of(page) == [ids["a1"]] and page["total"] == 1
    assert client.get("/ui/api/runs", params={"since": "soon"}).status_code == 422
    tagged = client.get("/ui/api/runs", params={"tag": "nightly"})  # none carries it
    assert tagged.status_code == 200 and tagged.json()["total"] == 0
    assert page["tags"] == []  # so the page offers no tag to filter by


def test_compare_on_the_server_reads_only_the_users_runs_redacted(
    served: tuple[TestClient, dict[str, dict[str, str]], dict[str, str]],
) -> None:
    client, users, ids = served
    signed = client.post("/ui/api/login", json={"token": users["ann"]["Authorization"].split()[1]})
    assert signed.status_code == 200, signed.text
    got = client.get(f"/ui/api/compare/{ids['a1']}/{ids['a2']}")
    assert got.status_code == 200, got.text
    c = got.json()
    assert c["a"]["user"] == c["b"]["user"] == "ann"
    assert c["initial_parameters"]["changed"] == ["x"] and c["initial_parameters"]["added"] == ["db"]
    score = next(s for s in c["steps"] if s["path"] == "score")
    assert score["differs"]["metrics"] and score["b"]["metrics"] == {"quality": 6.0}
    assert "hunter2pw" not in got.text and "app:***@db" in got.text
    theirs = client.get(f"/ui/api/compare/{ids['a1']}/{ids['b1']}")  # bob's: "not found", as the run page
    assert theirs.status_code == 404 and "hunter2pw" not in theirs.text
    queued = client.get(f"/ui/api/compare/{ids['a1']}/{ids['q']}")
    assert queued.status_code == 409 and "has not started yet" in queued.text
    client.cookies.clear()
    assert client.get(f"/ui/api/compare/{ids['a1']}/{ids['a2']}").status_code == 401

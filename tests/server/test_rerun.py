"""Re-running a server run with edited parameters (issue 24), on SQLite and PostgreSQL: a new
run of the same pipeline, config and code, checked as a submission is, that records the run it
came from; refused clearly for parameters that are not a mapping, for a run the caller cannot
see, and across sites. Also the migration that adds the link, up and down, on both databases."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, inspect, select

from conveyor.server.api import create_app
from conveyor.server.auth import create_token, create_user
from conveyor.server.db import engine_for, migrate, runs
from conveyor.server.submission import Refused, parameters_from_text
from support import TASKS
from support.server import tarball_of, wait_for
from support.services import Server

ONE = """dag:
  start_at: one
  steps:
    one: {command: ctasks.add, returns: [total], next: success}
"""


def bearer(engine: object, name: str) -> dict[str, str]:
    create_user(engine, name)
    return {"Authorization": f"Bearer {create_token(engine, name)[1]}"}


@pytest.fixture
def api(db_url: str) -> tuple[TestClient, dict[str, dict[str, str]], Any]:
    """The server app over a fresh database (no workers: runs stay queued), users ann and bob."""
    migrate(db_url)
    app = create_app(db_url)
    engine = app.state.server.engine
    return TestClient(app), {"ann": bearer(engine, "ann"), "bob": bearer(engine, "bob")}, engine


def test_rerun_runs_the_same_pipeline_and_code_with_new_parameters(server: Server) -> None:
    with server.client("ann") as ann:
        body = {
            "pipeline": ONE,
            "parameters": {"a": 1, "b": 2},
            "code": tarball_of(TASKS),
            "file": "p/one.yaml",
        }
        old = ann.post("/runs", json={**body, "name": "adding"}).json()
        assert wait_for(ann, old["id"], ("succeeded", "failed"))["status"] == "succeeded"
        made = ann.post(f"/runs/{old['id']}/rerun", json={"parameters": {"a": 40, "b": 2}})
        assert made.status_code == 201, made.text
        new = made.json()
        assert new["id"] != old["id"] and new["rerun_of"] == old["id"]
        assert new["pipeline_name"] == "adding" and new["pipeline_file"] == "p/one.yaml"
        assert (
            wait_for(ann, new["id"], ("succeeded", "failed"))["status"] == "succeeded"
        )  # the code came along
        detail = ann.get(f"/runs/{new['id']}").json()
        assert detail["parameters"] == {"a": 40, "b": 2}
        assert detail["run_log"]["final_parameters"]["total"] == 42  # 40 + 2, not 1 + 2
        before = ann.get(f"/runs/{old['id']}").json()
        assert (
            before["parameters"] == {"a": 1, "b": 2} and before["rerun_of"] is None
        )  # the old run is as it was
        listed = {r["id"]: r for r in ann.get("/runs").json()["runs"]}
        assert listed[new["id"]]["rerun_of"] == old["id"]


def test_rerun_is_refused_clearly(api: tuple[TestClient, dict[str, dict[str, str]], Any]) -> None:
    client, users, _ = api
    made = client.post("/api/v1/runs", json={"pipeline": ONE, "parameters": {"a": 1}}, headers=users["ann"])
    old = made.json()["id"]
    url = f"/api/v1/runs/{old}/rerun"
    assert client.post(url, json={"parameters": {"a": 2}}).status_code == 401  # no token
    assert (
        client.post(url, json={"parameters": {"a": 2}}, headers=users["bob"]).status_code == 404
    )  # not bob's
    assert (
        client.post("/api/v1/runs/nope/rerun", json={"parameters": {}}, headers=users["ann"]).status_code
        == 404
    )
    listed = client.post(url, json={"parameters": [1, 2]}, headers=users["ann"])
    assert listed.status_code == 422 and "parameters" in listed.text
    misspelt = client.post(url, json={"paramters": {"a": 2}}, headers=users["ann"])
    assert misspelt.status_code == 422 and "paramters" in misspelt.text
    deep: Any = 1
    for _ in range(200):
        deep = {"d": deep}
    too_deep = client.post(url, json={"parameters": {"x": deep}}, headers=users["ann"])
    assert too_deep.status_code in (413, 422) and "nest" in too_deep.text  # the submission's own limit
    ok = client.post(url, json={"parameters": {"a": 3}}, headers=users["ann"])
    assert ok.status_code == 201 and ok.json()["rerun_of"] == old


def test_the_ui_form_reruns_with_located_issues(
    api: tuple[TestClient, dict[str, dict[str, str]], Any],
) -> None:
    client, users, engine = api
    code = tarball_of(TASKS)
    made = client.post("/api/v1/runs", json={"pipeline": ONE, "parameters": {"a": 1, "b": 2}, "code": code},
                       headers=users["ann"])  # fmt: skip
    old = made.json()["id"]
    token = users["ann"]["Authorization"].split()[1]
    assert client.post("/ui/api/login", json={"token": token}).status_code == 200
    csrf = {"X-CSRF-Token": client.cookies["conveyor_csrf"]}
    url = f"/ui/api/runs/{old}/rerun"
    lineage = client.get(f"/ui/api/runs/{old}/lineage").json()
    assert lineage == {"rerun_of": None, "rerun_of_gone": False, "reruns": [], "parameters": {"a": 1, "b": 2}}

    assert client.post(url, json={"parameters": "a: 5\n"}).status_code == 403  # no CSRF token
    evil = {**csrf, "Origin": "http://evil.example"}
    assert client.post(url, json={"parameters": "a: 5\n"}, headers=evil).status_code == 403
    bad = client.post(url, json={"parameters": "a: 5\nb: [1, 2\n"}, headers=csrf)
    assert bad.status_code == 422
    (issue,) = bad.json()["error"]["issues"]
    assert issue["file"] == "<edited parameters>" and issue["line"] in (2, 3)
    listed = client.post(url, json={"parameters": "- 1\n- 2\n"}, headers=csrf).json()["error"]["issues"][0]
    assert listed["expected"].startswith("a mapping") and "list" in listed["found"]

    done = client.post(url, json={"parameters": '{"a": 40, "b": 2}'}, headers=csrf)  # JSON is YAML too
    assert done.status_code == 201, done.text
    new = done.json()["id"]
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == new)).mappings().one()
    assert row["rerun_of"] == old and row["user_id"] is not None
    assert row["code"] == base64.b64decode(code) and row["pipeline"] == ONE
    assert client.get(f"/ui/api/runs/{new}/lineage").json()["rerun_of"] == old
    assert client.get(f"/ui/api/runs/{old}/lineage").json()["reruns"] == [new]

    bob_token = users["bob"]["Authorization"].split()[1]
    with TestClient(client.app) as bob:
        bob.post("/ui/api/login", json={"token": bob_token})
        assert bob.get(f"/ui/api/runs/{old}/lineage").status_code == 404
        headers = {"X-CSRF-Token": bob.cookies["conveyor_csrf"]}
        assert bob.post(url, json={"parameters": "a: 1\n"}, headers=headers).status_code == 404


def test_parameters_text_is_read_as_a_parameters_file() -> None:
    assert parameters_from_text("") == {}
    assert parameters_from_text("a: 1\nb: [x, 'y']\n") == {"a": 1, "b": ["x", "y"]}
    assert parameters_from_text('{"a": null}') == {"a": None}
    for text, found in (("3\n", "integer"), ("a: 1\na: 2\n", None), ("a: [\n", None)):
        with pytest.raises(Refused) as refused:
            parameters_from_text(text)
        assert refused.value.status == 422 and refused.value.issues
        if found:
            assert found in str(refused.value.issues[0]["found"])


def test_migration_0004_adds_and_drops_rerun_of(db_url: str, tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(migrate.__code__.co_filename).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    engine = engine_for(db_url)

    def to(revision: str, down: bool = False) -> None:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            (command.downgrade if down else command.upgrade)(config, revision)

    def columns() -> set[str]:
        return {c["name"] for c in inspect(engine).get_columns("server_runs")}

    to("0003")
    assert "rerun_of" not in columns()
    create_user(engine, "ann")
    with engine.begin() as conn:  # a run from before the migration
        conn.execute(
            insert(runs).values(
                id="before", user_id=1, pipeline_name="p", pipeline="dag: {}", config="", parameters="{}",
                status="succeeded", created_at=1.0, claims=1, cancel_requested=False,
            )
        )  # fmt: skip
    to("head")
    assert "rerun_of" in columns()
    with engine.connect() as conn:
        assert conn.execute(select(runs.c.rerun_of).where(runs.c.id == "before")).scalar_one() is None
    to("0003", down=True)
    assert "rerun_of" not in columns()
    engine.dispose()

"""Tags on server runs (issue 24, point 5), on SQLite and PostgreSQL: a submission's tags are
kept (each once), shown by the API and the UI's listing, filtered by in SQL (``tag``), kept by
a re-run, and refused clearly when they break the rule; the migration that adds them goes up
and down. The CLI: ``conveyor submit --tag`` (repeated) and ``runs list --tag`` against a
server, and ``conveyor execute --tag`` on a laptop."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, inspect, select

from conveyor.server.api import create_app
from conveyor.server.auth import create_token, create_user
from conveyor.server.db import engine_for, migrate, run_tags, runs
from support import TASKS, run_cli
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
def api(db_url: str) -> tuple[TestClient, dict[str, dict[str, str]]]:
    """The server app over a fresh database (no workers: runs stay queued), users ann and bob."""
    migrate(db_url)
    app = create_app(db_url)
    engine = app.state.server.engine
    return TestClient(app), {"ann": bearer(engine, "ann"), "bob": bearer(engine, "bob")}


def _ids(page: dict[str, Any]) -> list[str]:
    return [r["id"] for r in page["runs"]]


def test_tags_are_kept_listed_filtered_and_rerun(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, users = api
    ann, bob = users["ann"], users["bob"]

    def submit(headers: dict[str, str], **extra: Any) -> dict[str, Any]:
        made = client.post(
            "/api/v1/runs", json={"pipeline": ONE, "parameters": {"a": 1}, **extra}, headers=headers
        )
        assert made.status_code == 201, made.text
        body: dict[str, Any] = made.json()
        return body

    nightly = submit(ann, tags=["nightly", "team:data", "nightly"])
    assert nightly["tags"] == ["nightly", "team:data"]  # each once
    plain = submit(ann)
    assert plain["tags"] == []
    other = submit(ann, tags=["team:data"])
    bobs = submit(bob, tags=["nightly"])
    assert client.get(f"/api/v1/runs/{nightly['id']}", headers=ann).json()["tags"] == ["nightly", "team:data"]

    def listed(headers: dict[str, str], **query: Any) -> dict[str, Any]:
        got = client.get("/api/v1/runs", params=query, headers=headers)
        assert got.status_code == 200, got.text
        page: dict[str, Any] = got.json()
        return page

    page = listed(ann, tag="nightly")
    assert _ids(page) == [nightly["id"]] and page["total"] == 1  # bob's nightly run is not ann's
    assert sorted(_ids(listed(ann, tag="team:data"))) == sorted([nightly["id"], other["id"]])
    assert _ids(listed(ann, tag="team:data", limit=1)) and listed(ann, tag="team:data", limit=1)["total"] == 2
    assert listed(ann, tag="nope")["total"] == 0
    every = {r["id"]: r["tags"] for r in listed(ann)["runs"]}
    assert every == {nightly["id"]: ["nightly", "team:data"], plain["id"]: [], other["id"]: ["team:data"]}
    assert _ids(listed(bob, tag="nightly")) == [bobs["id"]]

    again = client.post(f"/api/v1/runs/{nightly['id']}/rerun", json={"parameters": {"a": 2}}, headers=ann)
    assert again.status_code == 201, again.text
    assert again.json()["tags"] == ["nightly", "team:data"] and again.json()["rerun_of"] == nightly["id"]
    assert sorted(_ids(listed(ann, tag="nightly"))) == sorted([nightly["id"], again.json()["id"]])

    bads = ((["has space"], "has space"), (["-x"], "-x"), (["é"], "é"), ([""], ""), (["nl\n"], "nl\n"))
    for bad, found in bads:
        refused = client.post("/api/v1/runs", json={"pipeline": ONE, "tags": bad}, headers=ann)
        assert refused.status_code == 422, refused.text
        issue = refused.json()["error"]["issues"][0]
        assert issue["path"] == ["body", "tags"] and "letters, digits" in issue["message"], issue
        assert repr(found) in issue["message"], issue
    many = client.post(
        "/api/v1/runs", json={"pipeline": ONE, "tags": [f"t{i}" for i in range(21)]}, headers=ann
    )
    assert many.status_code == 422 and "tags" in str(many.json()["error"]["issues"][0]["path"])

    # the UI's listing: the tags shown, offered as a filter, and the filter applied
    client.cookies.clear()
    assert client.post("/ui/api/login", json={"token": ann["Authorization"].split()[1]}).status_code == 200
    ui = client.get("/ui/api/runs", params={"tag": "team:data"}).json()
    assert sorted(_ids(ui)) == sorted([nightly["id"], other["id"], again.json()["id"]]) and ui["total"] == 3
    assert ui["tags"] == ["nightly", "team:data"]  # ann's tags, not bob's as well
    assert {r["id"]: r["tags"] for r in ui["runs"]}[other["id"]] == ["team:data"]


def test_migration_0005_adds_and_drops_the_tags_table(db_url: str) -> None:
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

    to("0004")
    assert "server_run_tags" not in inspect(engine).get_table_names()
    create_user(engine, "ann")
    with engine.begin() as conn:  # a run from before the migration
        conn.execute(
            insert(runs).values(
                id="before", user_id=1, pipeline_name="p", pipeline="dag: {}", config="", parameters="{}",
                status="succeeded", created_at=1.0, claims=1, cancel_requested=False,
            )
        )  # fmt: skip
    to("head")
    assert "server_run_tags" in inspect(engine).get_table_names()
    with engine.begin() as conn:
        assert conn.execute(select(run_tags).where(run_tags.c.run_id == "before")).first() is None
        conn.execute(insert(run_tags).values(run_id="before", tag="old"))
    to("0004", down=True)
    assert "server_run_tags" not in inspect(engine).get_table_names()
    engine.dispose()


def test_the_cli_submits_lists_and_executes_with_tags(tmp_path: Path) -> None:
    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1).start()
    try:
        env = {"CONVEYOR_ENDPOINT": server.endpoint, "CONVEYOR_TOKEN": server.tokens["ann"]}
        (tmp_path / "pipeline.yaml").write_text(ONE)
        args = ("submit", "-f", "pipeline.yaml", "--param", "a=1", "--param", "b=2", "-q")
        tagged = run_cli(*args, "--tag", "nightly", "--tag", "team:data", cwd=tmp_path, env=env)
        assert tagged.returncode == 0, tagged.stderr
        plain = run_cli(*args, cwd=tmp_path, env=env)
        assert plain.returncode == 0, plain.stderr
        first, second = tagged.stdout.strip(), plain.stdout.strip()
        with server.client("ann") as ann:
            assert ann.get(f"/runs/{first}").json()["tags"] == ["nightly", "team:data"]
        listed = run_cli("runs", "list", "--tag", "nightly", cwd=tmp_path, env={**env, "COLUMNS": "200"})
        assert listed.returncode == 0, listed.stderr
        assert (
            first in listed.stdout and second not in listed.stdout and "nightly, team:data" in listed.stdout
        )
        everything = run_cli("runs", "list", cwd=tmp_path, env={**env, "COLUMNS": "200"})
        assert first in everything.stdout and second in everything.stdout
        bad = run_cli(*args, "--tag", "two words", cwd=tmp_path, env=env)
        assert bad.returncode == 2 and "--tag" in bad.stderr and "two words" in bad.stderr
        assert "Traceback" not in bad.stderr
    finally:
        server.stop()
    # on a laptop: execute --tag keeps it in the run's record; runs list --tag finds it
    local = tmp_path / "local"
    local.mkdir()
    (local / "pipeline.yaml").write_text(ONE)
    (local / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    tasks = {"PYTHONPATH": os.pathsep.join(p for p in (str(TASKS), os.environ.get("PYTHONPATH")) if p)}
    common = ("execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--param", "a=1", "--param", "b=2")
    for run_id, more in (("tagged", ("--tag", "nightly")), ("untagged", ())):
        done = run_cli(*common, "--run-id", run_id, *more, cwd=local, env=tasks)
        assert done.returncode == 0, done.stderr
    found = run_cli("runs", "list", "-c", "config.yaml", "--tag", "nightly", cwd=local)
    assert found.returncode == 0 and "tagged" in found.stdout and "untagged" not in found.stdout, found.stdout
    wrong = run_cli(*common, "--tag", "a b", cwd=local, env=tasks)
    assert wrong.returncode == 2 and "--tag" in wrong.stderr and "Traceback" not in wrong.stderr

"""The server's smaller holes (issue 19, point 6), each shown closed: redirects after sign-in,
server-side sessions, relative SQLite URLs, bundles without tarfile's data filter, runnable's
config spellings, NUL characters, the pipeline size limit, unknown body fields and adopting
a run log store's tables.

Most tests drive the real app in-process (``TestClient``) over a real database, SQLite and
PostgreSQL; the end-to-end ones start ``conveyor server start``.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from conveyor.server import limits
from conveyor.server.limits import LimitError, Limits, check_bundles, check_code, check_pipeline, unpack
from conveyor.server.pages import safe_next
from support import TASKS
from support.server import payload, tarball_of, wait_for
from support.services import Server

SMALL = "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


class App:
    """The real API over a migrated database with users ann and bob and their tokens."""

    def __init__(self, url: str, base_url: str = "http://testserver") -> None:
        from conveyor.server.api import create_app
        from conveyor.server.auth import create_token, create_user
        from conveyor.server.db import engine_for, migrate

        migrate(url)
        self.engine = engine_for(url)
        self.tokens = {}
        for name in ("ann", "bob"):
            create_user(self.engine, name)
            self.tokens[name] = create_token(self.engine, name)[1]
        self.app = create_app(url)
        self.base_url = base_url

    def api(self, user: str = "ann") -> TestClient:
        return TestClient(
            self.app, base_url=self.base_url, headers={"Authorization": f"Bearer {self.tokens[user]}"}
        )

    def browser(self) -> TestClient:
        return TestClient(self.app, base_url=self.base_url, follow_redirects=False)


@pytest.fixture
def app(db_url: str) -> Iterator[App]:
    made = App(db_url)
    yield made
    made.engine.dispose()


def issue_paths(answer: Any) -> list[list[str]]:
    return [issue["path"] for issue in answer.json()["error"]["issues"]]


# --- redirects after signing in -------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "/\\evil.example",
        "//evil.example",
        "/\\/evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "https://evil.example/",
        "javascript:alert(1)",
        "evil.example",
        "",
        None,
    ],
)
def test_only_paths_of_this_server_are_redirected_to(target: str | None) -> None:
    assert safe_next(target) == "/"


@pytest.mark.parametrize("target", ["/", "/runs/abc", "/runs/abc/logs?step=a%2Fb", "/metrics?x=//y"])
def test_paths_of_this_server_are_kept(target: str) -> None:
    assert safe_next(target) == target


def test_the_sign_in_page_never_carries_an_unsafe_next(tmp_path: Path) -> None:
    app = App(f"sqlite:///{tmp_path / 'server.db'}")
    browser = app.browser()
    bounced = browser.get("/login", params={"next": "/\\evil.example"})
    assert bounced.status_code == 303 and bounced.headers["location"] == "/login?next=%2F"
    kept = browser.get("/login", params={"next": "/runs/abc"})
    assert kept.status_code == 200 and "<html" in kept.text.lower()
    signed = browser.post("/ui/api/login", json={"token": app.tokens["ann"], "next": "/\\evil.example"})
    assert signed.status_code == 200 and signed.json()["next"] == "/"


# --- sessions ---------------------------------------------------------------------------------


def test_sessions_are_the_servers_not_the_token(app: App) -> None:
    from conveyor.server.auth import revoke_token

    run_id = app.api().post("/api/v1/runs", json={"pipeline": SMALL}).json()["id"]
    planted = app.browser()
    planted.cookies.set("conveyor_session", app.tokens["ann"])  # the old cookie: the raw token
    assert planted.get("/ui/api/runs").status_code == 401

    browser = app.browser()
    signed = browser.post("/ui/api/login", json={"token": app.tokens["ann"]})
    assert signed.status_code == 200
    session, csrf = browser.cookies["conveyor_session"], browser.cookies["conveyor_csrf"]
    assert app.tokens["ann"] not in (session, csrf)
    assert browser.get("/ui/api/runs").json()["total"] == 1

    # The CSRF token is the session's: a cookie and header an attacker chose match nothing.
    browser.cookies.set("conveyor_csrf", "chosen")
    refused = browser.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": "chosen"})
    assert refused.status_code == 403
    other = app.browser()
    other.post("/ui/api/login", json={"token": app.tokens["bob"]})
    theirs = other.cookies["conveyor_csrf"]
    assert browser.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": theirs}).status_code == 403
    done = browser.post(f"/ui/api/runs/{run_id}/cancel", headers={"X-CSRF-Token": csrf})
    assert done.status_code == 200, done.text

    # Signing out revokes the session itself: a copy of the cookie is worthless after.
    thief = app.browser()
    thief.cookies.set("conveyor_session", session)
    assert thief.get("/ui/api/runs").status_code == 200
    assert browser.post("/ui/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
    ended = thief.get("/ui/api/runs")
    assert ended.status_code == 401 and "sign in again" in ended.json()["error"]["message"]
    assert app.api().get("/api/v1/runs").status_code == 200  # the token itself still works

    # Revoking the token ends the sessions it opened.
    assert other.get("/ui/api/runs").status_code == 200
    revoke_token(app.engine, app.tokens["bob"])
    assert other.get("/ui/api/runs").json()["error"]["message"] == "token revoked: sign in with another token"


def test_expired_sessions_end(tmp_path: Path) -> None:
    from conveyor.server.auth import AuthError, find_session, open_session

    app = App(f"sqlite:///{tmp_path / 'server.db'}")
    live, _ = open_session(app.engine, app.tokens["ann"])
    old, _ = open_session(app.engine, app.tokens["ann"], seconds=-1)
    assert find_session(app.engine, live).user.name == "ann"
    with pytest.raises(AuthError, match="session has ended"):
        find_session(app.engine, old)


def set_cookies(answer: Any) -> list[str]:
    return [v for k, v in answer.headers.multi_items() if k.lower() == "set-cookie"]


def test_cookies_are_secure_behind_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = App(f"sqlite:///{tmp_path / 'server.db'}")
    plain = app.browser().post("/ui/api/login", json={"token": app.tokens["ann"]})
    assert plain.status_code == 200 and not any("secure" in c.lower() for c in set_cookies(plain))
    over_https = TestClient(app.app, base_url="https://testserver")
    tls = set_cookies(over_https.post("/ui/api/login", json={"token": app.tokens["ann"]}))
    assert len(tls) == 2 and all("secure" in c.lower() for c in tls)
    monkeypatch.setenv("CONVEYOR_SERVER_SECURE_COOKIES", "1")
    said = set_cookies(app.browser().post("/ui/api/login", json={"token": app.tokens["ann"]}))
    assert len(said) == 2 and all("secure" in c.lower() for c in said)
    assert all("httponly" in c.lower() for c in said if c.startswith("conveyor_session="))


# --- NUL characters and unknown fields --------------------------------------------------------


def test_nul_is_refused_everywhere_with_422(app: App) -> None:
    api = app.api()
    named = api.post("/api/v1/runs", json={"pipeline": SMALL, "name": "a\x00b"})
    assert named.status_code == 422 and issue_paths(named) == [["body", "name"]]
    assert "NUL" in named.json()["error"]["message"]
    deep = api.post("/api/v1/runs", json={"pipeline": SMALL, "parameters": {"x": ["ok", "b\x00"]}})
    assert deep.status_code == 422 and issue_paths(deep) == [["body", "parameters", "x", "1"]]
    raw = api.post(
        "/api/v1/runs", content=b'{"pipeline": "a\x00"}', headers={"Content-Type": "application/json"}
    )
    assert raw.status_code == 422 and issue_paths(raw) == [["body"]]
    listed = api.get("/api/v1/runs", params={"pipeline": "a\x00b"})
    assert listed.status_code == 422 and issue_paths(listed) == [["query", "pipeline"]]
    assert api.get("/api/v1/runs", params={"user": "\x00"}).status_code == 422
    in_path = api.get("/api/v1/runs/abc%00def")
    assert in_path.status_code == 422 and issue_paths(in_path) == [["path"]]
    assert api.get("/api/v1/runs/abc/logs", params={"step": "a\x00"}).status_code == 422
    assert api.post("/api/v1/runs/abc%00/cancel").status_code == 422
    browser = app.browser()
    assert browser.post("/ui/api/login", json={"token": "cvt_\x00"}).status_code == 422
    browser.post("/ui/api/login", json={"token": app.tokens["ann"]})
    assert browser.get("/ui/api/runs", params={"q": "\x00"}).status_code == 422
    # A backslash followed by "u0000" is text, not NUL: accepted and stored as sent.
    text = api.post("/api/v1/runs", json={"pipeline": SMALL, "name": "a\\u0000b"})
    assert text.status_code == 201, text.text
    assert api.get("/api/v1/runs").json()["total"] == 1  # the database is still fine


def test_a_lone_surrogate_is_refused_and_a_pair_kept(app: App) -> None:
    # '\ud800' alone decoded to a character no page could encode: the run was accepted, then
    # every GET of it answered 500 (hostile review).
    api = app.api()
    lone = api.post(
        "/api/v1/runs",
        content=b'{"pipeline": %s, "parameters": {"a": "x\\ud800"}}' % json.dumps(SMALL).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert lone.status_code == 422 and issue_paths(lone) == [["body", "parameters", "a"]], lone.text
    pair = api.post(
        "/api/v1/runs",
        content=b'{"pipeline": %s, "parameters": {"a": "\\ud83d\\ude00"}}' % json.dumps(SMALL).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert pair.status_code == 201, pair.text
    shown = api.get(f"/api/v1/runs/{pair.json()['id']}")
    assert shown.status_code == 200 and shown.json()["parameters"] == {"a": "\U0001f600"}


def test_unknown_body_fields_are_refused_by_name(app: App) -> None:
    typo = app.api().post("/api/v1/runs", json={"pipeline": SMALL, "paramters": {"x": 1}})
    assert typo.status_code == 422
    error = typo.json()["error"]
    assert error["message"] == "unknown field 'paramters' in the request"
    assert error["issues"][0]["path"] == ["body", "paramters"]
    assert error["issues"][0]["hint"] == "did you mean 'parameters'?"
    two = app.api().post("/api/v1/runs", json={"pipeline": SMALL, "nmae": "x", "zzz": 1})
    assert two.json()["error"]["message"] == "unknown fields 'nmae', 'zzz' in the request"
    login = app.browser().post("/ui/api/login", json={"token": app.tokens["ann"], "tokn": "x"})
    assert login.status_code == 422 and login.json()["error"]["issues"][0]["hint"] == "did you mean 'token'?"


# --- runnable's config spellings --------------------------------------------------------------


def stored_config(app: App, run_id: str) -> Any:
    from sqlalchemy import select

    from conveyor.server.db import runs

    with app.engine.connect() as conn:
        return yaml.safe_load(conn.execute(select(runs.c.config).where(runs.c.id == run_id)).scalar_one())


def test_runnable_spellings_are_stored_in_conveyors(app: App) -> None:
    config = (
        "pipeline-executor: {type: emulator}\ncatalog: {type: do-nothing}\nsecrets: {type: env-secrets}\n"
    )
    created = app.api().post("/api/v1/runs", json={"pipeline": SMALL, "config": config})
    assert created.status_code == 201, created.text
    assert stored_config(app, created.json()["id"]) == {
        "executor": {"type": "local", "config": {"isolation": "process"}},
        "catalog": {"type": "none"},
        "secrets": {"type": "env"},
    }
    # A run log store is the server's own: runnable's spelling of one is refused, located.
    store = app.api().post(
        "/api/v1/runs", json={"pipeline": SMALL, "config": "run-log-store: {type: file-system}\n"}
    )
    assert store.status_code == 422 and store.json()["error"]["issues"][0]["path"] == ["run_log_store"]
    plain = app.api().post("/api/v1/runs", json={"pipeline": SMALL})
    assert stored_config(app, plain.json()["id"]) is None  # no config: none stored
    retry = app.api().post(
        "/api/v1/runs", json={"pipeline": SMALL, "config": "executor: {type: retry, config: {run_id: r1}}"}
    )
    assert retry.status_code == 422 and "conveyor retry r1" in retry.json()["error"]["message"]


# --- one pipeline size limit ------------------------------------------------------------------


def test_the_api_refuses_the_pipelines_the_worker_would(tmp_path: Path) -> None:
    from conveyor.spec.errors import SpecError
    from conveyor.spec.yamlload import load_yaml_file

    limit = Limits().pipeline_bytes
    at_limit = SMALL + "#" * (limit - len(SMALL) - 1) + "\n"
    assert len(at_limit.encode()) == limit
    check_pipeline(at_limit, Limits())
    (tmp_path / "at.yaml").write_text(at_limit)
    assert load_yaml_file(tmp_path / "at.yaml").data["dag"]["start_at"] == "a"  # the worker's reader
    over = at_limit + "#"
    with pytest.raises(
        LimitError, match=f"the pipeline has {limit + 1:,} bytes, over the limit of {limit:,}"
    ):
        check_pipeline(over, Limits())
    (tmp_path / "over.yaml").write_text(over)
    with pytest.raises(SpecError, match="too large"):
        load_yaml_file(tmp_path / "over.yaml")

    app = App(f"sqlite:///{tmp_path / 'server.db'}")
    big = app.api().post("/api/v1/runs", json={"pipeline": SMALL + "#" * (15 * 1024 * 1024) + "\n"})
    assert big.status_code == 413 and "over the limit of 8,388,608 bytes" in big.json()["error"]["message"]
    config = app.api().post("/api/v1/runs", json={"pipeline": SMALL, "config": "#" * (limit + 1)})
    assert config.status_code == 413 and config.json()["error"]["message"].startswith("the config has")


# --- code bundles without tarfile's data filter -----------------------------------------------


def tar_of(*members: tuple[str, bytes, str, int]) -> bytes:
    """A gzipped tar of (name, type, link target, mode) members; files hold b'x'."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, kind, link, mode in members:
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.mode = kind, link, mode
            info.size = 1 if kind == tarfile.REGTYPE else 0
            archive.addfile(info, io.BytesIO(b"x") if kind == tarfile.REGTYPE else None)
    return buffer.getvalue()


UNSAFE = {
    "../ member": tar_of(("../escape.py", tarfile.REGTYPE, "", 0o644)),
    "absolute symlink": tar_of(("usr", tarfile.SYMTYPE, "/usr/share", 0o777)),
    "symlink out": tar_of(("up", tarfile.SYMTYPE, "../../etc", 0o777)),
    "hard link out": tar_of(("x", tarfile.LNKTYPE, "../../etc/passwd", 0o644)),
    "device": tar_of(("null", tarfile.CHRTYPE, "", 0o666)),
    "fifo": tar_of(("pipe", tarfile.FIFOTYPE, "", 0o666)),
}


@pytest.fixture
def no_data_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.11.0-3.11.3: tarfile has neither data_filter nor FilterError."""
    monkeypatch.setattr(limits, "DATA_FILTER", None)
    monkeypatch.delattr(tarfile, "data_filter", raising=False)
    monkeypatch.delattr(tarfile, "FilterError", raising=False)


@pytest.mark.parametrize("shape", sorted(UNSAFE))
def test_unsafe_bundles_are_refused_with_and_without_the_data_filter(
    shape: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(LimitError, match="unsafe entry"):
        check_code(UNSAFE[shape], Limits())
    monkeypatch.setattr(limits, "DATA_FILTER", None)
    with pytest.raises(LimitError, match="unsafe entry"):
        check_code(UNSAFE[shape], Limits())


def test_absolute_members_never_land_outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Python's data filter strips the leading '/' (the member lands inside); without the
    filter, conveyor refuses the member outright."""
    bundle = tar_of(("/etc/cron.d/x", tarfile.REGTYPE, "", 0o644))
    if limits.DATA_FILTER is not None:
        unpack(bundle, tmp_path / "code", Limits())
        assert (tmp_path / "code" / "etc" / "cron.d" / "x").read_text() == "x"
    monkeypatch.setattr(limits, "DATA_FILTER", None)
    with pytest.raises(LimitError, match=re.escape("'/etc/cron.d/x' is an absolute path")):
        check_code(bundle, Limits())


def test_bundles_unpack_safely_without_the_data_filter(tmp_path: Path, no_data_filter: None) -> None:
    assert check_bundles() == "conveyor's own checks"
    bundle = tar_of(
        ("pkg", tarfile.DIRTYPE, "", 0o755),
        ("pkg/run.sh", tarfile.REGTYPE, "", 0o4755),  # set-uid: dropped
        ("pkg/data.txt", tarfile.REGTYPE, "", 0o600),
        ("lib", tarfile.SYMTYPE, "pkg", 0o777),
        ("pkg/copy.txt", tarfile.LNKTYPE, "pkg/data.txt", 0o600),
    )
    unpack(bundle, tmp_path / "code", Limits())
    run = (tmp_path / "code" / "pkg" / "run.sh").stat().st_mode
    assert stat.S_IMODE(run) == 0o755 and not run & stat.S_ISUID
    assert stat.S_IMODE((tmp_path / "code" / "pkg" / "data.txt").stat().st_mode) == 0o644
    assert (tmp_path / "code" / "lib").is_symlink() and (
        tmp_path / "code" / "lib" / "data.txt"
    ).read_text() == "x"
    assert (tmp_path / "code" / "pkg" / "copy.txt").read_text() == "x"
    with pytest.raises(LimitError, match="unsafe entry"):
        unpack(UNSAFE["symlink out"], tmp_path / "other", Limits())
    assert not (tmp_path / "other").exists()  # refused before anything was written


def test_submissions_with_code_work_without_the_data_filter(tmp_path: Path, no_data_filter: None) -> None:
    app = App(f"sqlite:///{tmp_path / 'server.db'}")
    created = app.api().post("/api/v1/runs", json={"pipeline": SMALL, "code": tarball_of(TASKS)})
    assert created.status_code == 201, created.text


def test_the_start_up_check_names_the_rules_in_force() -> None:
    assert check_bundles() == (
        "Python's data filter" if hasattr(tarfile, "data_filter") else "conveyor's own checks"
    )


# --- relative SQLite URLs ---------------------------------------------------------------------


def test_relative_sqlite_urls_are_made_absolute() -> None:
    from conveyor.server.db import absolute_url

    assert absolute_url("sqlite:///server.db", "/srv") == "sqlite:////srv/server.db"
    assert (
        absolute_url("sqlite+pysqlite:///d/x.db?timeout=3", "/srv")
        == "sqlite+pysqlite:////srv/d/x.db?timeout=3"
    )
    for kept in ("sqlite:////abs/x.db", "sqlite://", "sqlite:///:memory:", "postgresql+psycopg://u:p@h/db"):
        assert absolute_url(kept, "/srv") == kept


def test_a_server_on_a_relative_sqlite_url_runs_runnable_configs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--db sqlite:///server.db`` from the operator's directory, and the documented
    ``pipeline-executor`` spelling: the run (in a folder of its own) succeeds."""
    monkeypatch.chdir(tmp_path)
    migrated = subprocess.run(
        [sys.executable, "-m", "conveyor.cli", "server", "migrate", "--db", "sqlite:///server.db"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"database sqlite:///{tmp_path / 'server.db'} is at the newest schema" in migrated.stdout
    server = Server("sqlite:///server.db", tmp_path, workers=1).start()
    try:
        with server.client("ann") as ann:
            body = payload(
                tmp_path / "counter", code=tarball_of(TASKS), config="pipeline-executor: {type: local}\n"
            )
            created = ann.post("/runs", json=body)
            assert created.status_code == 201, created.text
            run = wait_for(ann, created.json()["id"], ("succeeded", "failed"), timeout=120)
            assert run["status"] == "succeeded", run
            assert run["run_log"]["config"]["executor"]["type"] == "local"
    finally:
        server.stop()


# --- a run log store's database becoming the server's ----------------------------------------


def test_a_run_log_stores_database_becomes_the_servers(db_url: str) -> None:
    from conveyor.runlog.records import RunRecord
    from conveyor.runlog.sql import SQLRunLogStore
    from conveyor.server.db import migrate

    store = SQLRunLogStore(db_url)  # used first as a `postgres`/`sql` run log store
    store.save_run(RunRecord(run_id="before-the-server", pipeline_name="p"), create=True)
    store.engine.dispose()
    migrate(db_url)
    migrate(db_url)  # and again: nothing left to do
    assert SQLRunLogStore(db_url, create=False).load("before-the-server").run.run_id == "before-the-server"
    # The schema is complete: users, tokens and sessions work on it.
    from conveyor.server.auth import create_token, create_user, open_session
    from conveyor.server.db import engine_for

    engine = engine_for(db_url)
    create_user(engine, "ann")
    assert open_session(engine, create_token(engine, "ann")[1])[1].user.name == "ann"
    engine.dispose()


def test_a_foreign_table_of_the_same_name_is_refused_saying_what_to_do(db_url: str) -> None:
    import sqlalchemy as sa

    from conveyor.errors import ConveyorError
    from conveyor.server.db import engine_for, migrate

    engine = engine_for(db_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE conveyor_runs (id INTEGER PRIMARY KEY, name TEXT)"))
    engine.dispose()
    with pytest.raises(
        ConveyorError, match="already has a table 'conveyor_runs' that is not conveyor's run log"
    ):
        migrate(db_url)


def test_a_new_sqlite_database_is_readable_by_the_server_user_only(tmp_path: Path) -> None:
    """It holds token hashes and every run's config and parameters: 0600, whatever the umask."""
    from conveyor.server.db import engine_for, migrate

    path = tmp_path / "server.db"
    old = os.umask(0o022)
    try:
        migrate(f"sqlite:///{path}")
        engine = engine_for(f"sqlite:///{path}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        engine.dispose()
    finally:
        os.umask(old)
    made = [p for p in tmp_path.iterdir() if p.name.startswith("server.db")]
    assert made, "no database file made"
    for file in made:
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file.name

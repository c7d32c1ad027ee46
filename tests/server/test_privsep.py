"""Privilege separation: a server run's engine and steps are in the sandbox together, and the
trusted side (the worker) only takes the run's JSON run log writes. Each hostile case of the
security review is a test here: it must not get through, and the run's own legitimate work
(object returns, caching, the catalog) must still work. Needs bubblewrap and PostgreSQL."""

from __future__ import annotations

import glob
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from support import TASKS, need_service
from support.server import tarball_of, wait_for
from support.services import Server

pytestmark = pytest.mark.sandbox

CODE = tarball_of(TASKS)

BOMBS = """dag:
  start_at: make
  steps:
    make:
      command: hostile.make_bomb
      returns: [{name: bomb, kind: object}]
      cache: true
      next: use
    use: {command: hostile.use_bomb, returns: [used], next: fan}
    fan:
      type: map
      iterate_on: items
      iterate_as: item
      reducer: hostile.count
      branch:
        start_at: one
        steps:
          one: {command: hostile.item_bomb, returns: [{name: piece, kind: object}], next: success}
      next: success
"""


def _server(tmp_path: Path, workers: int = 2, **env: str) -> Server:
    if shutil.which("bwrap") is None:
        need_service("sandbox", "bubblewrap (bwrap) is not installed: apt-get install bubblewrap")
    data, home = tmp_path / "data", tmp_path / "home"
    (home / ".config" / "conveyor").mkdir(parents=True)
    (home / ".config" / "conveyor" / "profiles.json").write_text('{"token": "admin-secret-token"}')
    (home / ".pgpass").write_text("*:*:*:postgres:hunter2\n")
    data.mkdir()
    (tmp_path / "srv").mkdir()
    server = Server(f"sqlite:///{data / 'server.db'}", tmp_path / "srv", workers=workers)
    # Nothing of the test's folder is writable from a run: the marker of an unpickled
    # object can only be written from outside the sandbox.
    server.env.update(
        CONVEYOR_SERVER_SANDBOX="bwrap", CONVEYOR_SANDBOX_EXTRA="", XDG_DATA_HOME=str(data), HOME=str(home)
    )
    server.env.update(env)
    return server.start()


def _run(client: Any, pipeline: str, parameters: dict[str, Any], config: str = "") -> dict[str, Any]:
    body = {"pipeline": pipeline, "code": CODE, "parameters": parameters, "config": config}
    created = client.post("/runs", json=body)
    assert created.status_code == 201, created.text
    wait_for(client, created.json()["id"], ("succeeded", "failed", "cancelled"), timeout=240)
    detail: dict[str, Any] = client.get(f"/runs/{created.json()['id']}").json()
    return detail


def _cached(detail: dict[str, Any], name: str) -> bool:
    """Whether the step's last attempt was served from the cache (its record says so)."""
    step = next(s for s in detail["steps"] if s["path"] == [name])
    return bool((step.get("info") or {}).get("cached"))


def test_no_object_a_run_returns_is_unpickled_outside_its_sandbox(tmp_path: Path) -> None:
    """A hostile ``__reduce__`` in an object return, a cache entry and a reducer's input:
    each is unpickled only inside the sandbox (its marker is never written), and the run's
    object returns, cache and reducer still work."""
    outside = tmp_path / "outside"
    outside.mkdir()
    marker = str(outside / "unpickled.txt")
    server = _server(tmp_path)
    try:
        with server.client("ann") as ann:
            first = _run(ann, BOMBS, {"marker": marker, "items": [1, 2, 3]})
            assert first["status"] == "succeeded", first
            final = first["run_log"]["final_parameters"]
            assert final["used"] == "return"  # the consumer got the object, unpickled inside
            assert final["piece"] == 3  # the reducer got every item's object
            second = _run(ann, BOMBS, {"marker": marker, "items": [1, 2, 3]})
            assert second["status"] == "succeeded", second
            assert _cached(second, "make"), second["steps"]
            assert second["run_log"]["final_parameters"]["used"] == "return"
    finally:
        server.stop()
    assert not Path(marker).exists(), Path(marker).read_text()


def test_submitted_configs_cannot_name_the_servers_places(tmp_path: Path) -> None:
    server = _server(tmp_path)
    try:
        with server.client("ann") as ann:
            for config, where in (
                (f"catalog:\n  type: file\n  config: {{location: {tmp_path / 'data'}}}\n", "catalog"),
                ("catalog: {type: file-system, config: {catalog_location: ../../..}}\n", "catalog"),
                ("secrets:\n  type: dotenv\n  config: {location: /srv/operator.env}\n", "secrets"),
                ("run_log_store: {type: file, config: {path: /tmp/runs}}\n", "run_log_store"),
            ):
                body = {"pipeline": BOMBS, "parameters": {}, "config": config}
                refused = ann.post("/runs", json=body)
                assert refused.status_code == 422, (config, refused.text)
                issues = refused.json()["error"]["issues"]
                assert issues[0]["path"][0] == where, issues
                assert issues[0]["line"] is not None and issues[0]["hint"], issues
            # A config's $variables are never filled from the server's own environment.
            body = {
                "pipeline": BOMBS,
                "parameters": {},
                "config": "executor:\n  type: local\n  config: {max_workers: $PATH}\n",
            }
            refused = ann.post("/runs", json=body)
            assert refused.status_code == 422 and "'PATH'" in refused.text, refused.text
            assert server.env["PATH"] not in refused.text
    finally:
        server.stop()


def test_links_a_step_made_are_not_followed_by_the_worker(tmp_path: Path) -> None:
    """A step replaces the files the worker writes into its work directory with links to
    the server user's files; the retry prepares the directory again without writing them."""
    victim = tmp_path / "home" / ".bashrc"
    pipeline = """dag:
  start_at: plant
  steps:
    plant: {command: hostile.plant_links, next: success}
"""
    server = _server(tmp_path)
    victim.write_text("operator's own\n")
    try:
        with server.client("ann") as ann:
            detail = _run(ann, pipeline, {"victim": str(victim)})
            assert detail["status"] == "failed"
            assert "links planted" in json.dumps(detail["steps"])
            retried = ann.post(f"/runs/{detail['id']}/retry")
            assert retried.status_code in (200, 201), retried.text
            wait_for(ann, retried.json()["id"], ("succeeded", "failed"), timeout=120)
    finally:
        server.stop()
    assert victim.read_text() == "operator's own\n"
    assert sorted(p.name for p in victim.parent.iterdir()) == [".bashrc", ".config", ".pgpass"]


def test_a_step_sees_no_home_and_no_database_socket(tmp_path: Path, postgres_url: str) -> None:
    port = postgres_url.rsplit(":", 1)[1].split("/")[0]
    sockets = glob.glob(f"/tmp/conveyor-pg-*/.s.PGSQL.{port}")
    assert sockets, "the test PostgreSQL has no unix socket"
    pipeline = """dag:
  start_at: look
  steps:
    look: {command: hostile.look_around, returns: [seen], next: success}
"""
    params = {
        "home_file": str(tmp_path / "home" / ".config" / "conveyor" / "profiles.json"),
        "pg_socket": sockets[0],
        "pg_dir": str(Path(sockets[0]).parent),
    }
    server = _server(tmp_path)
    try:
        with server.client("ann") as ann:
            detail = _run(ann, pipeline, params)
    finally:
        server.stop()
    assert detail["status"] == "succeeded", detail
    seen = detail["run_log"]["final_parameters"]["seen"]
    assert seen["home_file"].startswith("refused"), seen
    assert seen["pg_socket"].startswith("refused"), seen
    assert seen["pg_dir"].startswith("refused"), seen
    assert seen["run_dir"] == "empty", seen
    assert ".pgpass" not in seen["home"] and ".config" not in seen["home"], seen


def test_one_users_cache_is_never_served_to_another(tmp_path: Path) -> None:
    pipeline = """dag:
  start_at: stamp
  steps:
    stamp: {command: hostile.stamp, returns: [value], cache: true, next: success}
"""
    server = _server(tmp_path)
    try:
        with server.client("ann") as ann, server.client("bob") as bob:
            a1, a2 = _run(ann, pipeline, {}), _run(ann, pipeline, {})
            b1 = _run(bob, pipeline, {})
    finally:
        server.stop()
    value = [d["run_log"]["final_parameters"]["value"] for d in (a1, a2, b1)]
    assert value[0] == value[1], "ann's second run is served from ann's cache"
    assert _cached(a2, "stamp")
    assert value[2] != value[0] and not _cached(b1, "stamp"), "bob ran his own step"


LIMITED = """dag:
  start_at: hog
  steps:
    hog: {command: hostile.HOG, returns: [out], next: success}
"""


def test_a_run_that_exceeds_its_limits_fails_alone(tmp_path: Path) -> None:
    """A fork swarm, a memory hog and a disk filler each fail their own run with a message
    naming the limit; another user's run completes meanwhile; the server stays healthy."""
    server = _server(
        tmp_path,
        workers=4,
        CONVEYOR_RUN_MAX_PROCESSES="120",
        CONVEYOR_RUN_MAX_MEMORY_MB="300",
        CONVEYOR_RUN_MAX_DISK_MB="24",
    )
    cases = {
        "fork_swarm": ({"count": 400}, "CONVEYOR_RUN_MAX_PROCESSES"),
        "memory_hog": ({"megabytes": 1200}, "CONVEYOR_RUN_MAX_MEMORY_MB"),
        "disk_filler": ({"megabytes": 60}, "CONVEYOR_RUN_MAX_DISK_MB"),
    }
    try:
        with server.client("ann") as ann, server.client("bob") as bob:
            ids = {}
            for name, (params, _) in cases.items():
                body = {"pipeline": LIMITED.replace("HOG", name), "code": CODE, "parameters": params}
                ids[name] = ann.post("/runs", json=body).json()["id"]
            normal = _run(bob, LIMITED.replace("HOG", "stamp"), {})
            assert normal["status"] == "succeeded", normal
            for name, (_, variable) in cases.items():
                run = wait_for(ann, ids[name], ("succeeded", "failed"), timeout=240)
                assert run["status"] == "failed", (name, run)
                assert variable in (run.get("error") or ""), (name, run.get("error"))
            assert ann.get("/health").json()["status"] == "ok"
            after = _run(bob, LIMITED.replace("HOG", "stamp"), {})
            assert after["status"] == "succeeded"
    finally:
        server.stop()


SECRETS = """dag:
  start_at: declares
  steps:
    declares: {command: hostile.secret_seen, secrets: [SVC_TOKEN], returns: [mine], next: other}
    other: {command: hostile.secret_seen, returns: [theirs], next: success}
"""


def test_an_operator_secret_reaches_only_the_step_that_declares_it(tmp_path: Path) -> None:
    server = _server(tmp_path, CONVEYOR_SERVER_SECRETS="SVC_TOKEN", SVC_TOKEN="op-secret-value-42")
    try:
        with server.client("ann") as ann:
            detail = _run(ann, SECRETS, {"name": "SVC_TOKEN"})
            logs = ann.get(f"/runs/{detail['id']}/logs").text
    finally:
        server.stop()
    assert detail["status"] == "succeeded", detail
    final = detail["run_log"]["final_parameters"]
    assert final["mine"]["env"] is True  # the declaring step has it (and its own guard process)
    assert final["theirs"] == {"env": False, "elsewhere": False}, final  # no other process shows it
    assert "op-secret-value-42" not in json.dumps(detail) + logs

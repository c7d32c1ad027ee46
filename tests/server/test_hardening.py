"""No submission stops a worker, limits are the same in the API and the worker, and the API
hands out no credentials and only valid JSON."""

from __future__ import annotations

import base64
import io
import json
import tarfile
from pathlib import Path

import pytest

from conveyor.server.limits import LimitError, Limits, check_code
from conveyor.server.redact import finite, without_credentials
from support import TASKS, run_cli
from support.server import payload, tarball_of, wait_for
from support.services import Server


def tar_with(*members: tuple[tarfile.TarInfo, bytes | None]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def member(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"x", link: str = ""
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


BAD_BUNDLES = {
    "not a tar": b"this is not a tar archive at all",
    "a ../ member": tar_with(member("../escape.py")),
    "an absolute symlink": tar_with(member("usr", tarfile.SYMTYPE, link="/usr/share")),
    "a device node": tar_with(member("null", tarfile.CHRTYPE)),
    "a hard link out": tar_with(member("x", tarfile.LNKTYPE, link="../../etc/passwd")),
}


@pytest.mark.parametrize("shape", sorted(BAD_BUNDLES))
def test_unsafe_bundles_are_refused_by_the_same_rules_as_the_worker(shape: str) -> None:
    with pytest.raises(LimitError):
        check_code(BAD_BUNDLES[shape], Limits())


def test_bundle_limits_name_the_limit() -> None:
    many = tar_with(*(member(f"f{i}.py") for i in range(30)))
    with pytest.raises(LimitError, match="30 entries, over the limit of 20 entries") as info:
        check_code(many, Limits(code_files=20))
    assert info.value.status == 413
    big = tar_with(member("big.bin", data=b"0" * 5000))
    with pytest.raises(LimitError, match="unpacked, has 5,000 bytes, over the limit of 1,000"):
        check_code(big, Limits(code_unpacked=1000))


def test_credentials_are_masked_and_values_made_valid_json() -> None:
    config = {
        "run_log_store": {"type": "sql", "config": {"url": "postgresql+psycopg://conveyor:s3cret@db:5432/x"}},
        "catalog": {"config": {"storage_options": {"key": "AKIA123", "secret": "abc", "client_kwargs": {}}}},
    }
    masked = json.dumps(without_credentials(config))
    assert "s3cret" not in masked and "AKIA123" not in masked and "abc" not in masked
    assert "postgresql+psycopg://conveyor:***@db:5432/x" in masked
    assert json.dumps(finite({"a": [float("nan"), float("inf"), -float("inf"), 1.5]}), allow_nan=False) == (
        '{"a": ["NaN", "Infinity", "-Infinity", 1.5]}'
    )


def test_no_bad_submission_stops_a_worker(server: Server, tmp_path: Path) -> None:
    """Bad bundles, deep parameters and NaN are refused or recorded; bundles that reach a
    worker behind the API's back fail their run, and the next run still completes."""
    from conveyor.server import queue
    from conveyor.server.db import engine_for

    with server.client("ann") as ann:
        for shape, data in BAD_BUNDLES.items():
            refused = ann.post("/runs", json=payload(tmp_path / "c", code=base64.b64encode(data).decode()))
            assert refused.status_code == 422, (shape, refused.text)
        deep: object = 1
        for _ in range(150):
            deep = [deep]
        too_deep = ann.post("/runs", json=payload(tmp_path / "c", parameters={"x": deep}))
        assert too_deep.status_code == 422 and "nest deeper than 100" in too_deep.text
        assert ann.get("/docs").status_code == 404 and ann.get("/redoc").status_code == 404
        engine = engine_for(server.db)
        owner = ann.get("/runs").json()  # the user id: from a run of theirs
        good = ann.post("/runs", json=payload(tmp_path / "c", code=tarball_of(TASKS))).json()
        wait_for(ann, good["id"], ("succeeded",))
        user_id = queue.get(engine, good["id"])["user_id"]  # type: ignore[index]
        assert owner["total"] == 0
        bad_ids = [
            queue.submit(engine, user_id, "p", good_pipeline(), "", {}, data, None)
            for data in BAD_BUNDLES.values()
        ]
        nan = ann.post(
            "/runs",
            content=json.dumps(
                {
                    **payload(tmp_path / "c", code=tarball_of(TASKS)),
                    "parameters": {
                        "counter": str(tmp_path / "c"),
                        "tag": "one",
                        "seconds": 0,
                        "x": "three",
                        "v": float("nan"),
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        assert nan.status_code == 201, nan.text
        after = ann.post("/runs", json=payload(tmp_path / "c", code=tarball_of(TASKS))).json()
        for run_id in bad_ids:
            failed = wait_for(ann, run_id, ("failed", "succeeded"))
            assert failed["status"] == "failed" and failed["error"], failed
        assert wait_for(ann, after["id"], ("succeeded", "failed"))["status"] == "succeeded"
        shown = ann.get(f"/runs/{nan.json()['id']}")
        assert shown.status_code == 200 and shown.json()["parameters"]["v"] == "NaN"


def good_pipeline() -> str:
    return "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


def test_dask_and_argo_are_refused_unless_the_operator_allows_them(server: Server) -> None:
    with server.client("ann") as ann:
        for config in (
            "executor: {type: dask, config: {address: 'tcp://10.0.0.1:8786'}}",
            "executor: {type: argo, config: {image: x}}",
        ):
            refused = ann.post("/runs", json={"pipeline": good_pipeline(), "config": config})
            assert refused.status_code == 422 and "lets users choose the executor(s) local" in refused.text


def test_creating_a_user_before_the_first_start_creates_the_schema(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'fresh.db'}"
    created = run_cli("server", "users", "create", "ann", "--db", db, cwd=tmp_path)
    assert created.returncode == 0 and "created user ann" in created.stdout, created.stderr
    token = run_cli("server", "tokens", "create", "ann", "--db", db, cwd=tmp_path)
    assert token.returncode == 0 and token.stdout.strip().startswith("cvt_")


def _workers_of(db: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"worker" in argv and db.encode() in argv:
                found.add(int(entry.name))
    return found


def test_a_dead_worker_is_replaced_and_sigterm_stops_them_all(tmp_path: Path) -> None:
    import os
    import signal
    import time

    import httpx

    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=2).start()
    try:
        health = httpx.get(server.endpoint + "/api/v1/health").json()
        assert health["workers"] == 2
        before = _workers_of(server.db)
        assert len(before) == 2
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.time() + 45  # a bound for a failure, not a speed: a loaded CI machine is slow
        while time.time() < deadline and (
            len(_workers_of(server.db)) != 2 or victim in _workers_of(server.db)
        ):
            time.sleep(0.2)
        after = _workers_of(server.db)
        assert len(after) == 2 and victim not in after
        deadline = time.time() + 45  # the supervisor says what it has on its next beat
        while time.time() < deadline and httpx.get(server.endpoint + "/api/v1/health").json()["workers"] != 2:
            time.sleep(0.2)
        assert httpx.get(server.endpoint + "/api/v1/health").json()["workers"] == 2
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGTERM)  # the server process alone, not its group
        server.proc.wait(timeout=45)
        deadline = time.time() + 45
        while time.time() < deadline and _workers_of(server.db):
            time.sleep(0.2)
        assert not _workers_of(server.db)
    finally:
        server.stop()


def test_finished_runs_work_directories_are_swept_after_retention(tmp_path: Path) -> None:
    import os
    import time

    from conveyor.server import queue
    from conveyor.server.auth import create_user
    from conveyor.server.db import engine_for, migrate
    from conveyor.server.worker import sweep

    db = f"sqlite:///{tmp_path / 's.db'}"
    migrate(db)
    engine = engine_for(db)
    user = create_user(engine, "ann", False)
    done = queue.submit(engine, user.id, "p", good_pipeline(), "", {}, None, "done-run")
    waiting = queue.submit(engine, user.id, "p", good_pipeline(), "", {}, None, "waiting-run")
    claimed = queue.claim(engine, "w", 30)
    assert claimed is not None and claimed["id"] == done
    queue.finish(engine, done, "w", "succeeded")
    root = tmp_path / "work"
    for run_id in (done, waiting):
        (root / run_id).mkdir(parents=True)
        old = time.time() - 7200
        os.utime(root / run_id, (old, old))
    assert sweep(engine, root, retention=3600) == [done]  # the queued one is kept
    assert not (root / done).exists() and (root / waiting).exists()


MALFORMED = [
    "dag: !!python/object/apply:os.system ['id']\n",
    "a: !custom 1\n",
    "[" * 3000 + "]" * 3000,
    "a: &a [*a, *a]\nb: &b [*a, *a]\nc: &c [*b, *b]\nd: &d [*c, *c]\ne: &e [*d, *d]\nf: [*e, *e, *e]\n",
    "\x00\x01\x02 not yaml",
    "dag: {start_at: 2024-01-31, steps: {2024-01-31: {type: stub, next: success}}}\n",
    "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success, next: fail}\n",
    "? [a, b]\n: c\n",
    "dag: 1e999999\n",
    "- just\n- a list\n",
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_yaml_bodies_are_located_422s(tmp_path: Path, text: str) -> None:
    from fastapi.testclient import TestClient

    from conveyor.server.api import create_app
    from conveyor.server.auth import create_token, create_user
    from conveyor.server.db import engine_for, migrate

    url = f"sqlite:///{tmp_path / 'server.db'}"
    migrate(url)
    create_user(engine_for(url), "ann")
    token = create_token(engine_for(url), "ann")[1]
    client = TestClient(create_app(url), headers={"Authorization": f"Bearer {token}"})
    for body in ({"pipeline": text}, {"pipeline": good_pipeline(), "config": text}):
        answer = client.post("/api/v1/runs", json=body)
        assert answer.status_code in (201, 422), (body, answer.status_code, answer.text)
        assert "error" in answer.json() or answer.status_code == 201


def test_killing_the_server_outright_takes_its_workers_with_it(tmp_path: Path) -> None:
    import os
    import signal
    import time

    server = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=2).start()
    try:
        workers = _workers_of(server.db)
        assert len(workers) == 2
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)
        deadline = time.time() + 15
        while time.time() < deadline and _workers_of(server.db):
            time.sleep(0.2)
        assert not _workers_of(server.db)  # a restart will not double them
    finally:
        server.stop()


def _sleepers(seconds: str) -> set[int]:
    """Host pids of `sleep SECONDS` processes (a sandboxed step sees other pids)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", seconds.encode()]:
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


def test_cancel_stops_a_step_that_started_its_own_session(server: Server, tmp_path: Path) -> None:
    import os
    import signal
    import time

    marker = tmp_path / "started"
    pipeline = (
        "dag:\n  start_at: spawn\n  steps:\n    spawn:\n      command_type: shell\n"
        f"      command: 'setsid sleep 304 & touch {marker}; sleep 300'\n      next: success\n"
    )
    with server.client("ann") as ann:
        run_id = ann.post("/runs", json={"pipeline": pipeline}).json()["id"]
        deadline = time.time() + 30
        while not (marker.exists() and _sleepers("304")) and time.time() < deadline:
            time.sleep(0.1)
        started = _sleepers("304")
        assert started
        ann.post(f"/runs/{run_id}/cancel")
        wait_for(ann, run_id, ("cancelled",), timeout=30)
    deadline = time.time() + 15
    while time.time() < deadline and started & _sleepers("304"):
        time.sleep(0.1)
    left = started & _sleepers("304")
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left


def test_a_nul_byte_in_a_steps_output_is_kept(server: Server) -> None:
    """PostgreSQL's text holds no NUL: the log keeps it escaped, and the run succeeds."""
    pipeline = "dag:\n  start_at: a\n  steps:\n    a: {command_type: shell, command: \"printf 'left\\\\0right'\", next: success}\n"
    with server.client("ann") as ann:
        run_id = ann.post("/runs", json={"pipeline": pipeline}).json()["id"]
        assert wait_for(ann, run_id, ("succeeded", "failed"))["status"] == "succeeded"
        logs = ann.get(f"/runs/{run_id}/logs").text
    assert "left" in logs and "right" in logs


def test_masking_url_passwords_is_linear_in_a_long_line() -> None:
    # A log line of 60,000 letters took seconds to mask (each letter a new start for the
    # scheme), and the API held its lock meanwhile: a run could stall the server with its log.
    import time

    from conveyor.server.redact import MASK

    line = "x" * 2_000_000 + " postgresql://me:hunter2@db/x " + "y://" * 100_000
    started = time.process_time()
    masked = without_credentials(line)
    took = time.process_time() - started
    assert f"postgresql://me:{MASK}@db/x" in masked and "hunter2" not in masked
    assert took < 5, took  # quadratic: hours for this line

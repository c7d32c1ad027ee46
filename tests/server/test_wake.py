"""An idle worker wakes when a run is queued: it does not wait for its next poll."""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import insert, select

from conveyor.server.db import engine_for, runs, users
from support.server import wait_for
from support.services import Server

QUICK = "dag:\n  start_at: a\n  steps:\n    a: {command: 'true', command_type: shell, next: success}\n"


def _queue_silently(url: str, run_id: str) -> None:
    """A queued run inserted behind the API's back: no wake-up is sent for it."""
    engine = engine_for(url)
    with engine.begin() as conn:
        ann = conn.execute(select(users.c.id).where(users.c.name == "ann")).scalar_one()
        conn.execute(
            insert(runs).values(
                id=run_id,
                user_id=ann,
                pipeline_name="silent",
                pipeline=QUICK,
                config="",
                parameters="{}",
                status="queued",
                created_at=time.time(),
                claims=0,
                cancel_requested=False,
            )
        )
    engine.dispose()


def test_a_worker_polling_every_30_s_starts_a_submitted_run_at_once(db_url: str, tmp_path: Path) -> None:
    server = Server(db_url, tmp_path, workers=1)
    server.env["CONVEYOR_WORKER_POLL_SECONDS"] = "30"
    server.start()
    try:
        with server.client("ann") as ann:
            # A first run: once it has ended, the worker has looked for the next and waits.
            first = ann.post("/runs", json={"pipeline": QUICK}).json()["id"]
            assert wait_for(ann, first, ("succeeded",), timeout=120)["status"] == "succeeded"
            time.sleep(1.0)
            # Queued with no wake-up, a run waits for the poll: the worker really polls slowly.
            _queue_silently(server.db, "silent-run")
            time.sleep(2.0)
            assert ann.get("/runs/silent-run").json()["status"] == "queued"
            # A submission wakes it: the oldest queued run (the silent one) is claimed at once.
            submitted = time.time()
            woken = ann.post("/runs", json={"pipeline": QUICK}).json()["id"]
            silent = wait_for(ann, "silent-run", ("succeeded", "failed"), timeout=60)
            assert silent["started_at"] - submitted < 1.0, silent
            after = wait_for(ann, woken, ("succeeded",), timeout=60)
            assert after["started_at"] - silent["ended_at"] < 1.0, after
    finally:
        server.stop()


def test_a_worker_listens_again_after_its_postgres_connection_is_lost(postgres_url: str) -> None:
    # A terminated backend (a restarted database) left the worker polling for good.
    import psycopg

    from conveyor.server.wake import CHANNEL, Waiter

    waiter = Waiter(postgres_url, poll=0.2)
    waiter.RELISTEN = 0.0
    dsn = postgres_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as admin:
        pid = waiter._listener.info.backend_pid
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(10):  # the loss is seen, the connection dropped, and listened again
            waiter.wait()
            if waiter._listener is not None and waiter._listener.info.backend_pid != pid:
                break
        assert waiter._listener is not None and waiter._listener.info.backend_pid != pid
        admin.execute(f"NOTIFY {CHANNEL}")
        assert waiter.wait() is True
    waiter.close()

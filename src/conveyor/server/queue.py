"""The run queue, in the database.

Workers claim the oldest queued run, or a running run whose lease has expired (its worker
died), with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that concurrent workers never take
the same row; on SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (one writer
at a time), which gives the same guarantee. A worker renews its lease while it runs.
Queuing a run wakes an idle worker (``server.wake``): it need not wait for its next poll.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from sqlalchemy import ColumnElement, RowMapping, and_, bindparam, func, insert, literal, or_, select, update

from conveyor.runlog.records import FINISHED, Status
from conveyor.server import wake
from conveyor.server.db import run_tags, runs, users

FINAL = tuple(str(s) for s in FINISHED)
#: What a submission writes of a run's row (the rest starts empty).
QUEUED_COLUMNS = (
    "id", "user_id", "pipeline_name", "pipeline_file", "rerun_of", "pipeline", "config", "parameters", "code",
    "status", "created_at", "claims", "cancel_requested",
)  # fmt: skip
PUBLIC = [
    runs.c.id,
    runs.c.pipeline_name,
    runs.c.pipeline_file,
    runs.c.rerun_of,
    runs.c.status,
    runs.c.created_at,
    runs.c.started_at,
    runs.c.ended_at,
    runs.c.worker,
    runs.c.claims,
    runs.c.error,
    runs.c.cancel_requested,
    users.c.name.label("user"),
]


class RunRow(TypedDict):
    """A run as listings show it: the ``PUBLIC`` columns, with its user's name."""

    id: str
    pipeline_name: str
    pipeline_file: str | None
    rerun_of: str | None
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    worker: str | None
    claims: int
    error: str | None
    cancel_requested: bool
    user: str
    #: The tags it was submitted with (a re-run keeps its run's), in the order given.
    tags: list[str]


class QueuedRun(RunRow):
    """One run as :func:`get` reads it: a listing's row with its owner's id and its
    parameters (the JSON text they were submitted as)."""

    user_id: int
    parameters: str


class Job(TypedDict):
    """A claimed run, the whole row a worker needs to run it (pipeline and config as the
    API stored them, parameters as JSON text, the code tarball if one came with it)."""

    id: str
    user_id: int
    pipeline_name: str
    pipeline_file: str | None
    pipeline: str
    config: str
    parameters: str
    code: bytes | None
    status: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    worker: str | None
    lease_until: float | None
    claims: int
    cancel_requested: bool
    error: str | None


def _run_row(row: RowMapping) -> RunRow:
    """A ``PUBLIC`` row, typed (the database's columns hold exactly these types)."""
    return RunRow(
        id=row["id"],
        pipeline_name=row["pipeline_name"],
        pipeline_file=row["pipeline_file"],
        rerun_of=row["rerun_of"],
        status=row["status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        worker=row["worker"],
        claims=row["claims"],
        error=row["error"],
        cancel_requested=row["cancel_requested"],
        user=row["user"],
        tags=[],
    )


def _tagged(conn: Any, rows: list[RunRow]) -> list[RunRow]:
    """``rows`` with their tags, read in one query (a page of a listing, or one run)."""
    if rows:
        found: dict[str, list[str]] = {}
        query = select(run_tags.c.run_id, run_tags.c.tag).where(
            run_tags.c.run_id.in_([r["id"] for r in rows])
        )
        for run_id, tag in conn.execute(query.order_by(run_tags.c.run_id, run_tags.c.tag)):
            found.setdefault(run_id, []).append(tag)
        for row in rows:
            row["tags"] = found.get(row["id"], [])
    return rows


def _job(row: RowMapping) -> Job:
    """A whole ``runs`` row, typed."""
    return Job(
        id=row["id"],
        user_id=row["user_id"],
        pipeline_name=row["pipeline_name"],
        pipeline_file=row["pipeline_file"],
        pipeline=row["pipeline"],
        config=row["config"],
        parameters=row["parameters"],
        code=row["code"],
        status=row["status"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        worker=row["worker"],
        lease_until=row["lease_until"],
        claims=row["claims"],
        cancel_requested=row["cancel_requested"],
        error=row["error"],
    )


def new_id() -> str:
    """A fresh run id for a submission that named none."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:10]


#: A run's insert and its tags', built once with bound parameters: building a statement's
#: values for each submission cost more than executing it.
_INSERT_RUN = insert(runs).values({c.name: bindparam(c.name) for c in runs.c if c.name in QUEUED_COLUMNS})
_INSERT_TAGS = insert(run_tags)
#: On PostgreSQL: the insert and the workers' wake-up in one statement.
_PG_QUEUE = select(func.pg_notify(wake.CHANNEL, "")).select_from(
    _INSERT_RUN.returning(runs.c.id).cte("queued")
)


def _insert(engine: Any, values: dict[str, object], tags: list[str]) -> None:
    """Write a new run's row and tags, and wake a listening worker once they are committed.

    On PostgreSQL it is one statement, committed on its own (no BEGIN and COMMIT round
    trips): the ``NOTIFY`` is delivered when, and only if, the insert commits, and the commit
    is synchronous (the server's connections keep PostgreSQL's default), so the run is
    durable when this returns. Tags are a second insert in the same statement."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            conn.execute(_INSERT_RUN, values)
            if tags:
                conn.execute(_INSERT_TAGS, [{"run_id": values["id"], "tag": t} for t in tags])
        wake.signal_local(engine)
        return
    statement: Any = _PG_QUEUE
    if tags:
        tagged = _INSERT_TAGS.values([{"run_id": values["id"], "tag": t} for t in tags])
        run = _INSERT_RUN.returning(runs.c.id).cte("queued")
        both = run.join(tagged.returning(run_tags.c.run_id).cte("tagged"), literal(True))
        statement = select(func.pg_notify(wake.CHANNEL, "")).select_from(both).limit(1)
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(statement, values)


def _new_row(
    run_id: str | None,
    user_id: int,
    name: str,
    pipeline: str,
    config: str,
    parameters: Mapping[str, object],
    code: bytes | None,
    file: str | None,
    rerun_of: str | None,
) -> dict[str, object]:
    """The columns a submission writes (:data:`QUEUED_COLUMNS`)."""
    return {
        "id": run_id or new_id(),
        "user_id": user_id,
        "pipeline_name": name,
        "pipeline_file": file,
        "rerun_of": rerun_of,
        "pipeline": pipeline,
        "config": config,
        "parameters": json.dumps(parameters),
        "code": code,
        "status": str(Status.QUEUED),
        "created_at": time.time(),
        "claims": 0,
        "cancel_requested": False,
    }


def submit(
    engine: Any,
    user_id: int,
    name: str,
    pipeline: str,
    config: str,
    parameters: Mapping[str, object],
    code: bytes | None,
    run_id: str | None = None,
    file: str | None = None,
    rerun_of: str | None = None,
    tags: Sequence[str] = (),
) -> str:
    """Queue a run; its id must be new. ``file`` is the name of the file the pipeline was
    submitted from, as the user gave it (None when it came from a pipe or the API);
    ``rerun_of`` the run it re-runs with edited parameters, if it does; ``tags`` (checked
    by the API's schema) are kept with it, each once. An idle worker is woken once it is
    committed (:mod:`conveyor.server.wake`)."""
    values = _new_row(run_id, user_id, name, pipeline, config, parameters, code, file, rerun_of)
    _insert(engine, values, list(dict.fromkeys(tags)))
    return str(values["id"])


def enqueue(
    engine: Any,
    user_id: int,
    user: str,
    name: str,
    pipeline: str,
    config: str,
    parameters: Mapping[str, object],
    code: bytes | None,
    run_id: str | None = None,
    file: str | None = None,
    tags: Sequence[str] = (),
) -> QueuedRun:
    """Queue a run as :func:`submit` does, for user ``user_id`` named ``user``, and return
    its row as :func:`get` reads it once committed, without reading it back (the API
    answers a submission with it: a second query cost as much as the insert)."""
    values = _new_row(run_id, user_id, name, pipeline, config, parameters, code, file, None)
    unique = list(dict.fromkeys(tags))
    _insert(engine, values, unique)
    return QueuedRun(
        id=str(values["id"]),
        pipeline_name=name,
        pipeline_file=file,
        rerun_of=None,
        status=str(Status.QUEUED),
        created_at=float(values["created_at"]),  # type: ignore[arg-type]
        started_at=None,
        ended_at=None,
        worker=None,
        claims=0,
        error=None,
        cancel_requested=False,
        user=user,
        tags=sorted(unique),  # the order get() reads them in
        user_id=user_id,
        parameters=str(values["parameters"]),
    )


def tags_of(engine: Any, run_id: str) -> list[str]:
    """The tags of run ``run_id`` (a re-run copies them)."""
    with engine.connect() as conn:
        query = select(run_tags.c.tag).where(run_tags.c.run_id == run_id).order_by(run_tags.c.tag)
        return [str(t) for (t,) in conn.execute(query)]


def all_tags(engine: Any, user_id: int | None) -> list[str]:
    """Every tag on the runs ``user_id`` owns (on all runs for None): the listing's choices."""
    query = select(run_tags.c.tag).distinct()
    if user_id is not None:
        query = query.join(runs, runs.c.id == run_tags.c.run_id).where(runs.c.user_id == user_id)
    with engine.connect() as conn:
        return sorted(str(t) for (t,) in conn.execute(query))


def claim(engine: Any, worker: str, lease: float) -> Job | None:
    """Take the next run for ``worker``; None if there is none."""
    now = time.time()
    claimable = or_(
        runs.c.status == Status.QUEUED, and_(runs.c.status == Status.RUNNING, runs.c.lease_until < now)
    )
    with engine.begin() as conn:
        query = select(runs.c.id).where(claimable).order_by(runs.c.created_at).limit(1)
        if engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        claimed = conn.execute(
            update(runs)
            .where(runs.c.id == row[0], claimable)
            .values(
                status=Status.RUNNING,
                worker=worker,
                lease_until=now + lease,
                claims=runs.c.claims + 1,
                started_at=func.coalesce(runs.c.started_at, now),
            )
        )
        if claimed.rowcount != 1:
            return None
        full = conn.execute(select(runs).where(runs.c.id == row[0])).mappings().first()
    return _job(full) if full else None


def heartbeat(engine: Any, run_id: str, worker: str, lease: float) -> bool:
    """Renew the lease; True if cancel was requested. A lost lease also stops the worker."""
    with engine.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.worker == worker, runs.c.status == Status.RUNNING)
            .values(lease_until=time.time() + lease)
        )
        row = conn.execute(select(runs.c.cancel_requested).where(runs.c.id == run_id)).first()
    return result.rowcount != 1 or bool(row and row[0])


def finish(engine: Any, run_id: str, worker: str, status: str, error: str | None = None) -> bool:
    """Record how a claimed run ended, if this worker still holds it."""
    with engine.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.worker == worker, runs.c.status == Status.RUNNING)
            .values(status=status, ended_at=time.time(), lease_until=None, error=error)
        )
    return bool(result.rowcount == 1)


def request_cancel(engine: Any, run_id: str) -> str:
    """Cancel a queued run at once; ask a running one's worker to stop it. The new status."""
    with engine.begin() as conn:
        row = conn.execute(select(runs.c.status).where(runs.c.id == run_id)).first()
        if row is None or row[0] in FINAL:
            return str(row[0]) if row else "unknown"
        if row[0] == Status.QUEUED:
            conn.execute(
                update(runs).where(runs.c.id == run_id).values(status=Status.CANCELLED, ended_at=time.time())
            )
            return Status.CANCELLED
        conn.execute(update(runs).where(runs.c.id == run_id).values(cancel_requested=True))
        return "cancelling"


def requeue(engine: Any, run_id: str) -> bool:
    """Put a failed or cancelled run back in the queue; it resumes from its run log."""
    with engine.begin() as conn:
        result = conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_((Status.FAILED, Status.CANCELLED)))
            .values(status=Status.QUEUED, ended_at=None, error=None, cancel_requested=False, worker=None)
        )
        if result.rowcount == 1:
            wake.notify_in(conn)
    if result.rowcount == 1:
        wake.signal_local(engine)
    return bool(result.rowcount == 1)


#: One run and its tags by id, built once (status polling runs them on every request).
_ONE = (
    select(*PUBLIC, runs.c.user_id, runs.c.parameters)
    .join(users, users.c.id == runs.c.user_id)
    .where(runs.c.id == bindparam("run_id"))
)
_ONES_TAGS = select(run_tags.c.tag).where(run_tags.c.run_id == bindparam("run_id")).order_by(run_tags.c.tag)


def get(engine: Any, run_id: str) -> QueuedRun | None:
    """One run as the queue knows it, or None."""
    with engine.connect() as conn:
        row = conn.execute(_ONE, {"run_id": run_id}).mappings().first()
        if row is None:
            return None
        found = _run_row(row)
        found["tags"] = [str(t) for (t,) in conn.execute(_ONES_TAGS, {"run_id": run_id})]
    return QueuedRun(**found, user_id=row["user_id"], parameters=row["parameters"])


def listing(
    engine: Any,
    user_id: int | None,
    status: str | None,
    user: str | None,
    pipeline: str | None,
    limit: int,
    offset: int,
    id_contains: str | None = None,
    since: float | None = None,
    until: float | None = None,
    tag: str | None = None,
) -> tuple[list[RunRow], int]:
    """A page of runs, filtered; with the total count. ``since`` and ``until`` bound when
    a run started (when it was queued, for one not started yet: what the listings show);
    ``tag``, a tag the run carries."""
    conditions: list[ColumnElement[bool]] = []
    if tag:
        conditions.append(runs.c.id.in_(select(run_tags.c.run_id).where(run_tags.c.tag == tag)))
    started = func.coalesce(runs.c.started_at, runs.c.created_at)
    if since is not None:
        conditions.append(started >= since)
    if until is not None:
        conditions.append(started < until)
    if id_contains:
        conditions.append(runs.c.id.contains(id_contains, autoescape=True))
    if user_id is not None:
        conditions.append(runs.c.user_id == user_id)
    if status:
        conditions.append(runs.c.status == status)
    if user:
        conditions.append(users.c.name == user)
    if pipeline:
        conditions.append(runs.c.pipeline_name == pipeline)
    base = select(*PUBLIC).join(users, users.c.id == runs.c.user_id).where(*conditions)
    with engine.connect() as conn:
        rows = (
            conn.execute(base.order_by(runs.c.created_at.desc()).limit(limit).offset(offset)).mappings().all()
        )
        total = conn.execute(
            select(func.count())
            .select_from(runs.join(users, users.c.id == runs.c.user_id))
            .where(*conditions)
        ).scalar_one()
        page = _tagged(conn, [_run_row(r) for r in rows])
    return page, int(total)

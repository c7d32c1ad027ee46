"""Worker processes: claim a run, execute it in a child process, heartbeat, record the end.

A run executes as ``conveyor execute`` (or ``conveyor retry`` when its run log shows an
earlier, interrupted attempt: a reclaimed run resumes, it does not start over) in a work
directory of its own, with the run log in the server's database. The child dies with its
worker (PR_SET_PDEATHSIG), so a killed worker leaves no orphan finishing the run behind the
back of the worker that reclaims it.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.records import Status
from conveyor.runlog.sql import SQLRunLogStore
from conveyor.server import queue
from conveyor.server.db import engine_for
from conveyor.server.limits import Limits, unpack

LEASE = float(os.environ.get("CONVEYOR_LEASE_SECONDS", "15"))


def _die_with_parent() -> None:
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


def private_dir(root: Path, run_id: str) -> Path:
    """Where a run's config (it names the server's database) is kept, out of its steps' sight."""
    return root / ".private" / run_id


def prepare(job: dict[str, Any], url: str, root: Path) -> Path:
    """The run's work directory (pipeline, parameters, code) and, apart from it, its config
    (run log -> the server's database; in a sandbox, steps in processes of their own)."""
    work = root / job["id"]
    work.mkdir(parents=True, exist_ok=True)
    (work / "pipeline.yaml").write_text(job["pipeline"])
    config = yaml.safe_load(job["config"] or "") or {}
    if _executor(job) != "argo":
        # Argo pods cannot reach the server's database: they keep the config's store.
        config["run_log_store"] = {"type": "sql", "config": {"url": url}}
    if _executor(job) == "dask" and os.environ.get("CONVEYOR_SERVER_DASK_ADDRESS"):
        section = config.get("executor") or config.get("pipeline-executor") or {}
        section.setdefault("config", {})["address"] = os.environ["CONVEYOR_SERVER_DASK_ADDRESS"]
    if sandbox_mode() == "bwrap" and _executor(job) == "local":
        section = config.setdefault("executor", {"type": "local"})
        section.setdefault("config", {})["isolation"] = "process"  # no user code in the engine
    private = private_dir(root, job["id"])
    private.mkdir(parents=True, exist_ok=True, mode=0o700)
    (private / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (work / "params.yaml").write_text(yaml.safe_dump(json.loads(job["parameters"] or "{}")))
    if job.get("code"):
        unpack(job["code"], work / "code", Limits.from_env())
    return work


def _executor(job: dict[str, Any]) -> str:
    config = yaml.safe_load(job["config"] or "") or {}
    section = config.get("executor") or config.get("pipeline-executor") or {}
    return str(section.get("type", "local"))


def command(job: dict[str, Any], store: SQLRunLogStore, root: Path) -> list[str] | None:
    """execute for a new run, retry for one with a run log; None if it already succeeded.
    An Argo run is submitted to the Argo Server and followed (a reclaimed one is followed)."""
    base = [sys.executable, "-m", "conveyor.cli"]
    config = str(private_dir(root, job["id"]) / "config.yaml")
    files = ["-f", "pipeline.yaml", "-c", config]
    if _executor(job) == "argo":
        return [*base, "submit", "--to", "argo", *files, "-p", "params.yaml", "--run-id", job["id"], "--wait"]
    try:
        status = store.load(job["id"]).status
    except RunNotFoundError:
        return [*base, "execute", "-q", *files, "-p", "params.yaml", "--run-id", job["id"]]
    if status is Status.SUCCEEDED:
        return None
    return [*base, "retry", job["id"], "-q", "-c", config, "-f", "pipeline.yaml"]


def execute(engine: Any, url: str, job: dict[str, Any], worker: str, root: Path, lease: float) -> str:
    """Run one claimed run in a child process, renewing the lease; cancel kills it."""
    store = SQLRunLogStore(url, create=False)
    try:
        work = prepare(job, url, root)
        argv = command(job, store, root)
        if argv is not None and "retry" in argv:
            _await_lease(store, engine, job["id"], worker, lease)
        if argv is None:
            queue.finish(engine, job["id"], worker, Status.SUCCEEDED)
            return Status.SUCCEEDED
        env = run_environment(work, root, url, _executor(job))
        with open(work / "output.log", "ab") as out:
            proc = subprocess.Popen(
                argv,
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            while True:
                try:
                    code = proc.wait(timeout=lease / 3)
                    break
                except subprocess.TimeoutExpired:
                    if queue.heartbeat(engine, job["id"], worker, lease):
                        os.killpg(proc.pid, signal.SIGKILL)
                        proc.wait()
                        if _executor(job) == "argo":
                            stop = [
                                sys.executable,
                                "-m",
                                "conveyor.cli",
                                "runs",
                                "stop",
                                job["id"],
                                "-c",
                                str(private_dir(root, job["id"]) / "config.yaml"),
                            ]
                            subprocess.run(stop, cwd=work, env=env, capture_output=True, timeout=60)
                        else:
                            _mark_cancelled(store, job["id"])
                        queue.finish(engine, job["id"], worker, Status.CANCELLED, "cancelled by request")
                        return Status.CANCELLED
        tail = (work / "output.log").read_text(errors="replace")[-2000:]
        status = Status.SUCCEEDED if code == 0 else Status.FAILED
        queue.finish(engine, job["id"], worker, status, None if code == 0 else tail)
        return status
    finally:
        store.close()


#: Variables of the server's environment a run's engine and steps get (no credentials).
PASSED = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "CONVEYOR_LEASE_SECONDS")
#: What an Argo run's engine needs to submit and follow its workflow (its steps run in pods).
PASSED_TO_ARGO = ("ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE")


def sandbox_mode() -> str:
    """``bwrap`` (the default: steps sandboxed) or ``none`` (the operator's weaker choice)."""
    return os.environ.get("CONVEYOR_SERVER_SANDBOX", "bwrap")


def run_environment(work: Path, root: Path, url: str, executor: str = "local") -> dict[str, str]:
    """The environment of a run's engine, and so of its steps: no database URL or server
    secrets (the operator names any a run may have in ``CONVEYOR_SERVER_SECRETS``)."""
    allowed = [n.strip() for n in os.environ.get("CONVEYOR_SERVER_SECRETS", "").split(",") if n.strip()]
    if executor == "argo":
        allowed += PASSED_TO_ARGO
    env = {k: v for k, v in os.environ.items() if k in PASSED or k in allowed}
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(work / "code"), str(work)] if p)
    if sandbox_mode() == "bwrap":
        hidden = [str(root), *_server_places(url)]
        env.update(
            CONVEYOR_SANDBOX="bwrap",
            CONVEYOR_SANDBOX_WRITABLE=str(work),
            CONVEYOR_SANDBOX_HIDE=os.pathsep.join(hidden),
            CONVEYOR_SANDBOX_EXTRA=os.environ.get("CONVEYOR_SANDBOX_EXTRA", ""),
            CONVEYOR_SANDBOX_NETWORK=os.environ.get("CONVEYOR_SANDBOX_NETWORK", ""),
        )
    return env


def _server_places(url: str) -> list[str]:
    """The server's own files, hidden from steps: its SQLite database's directory, its state."""
    places = []
    if url.startswith("sqlite:///"):
        places.append(str(Path(url.removeprefix("sqlite:///")).parent))
    for name in ("CONVEYOR_SERVER_STATE",):
        if os.environ.get(name):
            places.append(os.environ[name])
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "conveyor"
    places.append(str(data))
    return places


def _await_lease(store: SQLRunLogStore, engine: Any, run_id: str, worker: str, lease: float) -> None:
    """A reclaimed run resumes once its run log lease has expired: the driver that held it
    (a dead worker's child) can then no longer write to it. The queue lease is renewed meanwhile."""
    while store.load(run_id).status is Status.RUNNING:
        queue.heartbeat(engine, run_id, worker, lease)
        time.sleep(min(1.0, lease / 3))


def _mark_cancelled(store: SQLRunLogStore, run_id: str) -> None:
    """The run's process is gone: its record, and every step or item it left running, end
    as cancelled."""
    from conveyor.runlog.endings import end_run

    try:
        log = store.load(run_id)
    except RunNotFoundError:
        return
    end_run(store, log, Status.CANCELLED, "cancelled by request")


def work_root() -> Path:
    """Where workers unpack runs' files."""
    base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "conveyor" / "work"
    return Path(os.environ.get("CONVEYOR_SERVER_WORKDIR") or base)


#: How long a finished run's work directory is kept (seconds); its logs live in the database.
RETENTION = float(os.environ.get("CONVEYOR_WORKDIR_RETENTION", str(24 * 3600)))


def sweep(engine: Any, root: Path, retention: float = RETENTION) -> list[str]:
    """Remove the work directories of runs that finished more than ``retention`` ago."""
    removed = []
    cutoff = time.time() - retention
    for entry in root.iterdir() if root.exists() else []:
        try:
            if not entry.is_dir() or entry.stat().st_mtime > cutoff:
                continue
        except OSError:
            continue
        run = queue.get(engine, entry.name)
        if run is None or run["status"] in queue.FINAL:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry.name)
    return removed


def loop(
    url: str, name: str | None = None, poll: float = 0.2, lease: float = LEASE, once: bool = False
) -> None:
    """A worker: claim a run, execute it, repeat; when idle, sweep old work directories."""
    engine = engine_for(url)
    worker = name or f"{socket.gethostname()}:{os.getpid()}"
    root = work_root()
    root.mkdir(parents=True, exist_ok=True)
    swept = 0.0
    while True:
        job = queue.claim(engine, worker, lease)
        if job is None:
            if once:
                return
            if time.time() - swept > 60:
                with contextlib.suppress(Exception):
                    sweep(engine, root)
                swept = time.time()
            time.sleep(poll)
            continue
        try:
            execute(engine, url, job, worker, root, lease)
        except Exception as exc:  # no run may stop a worker: this one fails, the next is claimed
            message = f"the run could not be prepared or run: {type(exc).__name__}: {exc}"[:2000]
            with contextlib.suppress(Exception):
                queue.finish(engine, job["id"], worker, Status.FAILED, message)

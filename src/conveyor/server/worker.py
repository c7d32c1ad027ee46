"""Worker processes: claim a run, execute it in its sandbox, heartbeat, record the end.

A run executes as ``conveyor execute`` (or ``conveyor retry`` when its run log shows an
earlier, interrupted attempt: a reclaimed run resumes, it does not start over) in a work
directory of its own, engine and steps together inside the sandbox (``server.sandbox``),
bounded by the operator's limits (``server.confine``). The worker is the trusted side: it
holds the database, and takes from the run only the JSON run log writes it relays
(``server.relay``). The run dies with its worker (PR_SET_PDEATHSIG), so a killed worker
leaves no orphan finishing the run behind the back of the worker that reclaims it.
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from conveyor.jsontypes import JSONObject
from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.codec import encode_run
from conveyor.runlog.endings import end_run
from conveyor.runlog.records import Status
from conveyor.runlog.relay import FDS_VARIABLE, SECRETS_VARIABLE
from conveyor.runlog.sql import SQLRunLogStore
from conveyor.server import policy, queue, sandbox, wake
from conveyor.server.confine import Confinement, RunLimits, disk_usage
from conveyor.server.db import engine_for
from conveyor.server.limits import Limits, check_pipeline, unpack
from conveyor.server.relay import Relay
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline_text
from conveyor.spec.models import walk_nodes

LEASE = float(os.environ.get("CONVEYOR_LEASE_SECONDS", "15"))


def _death_with_parent() -> Callable[[], None]:
    """What the run's first process does first between fork and exec: die with the worker
    (PR_SET_PDEATHSIG) and lead a session of its own. libc is loaded here, in the worker,
    not in the forked child, where loading it could hang on a lock another thread held."""
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except OSError:
        prctl = None

    def enter() -> None:
        if prctl is not None:
            prctl(1, signal.SIGKILL)
        os.setsid()

    return enter


def private_dir(root: Path, run_id: str) -> Path:
    """Where the worker keeps a run's own output (outside the run's reach: ``root`` is hidden)."""
    return root / ".private" / run_id


def _clear(path: Path) -> None:
    """Remove whatever a step of an earlier attempt left at ``path`` (a link is removed, never
    followed; a folder with everything in it)."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


def _write_new(folder: Path, name: str, data: str) -> None:
    """Write ``folder/name`` afresh, never through a link or into a directory a step made."""
    target = folder / name
    _clear(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(data)


def _fresh_dir(path: Path) -> None:
    """An empty folder at ``path``, whatever was there."""
    _clear(path)
    path.mkdir()


def _run_config(job: queue.Job) -> RunConfig:
    """The submitted config, as the API stored it: already in conveyor's own spelling, read
    as it is (no runnable translation, no variables: nothing from the worker's environment)."""
    return RunConfig.model_validate(yaml.safe_load(job["config"] or "") or {})


def prepare(job: queue.Job, root: Path, store: SQLRunLogStore) -> tuple[Path, JSONObject]:
    """The run's work directory (pipeline, parameters, code, config, its run log so far),
    written by the trusted side without following anything a step of an earlier attempt
    made there; and the config the run gets (the operator's locations, see ``policy``)."""
    limits = Limits.from_env()
    check_pipeline(job["pipeline"], limits)
    check_pipeline(job["config"] or "", limits, "the config")
    work = root / job["id"]
    work.mkdir(parents=True, exist_ok=True)
    given = "catalog" in (yaml.safe_load(job["config"] or "") or {})
    config = policy.run_config(
        _run_config(job), job["user_id"], SNAPSHOT, sandbox.mode() == "bwrap", given, bool(_declared(job))
    )
    if _executor(job) == "dask" and os.environ.get("CONVEYOR_SERVER_DASK_ADDRESS"):
        policy.options(config, "executor")["address"] = os.environ["CONVEYOR_SERVER_DASK_ADDRESS"]
    catalog = _file_catalog(config) if _executor(job) != "argo" else None
    if catalog is not None:
        catalog.mkdir(parents=True, exist_ok=True)
    _write_new(work, "pipeline.yaml", job["pipeline"])
    _write_new(work, CONFIG, yaml.safe_dump(config, sort_keys=False))
    _write_new(work, "params.yaml", yaml.safe_dump(json.loads(job["parameters"] or "{}")))
    _write_new(work, SNAPSHOT, _snapshot(store, job["id"]))
    private_dir(root, job["id"]).mkdir(parents=True, exist_ok=True, mode=0o700)
    if job["code"]:
        _fresh_dir(work / "code")
        unpack(job["code"], work / "code", limits)
    return work, config


def _file_catalog(config: JSONObject) -> Path | None:
    """The folder of a run's file catalog (the operator's, see ``policy``); None for another
    kind of catalog."""
    catalog = config["catalog"]
    if not isinstance(catalog, dict) or catalog.get("type") != "file":
        return None
    return Path(str(policy.options(config, "catalog")["location"]))


def _snapshot(store: SQLRunLogStore, run_id: str) -> str:
    """The run's log as the database holds it (JSON lines), for a resumed run's engine."""
    try:
        run = store.load_record(run_id)
    except RunNotFoundError:
        return ""
    lines, _ = store.read_event_lines(run_id)
    text = [encode_run(run)] + [line.decode() if isinstance(line, bytes) else line for line in lines]
    return "\n".join(text) + "\n"


def _executor(job: queue.Job) -> str:
    config = yaml.safe_load(job["config"] or "") or {}
    section = config.get("executor") or config.get("pipeline-executor") or {}
    return str(section.get("type", "local"))


def _pooled(job: queue.Job) -> bool:
    """Whether the run's steps run in a pool of processes (``policy.run_config``): then its
    engine is started by ``conveyor.step.zygote``, which forks them (no interpreter start
    and imports per pool process). It is forked before the run has read anything, and a run
    whose steps declare secrets (the engine holds them) has a process per step instead."""
    if sandbox.mode() != "bwrap" or _executor(job) != "local" or _declared(job):
        return False
    config = yaml.safe_load(job["config"] or "") or {}
    section = config.get("executor") or config.get("pipeline-executor") or {}
    options = section.get("config") if isinstance(section, dict) else None
    return not (isinstance(options, dict) and options.get("isolation") == "process")


def command(job: queue.Job, store: SQLRunLogStore) -> list[str] | None:
    """execute for a new run, retry for one with a run log; None if it already succeeded.
    An Argo run is submitted to the Argo Server and followed (a reclaimed one is followed)."""
    base = [sys.executable, "-m", "conveyor.cli"]
    if _pooled(job):  # the engine started by the fork server its pool's processes come from
        base[2:2] = ["conveyor.step.zygote"]
    files = ["-f", "pipeline.yaml", "-c", CONFIG]
    if _executor(job) == "argo":
        return [*base, "submit", "--to", "argo", *files, "-p", "params.yaml", "--run-id", job["id"], "--wait"]
    try:
        status = store.load(job["id"]).status
    except RunNotFoundError:
        return [*base, "execute", "-q", *files, "-p", "params.yaml", "--run-id", job["id"]]
    if status is Status.SUCCEEDED:
        return None
    return [*base, "retry", job["id"], "-q", "-c", CONFIG, "-f", "pipeline.yaml"]


def execute(engine: Any, url: str, job: queue.Job, worker: str, root: Path, lease: float) -> str:
    """Run one claimed run in its sandbox, serving its run log writes, renewing the lease;
    cancel, a broken rule or a limit stops it."""
    store = SQLRunLogStore(url, create=False)
    try:
        argv = command(job, store)
        if argv is None:
            queue.finish(engine, job["id"], worker, Status.SUCCEEDED)
            return Status.SUCCEEDED
        if "retry" in argv:
            _await_lease(store, engine, job["id"], worker, lease)
        work, config = prepare(job, root, store)
        return Drive(engine, store, job, worker, work, private_dir(root, job["id"]), lease).run(
            argv, config, _hidden(root, url)
        )
    finally:
        store.close()


class Drive:
    """One run's sandboxed process and the trusted loop around it."""

    def __init__(
        self,
        engine: Any,
        store: SQLRunLogStore,
        job: queue.Job,
        worker: str,
        work: Path,
        private: Path,
        lease: float,
    ) -> None:
        self.engine, self.store, self.job, self.worker = engine, store, job, worker
        self.work, self.private, self.lease = work, private, lease
        self.limits = RunLimits()
        self.argo = _executor(job) == "argo"

    def _box(self, hidden: list[str], config: JSONObject) -> sandbox.Sandbox:
        writable = []
        catalog = None if self.argo else _file_catalog(config)
        if catalog is not None:
            writable.append(catalog)
        network = self.argo or _executor(self.job) == "dask"
        network = network or os.environ.get("CONVEYOR_SANDBOX_NETWORK") == "1"
        box = sandbox.Sandbox(self.work, writable, hidden, network)
        box.prepare()
        return box

    def run(self, argv: list[str], config: JSONObject, hidden: list[str]) -> str:
        """Start the run, serve it to its end; its final status."""
        box = self._box(hidden, config)
        confined = Confinement(self.job["id"], self.limits)
        requests_r, requests_w = os.pipe()
        answers_r, answers_w = os.pipe()
        env = run_environment(self.work, self.argo)
        env[FDS_VARIABLE] = f"{requests_w},{answers_r}"
        # The operator's secrets the pipeline declares reach the engine through a descriptor,
        # never its environment (the sandbox's first process would show them to every step).
        given = {n: os.environ[n] for n in _secret_names() if n in os.environ and n in _declared(self.job)}
        secrets_fd = _secrets_file(self.private, given)
        env[SECRETS_VARIABLE] = str(secrets_fd)
        wrapped = box.argv(argv) if sandbox.mode() == "bwrap" else argv
        enter, orphan = confined.preexec(), _death_with_parent()

        def start() -> None:
            orphan()
            enter()

        out = open(self.private / "output.log", "a+b")  # noqa: SIM115 - closed below
        try:
            proc = subprocess.Popen(
                wrapped,
                cwd=self.work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                pass_fds=(requests_w, answers_r, secrets_fd),
                preexec_fn=start,
            )
            for fd in (requests_w, answers_r, secrets_fd):
                os.close(fd)
            secrets = list(given.values())
            shown = {k: v for k, v in config.items() if k != "run_log_store"}
            name, file = self.job.get("pipeline_name"), self.job.get("pipeline_file")
            relay = Relay(
                self.store,
                self.job["id"],
                lambda: proc.pid,
                secrets,
                shown,
                pipeline_name=name,
                pipeline_file=file,
            )
            served = relay.serve_in_thread(os.fdopen(requests_r, "rb"), os.fdopen(answers_w, "wb"))
            ending = self._watch(proc, relay, box)
            served.join(timeout=10)
            return self._finish(proc, relay, confined, ending, out, box)
        finally:
            out.close()
            confined.remove()

    def _watch(self, proc: subprocess.Popen[bytes], relay: Relay, box: sandbox.Sandbox) -> str | None:
        """Wait for the run, renewing the lease; why it was stopped (None: it ended itself)."""
        started, measured, renewed = time.time(), 0.0, time.time()
        while True:
            try:
                proc.wait(timeout=min(1.0, self.lease / 3))
                return None
            except subprocess.TimeoutExpired:
                pass
            reason = None
            beat = time.time() - renewed >= self.lease / 3
            if beat:
                renewed = time.time()
            if beat and queue.heartbeat(self.engine, self.job["id"], self.worker, self.lease):
                reason = "cancelled"
            elif relay.violation:
                reason = relay.violation
            elif self.limits.seconds and time.time() - started > self.limits.seconds:
                reason = f"the run took more than {self.limits.seconds:,} s (CONVEYOR_RUN_MAX_SECONDS)"
            elif self.limits.disk_mb and time.time() - measured > 2:
                measured = time.time()
                cap = self.limits.disk_mb << 20
                used = disk_usage(self.work, cap)
                if used > cap:
                    reason = (
                        f"the run's work directory grew past its limit of {self.limits.disk_mb:,} MiB "
                        "(CONVEYOR_RUN_MAX_DISK_MB)"
                    )
            if reason is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return reason

    def _finish(
        self,
        proc: subprocess.Popen[bytes],
        relay: Relay,
        confined: Confinement,
        ending: str | None,
        out: Any,
        box: sandbox.Sandbox,
    ) -> str:
        run_id = self.job["id"]
        if ending == "cancelled":
            if self.argo:
                stop = [sys.executable, "-m", "conveyor.cli", "runs", "stop", run_id, "-c", CONFIG]
                wrapped = box.argv(stop) if sandbox.mode() == "bwrap" else stop
                env = run_environment(self.work, self.argo)
                subprocess.run(wrapped, cwd=self.work, env=env, capture_output=True, timeout=60)
            else:
                _close_run(self.store, run_id, Status.CANCELLED, "cancelled by request")
            queue.finish(self.engine, run_id, self.worker, Status.CANCELLED, "cancelled by request")
            return Status.CANCELLED
        reasons = [r for r in [ending, relay.violation] if r] + confined.exceeded()
        if proc.returncode == 0 and not reasons and not self.argo and relay.recorded is not Status.SUCCEEDED:
            # Exit code 0 is the sandbox's word, which a step can forge: the run's own record decides.
            said = relay.recorded.value if relay.recorded is not None else "no record"
            reasons.append(f"the run's process ended (exit code 0) without recording its success ({said})")
        if proc.returncode == 0 and not reasons:
            queue.finish(self.engine, run_id, self.worker, Status.SUCCEEDED)
            return Status.SUCCEEDED
        out.seek(max(0, out.seek(0, os.SEEK_END) - 2000))
        tail = relay.mask(out.read().decode(errors="replace"))
        message = "; ".join(dict.fromkeys(reasons)) or tail
        if not self.job.get("code") and ("No module named" in tail or "cannot import" in tail):
            message += (
                "\nhint: the server runs only the code submitted with the run: "
                "conveyor submit ... --code DIR (the folder your pipeline's modules are in)"
            )
        if not self.argo:
            _close_run(self.store, run_id, Status.FAILED, message if reasons else None)
        queue.finish(self.engine, run_id, self.worker, Status.FAILED, message)
        return Status.FAILED


#: Variables of the server's environment a run's engine and steps get (no credentials).
PASSED = ("PATH", "LANG", "LC_ALL", "TZ", "CONVEYOR_LEASE_SECONDS")
#: What an Argo run's engine needs to submit and follow its workflow (its steps run in pods).
PASSED_TO_ARGO = ("ARGO_SERVER", "ARGO_TOKEN", "ARGO_NAMESPACE")
#: Where a run's config and its run log so far are written for its engine (work directory).
CONFIG = ".conveyor-config.yaml"
SNAPSHOT = ".conveyor-runlog.jsonl"


def sandbox_mode() -> str:
    """``bwrap`` (the default: runs sandboxed) or ``none`` (the operator's weaker choice)."""
    return sandbox.mode()


def _secret_names() -> list[str]:
    return [n.strip() for n in os.environ.get("CONVEYOR_SERVER_SECRETS", "").split(",") if n.strip()]


def _declared(job: queue.Job) -> set[str]:
    """The secrets the run's pipeline declares (its YAML read as data: nothing imported)."""
    try:
        loaded = load_pipeline_text(job["pipeline"], name="pipeline")
    except SpecError:
        return set()
    return {name for node in walk_nodes(loaded.pipeline.dag) for name in getattr(node, "secrets", [])}


def _secrets_file(private: Path, values: dict[str, str]) -> int:
    """An open descriptor of an unlinked file holding ``values`` as JSON, for the engine."""
    fd, path = tempfile.mkstemp(dir=private, prefix=".secrets-")
    os.unlink(path)
    os.write(fd, json.dumps(values).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def run_environment(work: Path, argo: bool = False) -> dict[str, str]:
    """The environment of a run's engine, and so of its steps: no database URL, no server
    secrets (those a run declares arrive by descriptor: ``SECRETS_VARIABLE``)."""
    allowed = list(PASSED_TO_ARGO) if argo else []
    env = {k: v for k, v in os.environ.items() if k in PASSED or k in allowed}
    # The conveyor this worker runs, after the run's code: the engine speaks the relay's
    # protocol of this very version (not another install the interpreter finds first).
    conveyor_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([str(work / "code"), str(work), conveyor_root])
    env["HOME"] = str(work / ".home")
    env["TMPDIR"] = str(work / ".tmp")
    return env


def _hidden(root: Path, url: str) -> list[str]:
    """The server's own places, hidden from runs: the work area (other runs), its data and
    state, the database's directory or socket directory."""
    places = [str(root), str(policy.data_dir()), *sandbox.database_places(url)]
    for name in ("CONVEYOR_SERVER_STATE",):
        if os.environ.get(name):
            places.append(os.environ[name])
    return places


def _await_lease(store: SQLRunLogStore, engine: Any, run_id: str, worker: str, lease: float) -> None:
    """A reclaimed run resumes once its run log lease has expired: the driver that held it
    (a dead worker's child) can then no longer write to it. The queue lease is renewed meanwhile."""
    while store.load(run_id).status is Status.RUNNING:
        queue.heartbeat(engine, run_id, worker, lease)
        time.sleep(min(1.0, lease / 3))


def _close_run(store: SQLRunLogStore, run_id: str, status: Status, error: str | None) -> None:
    """Give a run whose engine did not (stopped, or died) its true ending in the run log:
    its record, and every step or item it left running (``runlog.endings``)."""
    try:
        log = store.load(run_id)
    except RunNotFoundError:
        return
    if log.run.status is not Status.RUNNING:
        return
    end_run(store, log, status, error[:2000] if error else None)


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
    url: str, name: str | None = None, poll: float | None = None, lease: float = LEASE, once: bool = False
) -> None:
    """A worker: claim a run, execute it, repeat; when idle, sweep old work directories and
    wait for a wake-up (a run queued: ``server.wake``) or the poll interval."""
    engine = engine_for(url)
    worker = name or f"{socket.gethostname()}:{os.getpid()}"
    root = work_root()
    root.mkdir(parents=True, exist_ok=True)
    waiter = None if once else wake.Waiter(url, wake.poll_interval() if poll is None else poll)
    swept = 0.0
    try:
        while True:
            job = queue.claim(engine, worker, lease)
            if job is None:
                if waiter is None:
                    return
                if time.time() - swept > 60:
                    with contextlib.suppress(Exception):
                        sweep(engine, root)
                    swept = time.time()
                waiter.wait()
                continue
            try:
                execute(engine, url, job, worker, root, lease)
            except Exception as exc:  # no run may stop a worker: this one fails, the next is claimed
                message = f"the run could not be prepared or run: {type(exc).__name__}: {exc}"[:2000]
                with contextlib.suppress(Exception):
                    queue.finish(engine, job["id"], worker, Status.FAILED, message)
    finally:
        if waiter is not None:
            waiter.close()

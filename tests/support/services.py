"""Real services started by the tests: a throwaway PostgreSQL cluster, a conveyor server."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Postgres:
    """initdb + pg_ctl in a temporary directory, on 127.0.0.1 and a free port. PostgreSQL
    refuses to run as root: then the cluster runs as the ``postgres`` user. Tests run it with
    ``fsync`` off (quicker; nothing they check needs the disk); ``fsync=True`` keeps
    PostgreSQL's default, for benchmarks of what durability costs and power-cut tests, which
    give their own ``base`` (a folder on the device they cut) and ``settings``."""

    def __init__(self, fsync: bool = False, base: Path | None = None, settings: Sequence[str] = ()) -> None:
        self.fsync, self.settings = fsync, list(settings)
        self.base = base or Path(tempfile.mkdtemp(prefix="conveyor-pg-", dir="/tmp"))
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o755)
        self.data = self.base / "data"
        self.port = free_port()
        self.as_root = os.geteuid() == 0
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(argv)] if self.as_root else list(argv)
        return subprocess.run(command, capture_output=True, text=True, timeout=120)

    def start(self, init: bool = True) -> str:
        """Start the cluster (made first with initdb, unless ``init`` is false: a data folder
        already there, as a power-cut test finds it); its URL."""
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                raise RuntimeError(f"{tool} is not on PATH")
        if self.as_root:
            shutil.chown(self.base, "postgres", "postgres")
        if init:
            out = self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
            if out.returncode:
                raise RuntimeError(f"initdb failed: {out.stderr[-500:]}")
        settings = [
            "listen_addresses=127.0.0.1",
            "max_connections=200",
            f"fsync={'on' if self.fsync else 'off'}",
        ]
        options = f"-p {self.port} -k {self.base} " + " ".join(f"-c {s}" for s in settings + self.settings)
        out = self._run(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start"
        )
        if out.returncode:
            log = (
                (self.base / "log").read_text(errors="replace")[-800:] if (self.base / "log").exists() else ""
            )
            raise RuntimeError(f"pg_ctl start failed: {out.stderr[-500:]} {out.stdout[-500:]} {log}")
        return self.url

    def stop(self, remove: bool = True) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)


class Server:
    """``conveyor server start`` in a subprocess, with a user, an admin and their tokens."""

    def __init__(self, url: str, work: Path, workers: int = 2, lease: float = 2.0) -> None:
        self.db = url
        self.work = work
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.env = dict(
            os.environ,
            CONVEYOR_SERVER_WORKDIR=str(work / "runs"),
            CONVEYOR_LEASE_SECONDS=str(lease),
            # Sandboxed where bubblewrap is (CI installs it); the tests' own files stay writable.
            CONVEYOR_SERVER_SANDBOX="bwrap" if shutil.which("bwrap") else "none",
            CONVEYOR_SANDBOX_EXTRA=str(work),
            # Users' catalogs (and caches) in the test's folder, not the real data directory.
            CONVEYOR_SERVER_CATALOG=str(work / "catalogs"),
        )
        self.workers = workers
        self.api_workers = 1
        self.proc: subprocess.Popen[bytes] | None = None
        self.tokens: dict[str, str] = {}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "conveyor.cli", *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=120,
        )

    def start(self) -> Server:
        migrated = self.cli("server", "migrate", "--db", self.db)
        assert migrated.returncode == 0, migrated.stderr
        for name, admin in (("ann", False), ("bob", False), ("root", True)):
            made = self.cli(
                "server", "users", "create", name, "--db", self.db, *(["--admin"] if admin else [])
            )
            assert made.returncode == 0, made.stderr
            token = self.cli("server", "tokens", "create", name, "--db", self.db)
            assert token.returncode == 0, token.stderr
            self.tokens[name] = token.stdout.strip()
        self.log = open(self.work / "server.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "conveyor.cli",
                "server",
                "start",
                "--db",
                self.db,
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--api-workers",
                str(self.api_workers),
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 90  # workers start slowly on a loaded 2-core machine
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.endpoint}/api/v1/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("the server did not start: " + (self.work / "server.log").read_text()[-2000:])

    def client(self, user: str) -> httpx.Client:
        return httpx.Client(
            base_url=self.endpoint + "/api/v1",
            headers={"Authorization": f"Bearer {self.tokens[user]}"},
            timeout=30,
        )

    def stop(self) -> None:
        if self.proc is not None:
            import signal

            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.log.close()


class S3:
    """An S3 endpoint on loopback: moto in server mode. Buckets are made with boto3 in
    us-east-1 (s3fs's mkdir sends a location constraint that moto refuses)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.server: object | None = None

    def start(self) -> S3:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        from moto.server import ThreadedMotoServer

        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        server.start()
        self.server = server
        return self

    def bucket(self, name: str) -> str:
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        client.create_bucket(Bucket=name)
        return name

    @property
    def options(self) -> dict[str, object]:
        return {
            "key": "testing",
            "secret": "testing",
            "client_kwargs": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()  # type: ignore[attr-defined]


def fresh_database(base: str, prefix: str = "t_") -> str:
    """A new, empty database on the PostgreSQL at ``base``: tests never see each other's runs."""
    import uuid

    import sqlalchemy as sa

    name = prefix + uuid.uuid4().hex[:12]
    engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return base.rsplit("/", 1)[0] + "/" + name

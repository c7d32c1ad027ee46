"""Server figures: submissions per second and run-status latency with 20 concurrent clients,
on SQLite and on PostgreSQL (a throwaway cluster started here, as the tests do), with the CPU
each submission cost: the server's process tree, PostgreSQL's (its postmaster's tree) and the
load generator's own.

Usage: python benchmarks/server.py [--submissions 2000] [--queries 4000] [--api-workers 1]
    [--rounds 1] [--client raw|httpx] [--src SRC ...]

The server runs as `conveyor server start` in its own processes, with no run workers, so that
the figures are the API's and the database's, not the pipelines'. The load generator is
light by default (``raw``: HTTP/1.1 keep-alive over asyncio streams, about 0.1 ms of CPU a
request): on a small machine it shares the cores with the server, and httpx's 2-3 ms a
request would be measured as much as the server. Each ``--src`` (a ``src`` folder put first
on the server's PYTHONPATH, e.g. another commit's worktree) is measured in turn, rounds
alternated, so that before and after are side by side in one run under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tests"), str(HERE)]
from server_map import tree_cpu  # noqa: E402

from support.services import Postgres, Server, fresh_database  # noqa: E402

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {command: m.noop, next: success}\n"
CLIENTS = 20
Request = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]


class RawClient:
    """One keep-alive HTTP/1.1 connection: a request and its whole answer, nothing more."""

    def __init__(self, endpoint: str, token: str) -> None:
        self.host, self.port = endpoint.removeprefix("http://").split(":")
        self.head = f"Host: {self.host}\r\nAuthorization: Bearer {token}\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        if self.streams is None:
            self.streams = await asyncio.open_connection(self.host, int(self.port))
        reader, writer = self.streams
        extra = (
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n" if body is not None else ""
        )
        writer.write(f"{method} {path} HTTP/1.1\r\n{self.head}{extra}\r\n".encode() + (body or b""))
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
        return status, await reader.readexactly(length)

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()


async def _load(
    server: Server, submissions: int, queries: int, kind: str
) -> tuple[float, list[str], list[float]]:
    """20 concurrent clients on one event loop."""
    token = server.tokens["ann"]
    clients: list[Request] = []
    closers: list[Callable[[], Awaitable[None] | None]] = []
    if kind == "raw":
        for _ in range(CLIENTS):
            raw = RawClient(server.endpoint, token)
            clients.append(raw.request)
            closers.append(raw.close)
    else:
        shared = httpx.AsyncClient(
            base_url=server.endpoint,
            headers={"Authorization": f"Bearer {token}"},
            limits=httpx.Limits(max_connections=CLIENTS),
            timeout=60,
        )

        async def via_httpx(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
            headers = {"Content-Type": "application/json"} if body is not None else None
            response = await shared.request(method, path, content=body, headers=headers)
            return response.status_code, response.content

        clients = [via_httpx] * CLIENTS
        closers.append(shared.aclose)
    ids: list[str] = []
    body = json.dumps({"pipeline": PIPELINE}).encode()

    async def submit(client: Request, count: int) -> None:
        for _ in range(count):
            status, answer = await client("POST", "/api/v1/runs", body)
            assert status == 201, answer
            ids.append(json.loads(answer)["id"])

    started = time.perf_counter()
    await asyncio.gather(*(submit(c, submissions // CLIENTS) for c in clients))
    took = time.perf_counter() - started
    latencies: list[float] = []

    async def query(client: Request, index: int) -> None:
        for j in range(queries // CLIENTS):
            run_id = ids[(index * 7919 + j) % len(ids)]
            t0 = time.perf_counter()
            status, _ = await client("GET", f"/api/v1/runs/{run_id}", None)
            latencies.append(time.perf_counter() - t0)
            assert status == 200

    await asyncio.gather(*(query(c, i) for i, c in enumerate(clients)))
    for close in closers:
        done = close()
        if done is not None:
            await done
    return took, ids, latencies


WRK_SCRIPT = """
ids = {IDS}
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("GET", "/api/v1/runs/" .. ids[(counter % #ids) + 1])
end
"""


def wrk_latency(server: Server, ids: list[str]) -> str | None:
    """Status latency measured by wrk (a light C load generator), when it is installed."""
    import shutil
    import subprocess

    if shutil.which("wrk") is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT.replace("{IDS}", "{" + ", ".join(f'"{i}"' for i in ids[:500]) + "}"))
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CLIENTS}",
            "-d10s",
            "--latency",
            "-s",
            script.name,
            "-H",
            f"Authorization: Bearer {server.tokens['ann']}",
            server.endpoint,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures = {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] in ("50%", "99%"):
            figures[parts[0]] = parts[1]
        if line.startswith("Requests/sec:"):
            figures["rps"] = parts[1]
    p50, p99, rps = figures["50%"], figures["99%"], figures["rps"]
    return f"wrk, {CLIENTS} connections, 10 s: p50 {p50}, p99 {p99}, {rps} req/s"


def measure(
    url: str, src: str | None, opts: argparse.Namespace, database_pid: int | None
) -> tuple[float, float, float, float, float, float]:
    """One round on one server: submissions/s; CPU ms per submission of the server, the
    database and the client; status p50 and p99 (ms)."""
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(url, Path(tmp), workers=0)
        server.api_workers = opts.api_workers
        if src:
            server.env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, server.env.get("PYTHONPATH")]))
        server.start()
        try:
            assert server.proc is not None
            cpu = (
                tree_cpu(server.proc.pid),
                tree_cpu(database_pid) if database_pid else 0.0,
                time.process_time(),
            )
            # The load generator's own garbage collection would stall every request in flight
            # and show up as server latency: keep it out of the measurement.
            gc.disable()
            try:
                took, ids, latencies = asyncio.run(_load(server, opts.submissions, 0, opts.client))
                spent = (
                    tree_cpu(server.proc.pid) - cpu[0],
                    (tree_cpu(database_pid) - cpu[1]) if database_pid else 0.0,
                    time.process_time() - cpu[2],
                )
                _, _, latencies = asyncio.run(_load(server, CLIENTS, opts.queries, opts.client))
            finally:
                gc.enable()
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            if opts.wrk:
                measured = wrk_latency(server, ids)
                if measured:
                    print(f"    status latency ({measured})")
        finally:
            server.stop()
    per = [1000 * s / len(ids) for s in spent]
    return len(ids) / took, per[0], per[1], per[2], p50, p99


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--api-workers", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--src", action="append", default=[], help="a src folder for the server (repeatable)")
    parser.add_argument("--db", default="sqlite,postgres")
    parser.add_argument("--wrk", action="store_true", help="also measure status latency with wrk")
    opts = parser.parse_args()
    sources: list[str | None] = opts.src or [None]

    def src_index(src: str | None) -> int:
        return sources.index(src)

    print(
        f"{opts.submissions} submissions from {CLIENTS} clients ({opts.client} client), "
        f"{opts.api_workers} API worker(s); status latency over {opts.queries} queries; "
        f"medians of {opts.rounds} round(s); CPU in ms per submission"
    )
    with tempfile.TemporaryDirectory() as tmp:
        pg = Postgres() if "postgres" in opts.db else None
        try:
            databases: list[tuple[str, str, int | None]] = []
            if "sqlite" in opts.db:
                databases.append(("sqlite", f"sqlite:///{tmp}/server-{{n}}.db", None))
            if pg is not None:
                url = pg.start()
                pid = int((pg.data / "postmaster.pid").read_text().split()[0])
                databases.append(("postgresql", url, pid))
            for kind, url, pid in databases:
                figures: dict[str | None, list[tuple[float, ...]]] = {s: [] for s in sources}
                for n in range(opts.rounds):
                    for src in sources:
                        # a database of its own for each round and source
                        fresh = fresh_database(url) if pid else url.replace("{n}", f"{n}-{src_index(src)}")
                        figures[src].append(measure(fresh, src, opts, pid))
                for src in sources:
                    rate, server, database, client, p50, p99 = (
                        statistics.median(f[i] for f in figures[src]) for i in range(6)
                    )
                    print(
                        f"{kind:<10} {rate:5.0f} submissions/s; CPU server {server:.2f}, "
                        f"database {database:.2f}, client {client:.2f}; "
                        f"status p50 {p50:.1f} ms, p99 {p99:.1f} ms  [{src or 'this src'}]"
                    )
        finally:
            if pg is not None:
                pg.stop()


if __name__ == "__main__":
    main()

"""Server figures: submissions per second and run-status latency with 20 concurrent clients,
on SQLite and on PostgreSQL (a throwaway cluster started here, as the tests do).

Usage: python benchmarks/server.py [--submissions 2000] [--queries 4000] [--api-workers 2]
The server runs as `conveyor server start` in its own processes, with no run workers, so that
the figures are the API's and the database's, not the pipelines'.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.services import Postgres, Server

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {command: m.noop, next: success}\n"
CLIENTS = 20


async def _load(server: Server, submissions: int, queries: int) -> tuple[float, list[str], list[float]]:
    """20 concurrent clients on one event loop: a light load generator, so that the figures
    are the server's and not the client's."""
    headers = {"Authorization": f"Bearer {server.tokens['ann']}"}
    limits = httpx.Limits(max_connections=CLIENTS)
    async with httpx.AsyncClient(
        base_url=server.endpoint + "/api/v1", headers=headers, limits=limits, timeout=60
    ) as client:
        ids: list[str] = []

        async def submit(count: int) -> None:
            for _ in range(count):
                response = await client.post("/runs", json={"pipeline": PIPELINE})
                ids.append(response.json()["id"])

        started = time.perf_counter()
        await asyncio.gather(*(submit(submissions // CLIENTS) for _ in range(CLIENTS)))
        took = time.perf_counter() - started
        latencies: list[float] = []

        async def query(index: int) -> None:
            for j in range(queries // CLIENTS):
                run_id = ids[(index * 7919 + j) % len(ids)]
                t0 = time.perf_counter()
                response = await client.get(f"/runs/{run_id}")
                latencies.append(time.perf_counter() - t0)
                assert response.status_code == 200

        await asyncio.gather(*(query(i) for i in range(CLIENTS)))
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


def measure(db: str, submissions: int, queries: int, api_workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(db, Path(tmp), workers=0)
        server.api_workers = api_workers
        server.start()
        try:
            # The load generator's own garbage collection would stall every request in flight
            # and show up as server latency: keep it out of the measurement.
            gc.disable()
            try:
                took, ids, latencies = asyncio.run(_load(server, submissions, queries))
            finally:
                gc.enable()
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            kind = db.split(":", 1)[0].split("+")[0]
            print(
                f"{kind:<10} {len(ids) / took:7.0f} submissions/s ({len(ids)} from {CLIENTS} clients); "
                f"status p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} queries, Python client)"
            )
            measured = wrk_latency(server, ids)
            if measured:
                print(f"{kind:<10} status latency ({measured})")
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submissions", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=4000)
    parser.add_argument("--api-workers", type=int, default=2)
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        measure(f"sqlite:///{tmp}/server.db", opts.submissions, opts.queries, opts.api_workers)
    pg = Postgres()
    try:
        measure(pg.start(), opts.submissions, opts.queries, opts.api_workers)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()

"""Server figures: submissions per second and run-status latency with 20 concurrent clients,
on SQLite and on PostgreSQL (a throwaway cluster started here, as the tests do).

Usage: python benchmarks/server.py [--submissions 2000] [--queries 4000] [--api-workers 2]
The server runs as `conveyor server start` in its own processes, with no run workers, so that
the figures are the API's and the database's, not the pipelines'.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "pipelines"))
from services import Postgres, Server

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


def measure(db: str, submissions: int, queries: int, api_workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(db, Path(tmp), workers=0)
        server.api_workers = api_workers
        server.start()
        try:
            took, ids, latencies = asyncio.run(_load(server, submissions, queries))
            latencies.sort()
            p50 = statistics.median(latencies) * 1000
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
            kind = db.split(":", 1)[0].split("+")[0]
            print(
                f"{kind:<10} {len(ids) / took:7.0f} submissions/s ({len(ids)} from {CLIENTS} clients); "
                f"status p50 {p50:.1f} ms, p99 {p99:.1f} ms ({len(latencies)} queries)"
            )
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

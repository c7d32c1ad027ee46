"""Submit-to-start on an idle server: how long a queued run waits for a worker to claim it.

A server with one worker (SQLite, and PostgreSQL in a throwaway cluster started here) is
left idle; one run is submitted at a time, at a random moment (so that a polling worker is
caught anywhere in its interval), and waited for. Submit-to-start is the run's
``started_at - created_at`` as the server records them (the worker's claim against the
API's insert, one clock). Each conveyor given (``--python PY`` or ``PY@SRC``, as in
``server_map.py``) is measured in turn.

    python benchmarks/server_wake.py [--runs 20] [--db sqlite,postgres] [--python ...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from server_map import Conveyor, start_server  # noqa: E402

from support.services import Postgres, fresh_database  # noqa: E402

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {command: 'true', command_type: shell, next: success}\n"


def delays(server: object, runs: int) -> list[float]:
    """Submit-to-start of ``runs`` runs, one at a time, in milliseconds."""
    found = []
    with server.client("ann") as ann:  # type: ignore[attr-defined]
        for _ in range(runs):
            time.sleep(random.uniform(0.3, 1.3))
            run_id = ann.post("/runs", json={"pipeline": PIPELINE}).json()["id"]
            while (run := ann.get(f"/runs/{run_id}").json())["status"] in ("queued", "running"):
                time.sleep(0.05)
            found.append((float(run["started_at"]) - float(run["created_at"])) * 1000)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", action="append", help="PY or PY@SRC (repeat); default: this python")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--db", default="sqlite,postgres")
    args = parser.parse_args()
    conveyors = [Conveyor.parse(p) for p in args.python or [sys.executable]]
    kinds = [k.strip() for k in args.db.split(",") if k.strip()]
    postgres = Postgres() if "postgres" in kinds else None
    base = postgres.start() if postgres else ""
    try:
        with tempfile.TemporaryDirectory(prefix="conveyor-bench-") as tmp:
            for index, conveyor in enumerate(conveyors):
                for kind in kinds:
                    url = f"sqlite:///{tmp}/wake-{index}.db" if kind == "sqlite" else fresh_database(base)
                    folder = Path(tmp) / f"{kind}-{index}"
                    folder.mkdir()
                    server = start_server(conveyor, url, folder)
                    try:
                        time.sleep(2)  # idle: the worker has started and found nothing
                        found = sorted(delays(server, args.runs))
                    finally:
                        server.stop()
                    median, p90 = statistics.median(found), found[int(len(found) * 0.9) - 1]
                    print(
                        f"{conveyor.src or conveyor.python} {kind:9s} submit-to-start over {len(found)} "
                        f"runs: median {median:6.1f} ms, p90 {p90:6.1f} ms, max {found[-1]:6.1f} ms"
                    )
    finally:
        if postgres is not None:
            postgres.stop()


if __name__ == "__main__":
    main()

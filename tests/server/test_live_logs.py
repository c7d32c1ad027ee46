"""A running step's output is followed on the server as it is printed, as locally: the run
relays it every second and the API serves it before the attempt ends."""

from __future__ import annotations

import time

from support import TASKS
from support.server import tarball_of, wait_for
from support.services import Server

TICKER = """dag:
  start_at: tick
  steps:
    tick: {command: ctasks.ticker, returns: [n], next: success}
"""


def test_a_running_steps_output_streams_through_the_api(server: Server) -> None:
    with server.client("ann") as ann:
        body = {"pipeline": TICKER, "code": tarball_of(TASKS), "parameters": {"lines": 10, "pause": 1.0}}
        run_id = ann.post("/runs", json=body).json()["id"]
        seen: list[tuple[str, str]] = []
        deadline = time.time() + 120
        while time.time() < deadline:
            status = ann.get(f"/runs/{run_id}").json()["status"]
            text = ann.get(f"/runs/{run_id}/logs").text
            seen.append((status, text))
            if status != "queued" and status != "running":
                break
            time.sleep(0.5)
        while_running = [text for status, text in seen if status == "running" and "tick 3" in text]
        assert while_running, [(s, t[-80:]) for s, t in seen]
        assert "tick 9" not in while_running[0], "the output arrived in pieces, not at the end"
        final = wait_for(ann, run_id, ("succeeded", "failed"))
        assert final["status"] == "succeeded"
        assert "tick 9" in ann.get(f"/runs/{run_id}/logs").text

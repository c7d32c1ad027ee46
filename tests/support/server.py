"""Helpers shared by the server tests."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

PIPELINE = """dag:
  start_at: one
  steps:
    one: {command: ctasks.record, returns: [first], next: two}
    two: {command: ctasks.sleep_for, next: three}
    three: {command: ctasks.record_item, returns: [third], next: success}
"""
CONFIG = "executor: {type: local}\n"


def payload(counter: Path, seconds: float = 0.0, **extra: Any) -> dict[str, Any]:
    return {
        "pipeline": PIPELINE,
        "config": CONFIG,
        "parameters": {"counter": str(counter), "tag": "one", "seconds": seconds, "x": "three"},
        "code": None,
        **extra,
    }


def wait_for(
    client: httpx.Client, run_id: str, statuses: tuple[str, ...], timeout: float = 60
) -> dict[str, Any]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        run: dict[str, Any] = client.get(f"/runs/{run_id}").json()
        if run["status"] in statuses:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not reach {statuses}: {run}")


def tarball_of(directory: Path) -> str:
    from conveyor.client.bundle import encode_code

    return encode_code(directory)

"""Artifacts on a real server: a run's files are read from its owner's catalog, listed,
previewed and downloaded by the owner (and an admin), and another user's or a signed-out
request sees no such run, as with the run's other pages."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from support.server import payload, wait_for
from support.services import Server

PIPELINE = r"""dag:
  start_at: make
  steps:
    make:
      command_type: shell
      command: mkdir -p out && printf 'a,b\n1,<i>2</i>\n' > out/t.csv
      catalog: {put: ["out/t.csv"]}
      next: success
"""


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(f"sqlite:///{tmp_path / 'server.db'}", tmp_path, workers=1).start()
    yield running
    running.stop()


@contextmanager
def signed_in(server: Server, user: str) -> Iterator[httpx.Client]:
    """A browser-like client with ``user``'s session cookie."""
    with httpx.Client(base_url=server.endpoint, timeout=30) as client:
        assert client.post("/ui/api/login", json={"token": server.tokens[user]}).status_code == 200
        yield client


def test_only_the_owner_and_admins_read_a_runs_files(server: Server, tmp_path: Path) -> None:
    with server.client("ann") as ann:
        created = ann.post("/runs", json=payload(tmp_path / "counter", pipeline=PIPELINE))
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        wait_for(ann, run_id, ("succeeded",))
    base = f"/ui/api/runs/{run_id}/artifacts"
    file = {"step": "make", "attempt": 1, "name": "out/t.csv"}
    kept = next((tmp_path / "catalogs").glob(f"user-*/{run_id}/out/t.csv"))
    for user in ("ann", "root"):
        with signed_in(server, user) as client:
            listed = client.get(base).json()["artifacts"]
            assert [(a["step"], a["name"], a["kept"]) for a in listed] == [("make", "out/t.csv", True)]
            table = client.get(f"{base}/preview", params=file).json()
            assert (table["kind"], table["columns"], table["rows"]) == (
                "table",
                ["a", "b"],
                [["1", "<i>2</i>"]],
            )
            got = client.get(f"{base}/download", params=file)
            assert got.status_code == 200 and got.content == kept.read_bytes()
            assert got.headers["content-type"] == "application/octet-stream"
    with signed_in(server, "bob") as bob:
        for path in (base, f"{base}/preview", f"{base}/download", f"{base}/image"):
            refused = bob.get(path, params=file)
            assert refused.status_code == 404 and "<i>2</i>" not in refused.text
    assert httpx.get(f"{server.endpoint}{base}/download", params=file).status_code == 401

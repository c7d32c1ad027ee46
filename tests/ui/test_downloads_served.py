"""Downloads under a real server (``conveyor ui`` on uvicorn), hostile findings F5 and F7 of
issue 24: an artifact a step appends to while it is downloaded is sent as it was when the
response began (its Content-Length and bytes agree, and the server logs no error), and one
cut shorter ends the body with a warning; an attempt's log is downloaded in chunks of whole
lines, each redacted, never read whole."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conveyor.runlog.file import FileRunLogStore
from conveyor.ui.routes.logs import DOWNLOAD_CHUNK, attempt_log, log_chunks
from conveyor.ui.views import RunView
from support import run_cli
from support.browser import LocalUi

BIG = 48 * 1024 * 1024  # well over what loopback sockets buffer: the server is still reading
LINES = 300_000
PIPELINE = f"""dag:
  start_at: make
  steps:
    make:
      command_type: shell
      command: "mkdir -p out && head -c {BIG} /dev/urandom > out/big.bin && for i in 1 2 3; do echo https://u:secret-123@db/x; seq 1 {LINES}; done"
      catalog: {{put: ["out/*"]}}
      next: success
"""
CONFIG = """run_log_store: {type: file, config: {path: runs}}
catalog: {type: file, config: {location: catalog}}
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalUi, Path]]:
    where = tmp_path_factory.mktemp("downloads")
    (where / "config.yaml").write_text(CONFIG)
    (where / "pipeline.yaml").write_text(PIPELINE)
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "dl", cwd=where, timeout=300
    )
    assert out.returncode == 0, out.stderr
    started = LocalUi(where / "config.yaml", where)
    yield started, where
    started.stop()


def _kept(where: Path) -> Path:
    found = [p for p in (where / "catalog").rglob("big.bin") if ".objects" not in p.parts]
    assert len(found) == 1, found
    return found[0]


def _server_log(where: Path) -> str:
    time.sleep(0.5)  # what the server says after the response ended
    return (where / "ui.log").read_text(errors="replace")


def _download(ui: LocalUi, change: object) -> tuple[int, bytes, Exception | None]:
    params = {"step": "make", "attempt": 1, "name": "out/big.bin"}
    got, failed = bytearray(), None
    with httpx.stream(
        "GET", ui.url + "/ui/api/runs/dl/artifacts/download", params=params, timeout=60
    ) as response:
        assert response.status_code == 200
        length = int(response.headers["content-length"])
        chunks = response.iter_bytes(64 * 1024)
        got += next(chunks)
        change()  # type: ignore[operator]
        try:
            for chunk in chunks:
                got += chunk
        except httpx.HTTPError as exc:
            failed = exc
    return length, bytes(got), failed


def test_an_artifact_appended_to_while_downloading_is_sent_as_it_was(served: tuple[LocalUi, Path]) -> None:
    ui, where = served
    kept = _kept(where)
    original = kept.read_bytes()
    before = len(_server_log(where))

    def append() -> None:
        with kept.open("ab") as handle:
            handle.write(b"appended later " * 200_000)

    length, got, failed = _download(ui, append)
    assert failed is None and length == len(original) == BIG
    assert got == original  # the bytes it had when the response began, all of them
    said = _server_log(where)[before:]
    assert "Exception in ASGI application" not in said and "Content-Length" not in said, said[-2000:]
    kept.write_bytes(original)


def test_an_artifact_cut_shorter_while_downloading_ends_with_a_warning(served: tuple[LocalUi, Path]) -> None:
    ui, where = served
    kept = _kept(where)
    original = kept.read_bytes()
    before = len(_server_log(where))

    def cut() -> None:
        with kept.open("r+b") as handle:
            handle.truncate(BIG // 2)

    length, got, failed = _download(ui, cut)
    assert length == BIG and len(got) < BIG and failed is not None  # short, not padded
    assert got == original[: len(got)]
    assert "shrank while it was downloaded" in _server_log(where)[before:]
    kept.write_bytes(original)


def test_a_log_download_streams_in_chunks_of_whole_lines(served: tuple[LocalUi, Path]) -> None:
    ui, where = served
    store = FileRunLogStore(str(where / "runs"))
    view = RunView(store, "dl")
    location, _ = attempt_log(view, "make", 1)
    whole = store.read_log(location)
    assert len(whole) > 4 * DOWNLOAD_CHUNK and whole.count("secret-123") == 3

    def redact(text: str) -> str:
        return text.replace("secret-123", "***")

    tracemalloc.start()
    try:
        sizes, joined = [], []
        for chunk in log_chunks(view, location, redact):
            sizes.append(len(chunk))
            joined.append(chunk)
            assert chunk.endswith("\n")  # redaction sees whole lines
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    text = "".join(joined)
    assert text == redact(whole) and "secret-123" not in text
    assert len(sizes) > 4 and max(sizes) <= DOWNLOAD_CHUNK + 64
    # what is held at once is a few chunks, not the log (the joined copy here aside)
    assert peak - sum(sizes) < len(whole) / 2, (peak, len(whole))

    with httpx.stream(
        "GET", ui.url + "/ui/api/runs/dl/log/download", params={"step": "make", "attempt": 1}
    ) as got:
        assert got.status_code == 200 and "content-length" not in got.headers  # sent as read
        assert got.headers["content-disposition"].startswith('attachment; filename="dl-make-')
        body = got.read().decode()
    assert body == whole

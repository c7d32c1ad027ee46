"""conveyor's Argo client against a broken or hostile Argo Server (a real HTTP server on
loopback answering what each case says): every answer conveyor cannot read is an ArgoError
that says so, never a crash, and text from the server reaches the terminal without its
control characters (hostile review: internal errors, exit 70, and raw escape sequences)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from conveyor.executors.argo.client import ArgoError, ArgoServer

ANSWERS: dict[str, tuple[int, str, str]] = {}


class _Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        code, kind, body = ANSWERS["now"]
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        if code in (301, 302):
            self.send_header("Location", "http://other.invalid/steal")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ArgoServer]:
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        yield ArgoServer(f"http://127.0.0.1:{http.server_address[1]}", token="t", namespace="ns", timeout=5)
    finally:
        http.shutdown()


@pytest.mark.parametrize(
    ("answer", "said"),
    [
        ((200, "text/html", "<html>login</html>"), "is not JSON (text/html)"),
        ((200, "application/json", "[1, 2]"), "is not a workflow object"),
        ((200, "application/json", '{"status": "Running"}'), "is not a workflow object"),
        ((200, "application/json", '{"status": {"nodes": [1]}}'), "is not a workflow object"),
        ((302, "text/plain", ""), "302 to GET /api/v1/workflows/ns/wf: not followed"),
        ((500, "application/json", "[1]"), "answered 500"),
        ((500, "application/json", '{"message": 12}'), '{"message": 12}'),
        ((403, "application/json", '{"message": "no\\u001b[2J way"}'), "no\\x1b[2J way"),
    ],
)
def test_an_unreadable_answer_is_a_clear_error(
    server: ArgoServer, answer: tuple[int, str, str], said: str
) -> None:
    ANSWERS["now"] = answer
    with pytest.raises(ArgoError) as raised:
        server.get("wf")
    assert said in str(raised.value)
    assert "\x1b" not in str(raised.value)


def test_a_null_status_reads_as_none_yet(server: ArgoServer) -> None:
    ANSWERS["now"] = (200, "application/json", '{"metadata": {"name": "wf"}, "status": null}')
    assert server.get("wf")["status"] == {}


def test_log_lines_of_the_wrong_shape_are_skipped_and_escapes_shown(server: ArgoServer) -> None:
    lines = [
        '{"result": {"podName": "p1", "content": "fine"}}',
        "[1, 2]",
        '"text"',
        '{"result": [1]}',
        '{"result": {"podName": "p2", "content": "\\u001b]0;owned\\u0007red"}}',
    ]
    ANSWERS["now"] = (200, "application/json", "\n".join(lines))
    assert server.logs("wf") == [
        {"podName": "p1", "content": "fine"},
        {"podName": "p2", "content": "\\x1b]0;owned\\x07red"},
    ]


def test_an_answer_over_the_limit_is_an_error_not_memory(server: ArgoServer, monkeypatch: Any) -> None:
    from conveyor.executors.argo import client

    monkeypatch.setattr(client, "MAX_ANSWER", 1 << 20)
    ANSWERS["now"] = (200, "application/json", '{"metadata": {"name": "' + "x" * (2 << 20) + '"}}')
    with pytest.raises(ArgoError, match="over 1 MiB"):
        server.get("wf")
    ANSWERS["now"] = (200, "application/json", '{"metadata": {"name": "wf"}, "status": {"phase": "Running"}}')
    assert server.get("wf")["status"] == {"phase": "Running"}

"""The UI's logs of one attempt: a page of it from an offset, the whole of it as a download,
and a stream of what it appends while it runs (server-sent events)."""

import asyncio
import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from conveyor.runlog.records import Status
from conveyor.step.context import path_slug
from conveyor.ui.app import LOG_PAGE, MAX_LOG_OFFSET, _json
from conveyor.ui.logfiles import attempt_location, is_file_log, open_log
from conveyor.ui.routes.deps import UI, Look, started_view
from conveyor.ui.views import RunView

router = APIRouter()


def attempt_log(view: RunView, step: str, attempt: int) -> tuple[str, bool]:
    """Where an attempt's output is (the run's own log, see :mod:`conveyor.ui.logfiles`),
    and whether the attempt is still running."""
    key = tuple(p for p in step.split("/") if p)
    with view.lock:
        record = view.record(key)
    if record is None:
        raise HTTPException(404, f"no step '{step}' in run '{view.run_id}'")
    found = next((a for a in record.attempts if a.attempt == attempt), None)
    if found is None:
        raise HTTPException(404, f"step '{step}' has no attempt {attempt}")
    running = found.status is Status.RUNNING
    name = f"{path_slug(list(key))}/attempt-{attempt}.log"
    return attempt_location(view.store, view.run_id, found.log, name), running


def read_part(view: RunView, location: str, offset: int, limit: int) -> tuple[str, int]:
    """Characters from ``offset`` (at most ``limit``) and the total size: a file is read
    from where it is asked, never whole."""
    if is_file_log(view.store, view.run_id, location):
        try:
            fd = open_log(view.store, view.run_id, location)
        except OSError:  # not written yet (a queued attempt), or a link planted in its place
            return "", 0
        with open(fd, encoding="utf-8", errors="replace") as handle:
            size = os.fstat(handle.fileno()).st_size
            handle.seek(min(offset, size))
            return handle.read(limit), size
    text = view.store.read_log(location)
    return text[offset : offset + limit], len(text)


@router.get("/ui/api/runs/{run_id}/log", include_in_schema=False)
def log(
    viewer: Look,
    ui: UI,
    run_id: str,
    step: Annotated[str, Query(max_length=2000)],
    attempt: Annotated[int, Query(ge=1)] = 1,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
    limit: Annotated[int, Query(ge=1, le=LOG_PAGE)] = LOG_PAGE,
) -> JSONResponse:
    """A page of an attempt's output (redacted) from ``offset``, where the next starts, the
    total size and whether the attempt still runs."""
    view = started_view(ui, run_id, viewer)
    location, running = attempt_log(view, step, attempt)
    text, size = read_part(view, location, offset, limit)
    return _json(
        {
            "text": ui.redact(text),
            "offset": offset,
            "next": offset + len(text),
            "size": size,
            "running": running,
        }
    )


#: A log download is read and sent this many characters at a time, so that a big log is
#: never held whole; redaction works on whole lines, so a chunk ends at its last line end,
#: unless a line runs over LONG_LINE (a URL with a password is far shorter).
DOWNLOAD_CHUNK = 256 * 1024
LONG_LINE = 1024 * 1024


def log_chunks(view: RunView, location: str, redact: Callable[[str], str]) -> Iterator[str]:
    """An attempt's output, redacted, in chunks of whole lines (see DOWNLOAD_CHUNK): a file
    log is read as it is sent; a store that keeps logs elsewhere gives its text whole."""
    if not is_file_log(view.store, view.run_id, location):
        text = redact(view.store.read_log(location))
        for start in range(0, len(text), DOWNLOAD_CHUNK):
            yield text[start : start + DOWNLOAD_CHUNK]
        return
    try:
        fd = open_log(view.store, view.run_id, location)
    except OSError:  # not written yet (a queued attempt), or a link planted in its place
        return
    with open(fd, encoding="utf-8", errors="replace") as handle:
        carry = ""
        while block := handle.read(DOWNLOAD_CHUNK):
            text = carry + block
            cut = text.rfind("\n") + 1
            if cut == 0 and len(text) < LONG_LINE:
                carry = text
                continue
            cut = cut or len(text)
            carry = text[cut:]
            yield redact(text[:cut])
        if carry:
            yield redact(carry)


@router.get("/ui/api/runs/{run_id}/log/download", include_in_schema=False)
def download(
    viewer: Look, ui: UI, run_id: str, step: Annotated[str, Query(max_length=2000)], attempt: int = 1
) -> StreamingResponse:
    """An attempt's whole output (redacted) as a file named after the run, step and attempt,
    streamed a chunk at a time (``log_chunks``)."""
    view = started_view(ui, run_id, viewer)
    location, _ = attempt_log(view, step, attempt)
    name = f"{run_id}-{path_slug([p for p in step.split('/') if p])}-attempt-{attempt}.log".replace("/", "_")
    return StreamingResponse(
        log_chunks(view, location, ui.redact),
        media_type="text/plain; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/ui/api/runs/{run_id}/log/stream", include_in_schema=False)
async def stream(
    request: Request,
    viewer: Look,
    ui: UI,
    run_id: str,
    step: Annotated[str, Query(max_length=2000)],
    attempt: int = 1,
    offset: Annotated[int, Query(ge=0, le=MAX_LOG_OFFSET)] = 0,
) -> StreamingResponse:
    """What an attempt writes from ``offset``, as server-sent events, until it has ended
    and everything is sent (``event: end``) or the page goes away."""
    view = started_view(ui, run_id, viewer)
    attempt_log(view, step, attempt)

    async def events() -> AsyncIterator[str]:
        at = offset
        while True:
            fresh = ui.source.views.get(run_id)
            location, running = attempt_log(fresh, step, attempt)
            text, _ = await asyncio.to_thread(read_part, fresh, location, at, LOG_PAGE)
            if text:
                at += len(text)
                yield f"data: {json.dumps({'text': ui.redact(text), 'next': at})}\n\n"
            if not running and not text:
                yield "event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.5)

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

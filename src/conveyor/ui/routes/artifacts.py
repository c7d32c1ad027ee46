"""The UI's artifacts of a run: the list per step, one file as a download, its preview (JSON
the page renders as text) and an image's bytes. Which file is read, and what is refused, is
:mod:`conveyor.ui.artifacts`; what a preview parses, and why that is safe, is
:mod:`conveyor.ui.preview`.

Nothing here is served with a type a browser would run: downloads are
``application/octet-stream`` as attachments, previews are JSON, images are sent only with
the PNG, JPEG, GIF or WebP type their first bytes prove (never SVG or HTML); every answer
carries ``X-Content-Type-Options: nosniff`` and a policy that runs nothing.
"""

import logging
import os
import re
import unicodedata
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import JSONResponse, Response, StreamingResponse

from conveyor.ui.app import _json
from conveyor.ui.artifacts import Refused, entry, listing, open_artifact, read_head
from conveyor.ui.preview import IMAGE_BYTES, NOTEBOOK_BYTES, PREVIEW_BYTES, image_type, preview
from conveyor.ui.routes.deps import UI, Look, UIState, redact_texts, started_view
from conveyor.ui.source import Viewer

router = APIRouter()
logger = logging.getLogger(__name__)
CHUNK = 1024 * 1024
#: What a file's bytes are served with: never sniffed, nothing run, not framed.
FILE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "no-store",
}

Step = Annotated[str, Query(max_length=2000)]
Name = Annotated[str, Query(max_length=4000)]
AttemptNo = Annotated[int, Query(ge=1, le=1_000_000)]


def _open(ui: UIState, viewer: Viewer, run_id: str, step: str, attempt: int, name: str) -> tuple[int, int]:
    """The descriptor and size of a file the run's records name (404 for a run the viewer
    may not see, as every run endpoint answers)."""
    view = started_view(ui, run_id, viewer)
    try:
        item = entry(view, step, attempt, name)
        return open_artifact(ui.source.catalog(run_id, view.run), run_id, item)
    except Refused as exc:
        raise HTTPException(exc.status, str(exc)) from None


def _filename(name: str) -> str:
    """A ``Content-Disposition`` for ``name``'s last part: an ASCII fallback and the UTF-8
    name (RFC 6266), so no quote, newline or path reaches the header."""
    # Control and format characters (U+202E turns "nul\u202etxt.exe" into "nulexe.txt"
    # on screen) are dropped from the name a browser saves.
    last = "".join(c for c in name.rsplit("/", 1)[-1] if unicodedata.category(c) not in ("Cc", "Cf"))
    plain = re.sub(r"[^A-Za-z0-9._-]", "_", last) or "artifact"
    return f"attachment; filename=\"{plain}\"; filename*=UTF-8''{quote(last, safe='')}"


@router.get("/ui/api/runs/{run_id}/artifacts", include_in_schema=False)
def artifacts(viewer: Look, ui: UI, run_id: str, step: Step = "") -> JSONResponse:
    """The catalog files of ``step`` (all its attempts) or of the run's steps outside map
    items: name, size, digest and whether a copy is kept."""
    view = started_view(ui, run_id, viewer)
    return _json(listing(view, step or None))


@router.get("/ui/api/runs/{run_id}/artifacts/download", include_in_schema=False)
def download(
    viewer: Look, ui: UI, run_id: str, step: Step, attempt: AttemptNo, name: Name
) -> StreamingResponse:
    """The file as it was kept, as an attachment of no particular type: the ``size`` bytes
    it had when opened (``sized_chunks``), whatever is appended to it meanwhile."""
    fd, size = _open(ui, viewer, run_id, step, attempt, name)

    headers = {**FILE_HEADERS, "Content-Disposition": _filename(name), "Content-Length": str(size)}
    return StreamingResponse(
        sized_chunks(fd, size, name), media_type="application/octet-stream", headers=headers
    )


def sized_chunks(fd: int, size: int, name: str) -> Iterator[bytes]:
    """Exactly the first ``size`` bytes of ``fd`` (the size it had when the response's
    Content-Length was set), then ``fd`` closed. A file a step still appends to is sent as
    it was (sending more than the length said was an error in the server's log); one cut
    shorter meanwhile ends the body where the file ends, with a warning in the log (the
    client sees a download shorter than announced, not a file padded or mixed)."""
    try:
        offset = 0
        while offset < size:
            chunk = os.pread(fd, min(CHUNK, size - offset), offset)
            if not chunk:
                said = "artifact %r shrank while it was downloaded: %d of %d bytes sent"
                logger.warning(said, name, offset, size)
                return
            offset += len(chunk)
            yield chunk
    finally:
        os.close(fd)


@router.get("/ui/api/runs/{run_id}/artifacts/preview", include_in_schema=False)
def preview_of(viewer: Look, ui: UI, run_id: str, step: Step, attempt: AttemptNo, name: Name) -> JSONResponse:
    """A bounded look at the file (see :mod:`conveyor.ui.preview`), as JSON the page shows as
    text; its text redacted as logs are on the server."""
    fd, size = _open(ui, viewer, run_id, step, attempt, name)
    try:
        head = read_head(fd, NOTEBOOK_BYTES if name.lower().endswith(".ipynb") else PREVIEW_BYTES)
    finally:
        os.close(fd)
    return _json(redact_texts(ui, preview(name, size, head)))


@router.get("/ui/api/runs/{run_id}/artifacts/image", include_in_schema=False)
def image(viewer: Look, ui: UI, run_id: str, step: Step, attempt: AttemptNo, name: Name) -> Response:
    """An image's bytes with the one type its first bytes prove (415 for anything else)."""
    fd, size = _open(ui, viewer, run_id, step, attempt, name)
    try:
        if size > IMAGE_BYTES:
            raise HTTPException(413, f"{name!r} is {size} bytes, over the {IMAGE_BYTES} shown inline")
        data = read_head(fd, IMAGE_BYTES)
    finally:
        os.close(fd)
    media = image_type(data[:16])
    if media is None:
        raise HTTPException(415, f"{name!r} is not a PNG, JPEG, GIF or WebP image")
    return Response(data, media_type=media, headers=FILE_HEADERS)

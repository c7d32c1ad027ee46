"""A look at a catalog file without leaving the page: the first lines of text, the first rows
of a CSV as a table, JSON pretty-printed, a notebook's cells, or that it is an image.

The files are what a run wrote, so on the server they are untrusted input read by its
trusted side. That is why parsing stays minimal and bounded: at most :data:`PREVIEW_BYTES`
are read (:data:`NOTEBOOK_BYTES` for a notebook), text is decoded with replacement, CSV goes
through the standard ``csv`` module over that prefix only, JSON through the standard ``json``
module only when the whole file is within the limit (its depth guarded by catching
``RecursionError``), images are recognised by their first bytes and never decoded here, and
nothing is ever unpickled, imported or executed (a notebook's outputs are the ones saved in
it; HTML, JavaScript and SVG outputs are named, not shown). Everything returned is plain text
for the page to put into the document as text.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Literal, NotRequired, TypedDict

#: The most bytes of a file a preview reads (the rest is said to be cut).
PREVIEW_BYTES = 256 * 1024
#: A notebook is parsed whole, so only one up to this size is previewed.
NOTEBOOK_BYTES = 2 * 1024 * 1024
#: The most an image shown inline may weigh (larger ones: download).
IMAGE_BYTES = 8 * 1024 * 1024
TEXT_LINES = 200
TABLE_ROWS, TABLE_COLUMNS, CELL_CHARS = 50, 50, 200
NOTEBOOK_CELLS, OUTPUT_CHARS = 200, 4000

Kind = Literal["text", "table", "json", "image", "notebook", "none"]
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Cell(TypedDict):
    """One notebook cell as text: its kind, its source, and its saved outputs as text."""

    type: str
    source: str
    outputs: list[str]


class Preview(TypedDict):
    """What the page's preview dialog shows (built with textContent only)."""

    name: str
    size: int
    kind: Kind
    #: Whether only the start of the file is shown.
    truncated: bool
    text: NotRequired[str]
    columns: NotRequired[list[str]]
    rows: NotRequired[list[list[str]]]
    cells: NotRequired[list[Cell]]
    #: An image's media type (the bytes come from the image endpoint).
    media_type: NotRequired[str]
    #: Why there is nothing to show (binary, too large, unreadable).
    reason: NotRequired[str]


def image_type(head: bytes) -> str | None:
    """The media type of a PNG, JPEG, GIF or WebP image from its first bytes (never from its
    name); None for anything else, SVG and HTML included (a browser would run their scripts)."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def _lines(text: str, limit: int) -> tuple[str, bool]:
    lines = text.splitlines()
    return "\n".join(lines[:limit]), len(lines) > limit


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(text: str, name: str, cut: bool) -> tuple[list[str], list[list[str]], bool] | None:
    """Header and first rows of CSV (TSV for ``.tsv``) text; None if the csv module refuses it."""
    lines = text.splitlines(keepends=True)
    if cut and len(lines) > 1:
        lines = lines[:-1]  # the last line read may be cut short
    delimiter = "\t" if name.lower().endswith(".tsv") else ","
    try:
        rows = []
        for row in csv.reader(io.StringIO("".join(lines)), delimiter=delimiter):
            rows.append([_cut(c, CELL_CHARS) for c in row[:TABLE_COLUMNS]])
            if len(rows) > TABLE_ROWS:
                break
    except csv.Error:
        return None
    if not rows:
        return None
    more = len(rows) > TABLE_ROWS or cut
    return rows[0], rows[1 : TABLE_ROWS + 1], more


def _joined(value: object) -> str:
    """A notebook field that is a string or a list of strings, as one string."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _output(output: object) -> str:
    """One saved output as text: a stream, an error (without colour codes), a result's
    ``text/plain``; other types (HTML, images, JavaScript) are named, not shown."""
    if not isinstance(output, dict):
        return ""
    kind = output.get("output_type")
    if kind == "stream":
        return _cut(_joined(output.get("text")), OUTPUT_CHARS)
    if kind == "error":
        trace = "\n".join(_joined(t) for t in output.get("traceback") or [] if isinstance(t, str))
        said = f"{_joined(output.get('ename'))}: {_joined(output.get('evalue'))}"
        return _cut(_ANSI.sub("", trace) or said, OUTPUT_CHARS)
    data = output.get("data")
    if isinstance(data, dict):
        if "text/plain" in data:
            return _cut(_joined(data["text/plain"]), OUTPUT_CHARS)
        return "(" + ", ".join(sorted(str(k) for k in data)) + " output, not shown)"
    return ""


def notebook_cells(data: bytes) -> tuple[list[Cell], bool] | None:
    """A notebook's cells (source and saved outputs as text, markdown as its text); None if
    it is not a notebook's JSON."""
    try:
        nb = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None
    cells: list[Cell] = []
    for cell in nb["cells"][:NOTEBOOK_CELLS]:
        if not isinstance(cell, dict):
            continue
        outputs = cell.get("outputs") if cell.get("cell_type") == "code" else None
        shown = [o for o in (_output(o) for o in outputs or [] if isinstance(outputs, list)) if o]
        cells.append(
            {
                "type": str(cell.get("cell_type") or "raw")[:20],
                "source": _cut(_joined(cell.get("source")), OUTPUT_CHARS),
                "outputs": shown,
            }
        )
    return cells, len(nb["cells"]) > NOTEBOOK_CELLS


def preview(name: str, size: int, head: bytes) -> Preview:
    """The preview of a file named ``name`` of ``size`` bytes whose first bytes are ``head``
    (all of it when ``size <= len(head)``)."""
    cut = size > len(head)
    out: Preview = {"name": name, "size": size, "kind": "none", "truncated": cut}
    lower = name.lower()
    media = image_type(head[:16])
    if media is not None:
        if size > IMAGE_BYTES:
            out["reason"] = f"an image of {size} bytes, over the {IMAGE_BYTES} shown inline: download it"
        else:
            out["kind"] = "image"
            out["media_type"] = media
            out["truncated"] = False
        return out
    if lower.endswith(".ipynb"):
        found = notebook_cells(head) if not cut else None
        if found is not None:
            out["kind"] = "notebook"
            out["cells"] = found[0]
            out["truncated"] = found[1]
            return out
        if cut:
            out["reason"] = f"a notebook over {NOTEBOOK_BYTES} bytes is not previewed: download it"
            return out
    if b"\x00" in head[:PREVIEW_BYTES]:
        out["reason"] = "a binary file: download it"
        return out
    head = head[:PREVIEW_BYTES]
    cut = size > len(head)
    text = head.decode("utf-8", errors="replace")
    if lower.endswith(".json") and not cut:
        try:
            pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except (ValueError, RecursionError):
            pretty = None
        if pretty is not None:
            shown, more = _lines(pretty, TEXT_LINES * 5)
            out["kind"] = "json"
            out["text"] = shown
            out["truncated"] = more
            return out
    if lower.endswith((".csv", ".tsv")):
        table = _table(text, lower, cut)
        if table is not None:
            out["kind"] = "table"
            out["columns"] = table[0]
            out["rows"] = table[1]
            out["truncated"] = table[2]
            return out
    shown, more = _lines(text, TEXT_LINES)
    out["kind"] = "text"
    out["text"] = shown
    out["truncated"] = cut or more
    return out

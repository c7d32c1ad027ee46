"""The JSON edge of the stores: records and events to bytes and back.

Every store writes the same shapes, so a run moved between stores (or written by an older
conveyor) reads back the same.
"""

from __future__ import annotations

import json
import math
from json.encoder import c_make_encoder, encode_basestring_ascii
from collections.abc import Iterable, Sequence
from typing import Any

from conveyor.runlog.base import CorruptRunError
from conveyor.runlog.records import Event, RunRecord, Status, StepRecord, fold_json

_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode

#: The C encoder itself, made once: ``JSONEncoder.encode`` builds one on every call, which
#: is most of the cost of a map item's short record. No circular-reference markers: records
#: are made of JSON values (returns were checked when the step ended, the rest is ours); a
#: circular value would end in RecursionError rather than loop.
_c_encode = (
    c_make_encoder(None, str, encode_basestring_ascii, None, ":", ",", False, False, True)
    if c_make_encoder is not None
    else None
)


def _line(data: object) -> str:
    """One JSON object as the stores write it (compact, ASCII), by the C encoder when there."""
    if _c_encode is None:
        return _encode(data)
    return "".join(_c_encode(data, 0))


def encode_event(event: Event) -> str:
    """One event as one line of JSON (no newline)."""
    return _line(event.to_json())


def encode_events(events: Sequence[Event]) -> bytes:
    """Events as JSON lines, each ended by a newline (each encoded once, the batch joined)."""
    if len(events) == 1:
        return (_line(events[0].to_json()) + "\n").encode()
    return ("\n".join([_line(e.to_json()) for e in events]) + "\n").encode()


def encode_run(run: RunRecord, indent: int | None = None) -> str:
    """A run record as JSON text. With ``indent``, each of its fields on a line of its own
    (for people opening the file), each value compact: json's indenting encoder is the pure
    Python one, and a map's final parameters hold a value per item (100,000 of them), while
    the C encoder writes them in a few milliseconds."""
    data = run.to_json()
    if indent is None:
        return json.dumps(data, default=str)
    pad = " " * indent
    return "{\n" + ",\n".join(f"{pad}{_line(k)}: {_line(v)}" for k, v in data.items()) + "\n}"


def decode_run(text: str | bytes) -> RunRecord:
    """Raises ValueError for anything that is not a run record."""
    return RunRecord.from_json(json.loads(text))


def decode_runs(rows: Iterable[tuple[str, str | bytes]]) -> list[RunRecord]:
    """Run records from (run id, stored text) rows. A corrupt one is listed as such, with
    status unknown and the reason as its error, rather than breaking the listing."""
    runs = []
    for run_id, text in rows:
        try:
            runs.append(decode_run(text))
        except ValueError as exc:
            runs.append(unreadable(run_id, exc))
    return runs


def unreadable(run_id: str, exc: Exception) -> RunRecord:
    """What a listing shows for a run whose record cannot be read."""
    return RunRecord(run_id=run_id, status=Status.UNKNOWN, error=f"unreadable run record: {exc}")


def decode_run_of(run_id: str, where: str, text: str | bytes) -> RunRecord:
    """The run record of ``run_id``; CorruptRunError (a message, not a crash) if unreadable."""
    try:
        return decode_run(text)
    except ValueError as exc:
        raise CorruptRunError(run_id, where, str(exc)) from None


def decode_lines(lines: Iterable[str | bytes], skipped: list[int] | None = None) -> list[Any]:
    """JSON objects from lines; a line cut short by a crash mid-write, or empty, is skipped
    (and counted in ``skipped``, when given)."""
    out = []
    for line in lines:
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            if skipped is not None:
                skipped[0] += 1
    return out


def fold_lines(lines: Iterable[str | bytes]) -> tuple[dict[tuple[str, ...], StepRecord], int]:
    """Step records from JSON lines, and how many lines were unreadable (torn) and skipped."""
    skipped = [0]
    return fold_json(decode_lines(lines, skipped)), skipped[0]


def finite(value: Any) -> Any:
    """``value`` with NaN and infinities as the strings JSON lacks ("NaN", "Infinity"):
    a run that recorded them is still sent as valid JSON (the API, the UI)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value

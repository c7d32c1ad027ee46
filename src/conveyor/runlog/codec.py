"""The JSON edge of the stores: records and events to bytes and back.

Every store writes the same shapes, so a run moved between stores (or written by an older
conveyor) reads back the same.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

from conveyor.jsontext import compact, flat
from conveyor.runlog.base import CorruptRunError
from conveyor.runlog.itemattempt import ItemAttempt
from conveyor.runlog.records import EndEvent, Event, RunRecord, StartEvent, Status, StepRecord, fold_json

#: One JSON value as the stores write it (compact, ASCII).
_line = compact


def _number(value: float) -> str:
    """A time or count as json writes it: a finite float's repr, an int's digits (json's
    text for them); anything else (NaN, an infinity, a bool) encoded."""
    kind = type(value)
    if (kind is float and value - value == 0.0) or kind is int:
        return repr(value)
    return _line(value)


_TASK = _line("task")
#: Each status as its line holds it (``event.status.value``, encoded), looked up.
_STATUS = {status: _line(status.value) for status in Status}


def _end_line(event: EndEvent, path: str) -> str:
    """An end event's line, the same text as ``_line(event.to_json())`` (tested): its fixed
    fields written directly, only its values (returns, metrics, error...) encoded."""
    t, started = event.t, event.started
    parts = [
        '{"e":"end","path":',
        path,
        ',"attempt":',
        _number(event.attempt),
        ',"t":',
        repr(t) if type(t) is float and t - t == 0.0 else _number(t),
    ]
    if started is not None:
        parts += [
            ',"started":',
            repr(started) if type(started) is float and started - started == 0.0 else _number(started),
        ]
    parts += [',"status":', _STATUS.get(event.status) or _line(event.status.value)]
    if event.exit_code is not None:
        parts += [',"exit_code":', _line(event.exit_code)]
    if event.error is not None:
        parts += [',"error":', _line(event.error)]
    if event.returns:
        parts += [',"returns":', _line(event.returns)]
    if event.metrics:
        parts += [',"metrics":', _line(event.metrics)]
    if event.catalog:
        parts += [',"catalog":', _line(event.catalog)]
    if event.log is not None:
        parts += [',"log":', _line(event.log)]
    if event.info:
        parts += [',"info":', _line(event.info)]
    parts.append("}")
    return "".join(parts)


def _start_line(event: StartEvent, path: str) -> str:
    """A start event's line, the same text as ``_line(event.to_json())`` (tested)."""
    kind = event.type
    return (
        f'{{"e":"start","path":{path},"type":{_TASK if kind == "task" else _line(kind)},'
        f'"attempt":{_number(event.attempt)},"t":{_number(event.t)}}}'
    )


def encode_event(event: Event) -> str:
    """One event as one line of JSON (no newline)."""
    return _line(event.to_json())


def _item_lines(item: ItemAttempt) -> str:
    """A map item's attempt as the two lines of its start and end events, the same text as
    ``encode_events(item.events())`` without its last newline (tested): written out in one
    format string, only the returns (and an error, metrics, a log) encoded."""
    path = item.path_text or _line(item.path)
    t, started, attempt = item.t, item.started, item.attempt
    ended = repr(t) if type(t) is float and t - t == 0.0 else _number(t)
    began = repr(started) if type(started) is float and started - started == 0.0 else _number(started)
    tried = "1" if attempt == 1 and type(attempt) is int else _number(attempt)
    status = _STATUS.get(item.status) or _line(item.status.value)
    more = ""
    if item.error is not None:
        more += ',"error":' + _line(item.error)
    if item.returns:
        more += ',"returns":' + flat(item.returns)
    if item.metrics:
        more += ',"metrics":' + _line(item.metrics)
    if item.log is not None:
        more += ',"log":' + _line(item.log)
    if item.info:
        more += ',"info":' + _line(item.info)
    end = (
        f'{{"e":"end","path":{path},"attempt":{tried},"t":{ended},"started":{began},"status":{status}{more}}}'
    )
    if not item.opened:
        return end
    return f'{{"e":"start","path":{path},"type":{_TASK},"attempt":{tried},"t":{began}}}\n{end}'


def encode_events(events: Sequence[Event | ItemAttempt]) -> bytes:
    """Events as JSON lines, each ended by a newline. A map item's start and end (its one
    write) share the encoding of their path; their fixed fields are written directly: each
    value is encoded once, and nothing else is (this is most of a map item's record cost).
    An :class:`ItemAttempt` is written as the two events it stands for."""
    if len(events) == 1 and type(events[0]) is ItemAttempt:  # a map item's one write
        return (_item_lines(events[0]) + "\n").encode()
    lines = []
    path_of: list[str] | None = None
    path_text = ""
    for event in events:
        kind = type(event)
        if kind is ItemAttempt:
            lines.append(_item_lines(event))  # type: ignore[arg-type]
        elif kind is EndEvent or kind is StartEvent:
            if event.path is not path_of:
                path_of, path_text = event.path, _line(event.path)
            if kind is EndEvent:
                lines.append(_end_line(event, path_text))  # type: ignore[arg-type]
            else:
                lines.append(_start_line(event, path_text))  # type: ignore[arg-type]
        else:
            lines.append(_line(event.to_json()))  # type: ignore[union-attr]  # a node event
    lines.append("")
    return "\n".join(lines).encode()


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

"""JSON text as conveyor writes it, by json's C encoder made once.

``json.dumps`` and ``JSONEncoder.encode`` build a new C encoder on every call: for a short
value that is most of the cost, and a map item writes several (its run log record, its cache
key and entry). The encoders here are made once, with the same settings and so the same
text as the calls they replace. They keep no circular-reference markers: what they encode
is JSON made by conveyor or values already checked (a circular value ends in RecursionError
rather than looping). Shared between threads: the C encoder keeps no state between calls.

No conveyor module is imported here: every layer may use it.
"""

from __future__ import annotations

import json
import json.encoder
from collections.abc import Callable, Mapping
from typing import Any

#: json's C encoder factory (not in json's typed interface); None without the C speedups.
_make: Any = getattr(json.encoder, "c_make_encoder", None)
_ascii: Any = json.encoder.encode_basestring_ascii


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


if _make is not None:
    _compact = _make(None, str, _ascii, None, ":", ",", False, False, True)
    _plain = _make(None, _refuse, _ascii, None, ": ", ", ", False, False, True)

    def compact(value: object) -> str:
        """``json.dumps(value, separators=(",", ":"), default=str)``: the run log's and the
        cache log's lines."""
        return "".join(_compact(value, 0))

    def plain(value: object) -> str:
        """``json.dumps(value)``, json's default text (cache keys hash it)."""
        return "".join(_plain(value, 0))

else:  # pragma: no cover - an interpreter without json's C speedups

    def compact(value: object) -> str:
        """``json.dumps(value, separators=(",", ":"), default=str)``."""
        return json.dumps(value, separators=(",", ":"), default=str)

    def plain(value: object) -> str:
        """``json.dumps(value)``."""
        return json.dumps(value)


def string(value: str) -> str:
    """``compact(value)`` for a ``str``: json's own quoted, escaped text of it."""
    text: str = _ascii(value)
    return text


#: Each key of a flat object as :func:`flat` writes it (``"name":``), made once per name.
_KEYS: dict[str, str] = {}


def flat(values: Mapping[str, object]) -> str:
    """``compact(values)`` (the same text, tested), faster for what a map item returns: an
    object of one or two names whose values are integers, strings, ``None`` or booleans
    (json's own text for them, written directly); anything else goes to :func:`compact`."""
    if len(values) > 2:
        return compact(values)
    parts = []
    for name, value in values.items():
        kind = type(value)
        if kind is int:
            text = int.__repr__(value)
        elif kind is str:
            text = _ascii(value)
        elif value is None:
            text = "null"
        elif kind is bool:
            text = "true" if value else "false"
        else:
            return compact(values)
        key = _KEYS.get(name) if type(name) is str else None
        if key is None:
            if type(name) is not str or len(_KEYS) > 4096:
                return compact(values)
            key = _KEYS[name] = compact(name) + ":"
        parts.append(key + text)
    return "{" + ",".join(parts) + "}"


#: orjson's ``loads`` and its error, once looked for (orjson is imported at the first read,
#: not at start-up: a run that reads no cache entry does not pay for it).
_orjson: tuple[Callable[[str | bytes], object], type[Exception]] | None = None
_looked = False


def _fast_reader() -> tuple[Callable[[str | bytes], object], type[Exception]] | None:
    global _orjson, _looked
    if not _looked:
        try:  # orjson (the ui extra) reads JSON several times faster; json reads what it refuses
            from orjson import JSONDecodeError, loads
        except ImportError:  # pragma: no cover - the ui extra is not installed
            pass
        else:
            _orjson = (loads, JSONDecodeError)
        _looked = True
    return _orjson


def loads(text: str | bytes) -> object:
    """``json.loads(text)``, by orjson when it is installed. What orjson refuses and json
    reads (``NaN``, integers past 64 bits, which json writes) is read by json; what neither
    reads raises ValueError, as json does."""
    fast = _orjson if _looked else _fast_reader()
    if fast is not None:
        try:
            return fast[0](text)
        except fast[1]:
            pass
    return json.loads(text)

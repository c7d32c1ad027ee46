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
from collections.abc import Callable
from typing import Any

#: json's C encoder factory (not in json's typed interface); None without the C speedups.
_make: Any = getattr(json.encoder, "c_make_encoder", None)
_ascii: Any = json.encoder.encode_basestring_ascii


def _refuse(value: object) -> object:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _made(default: Callable[[object], object], colon: str, comma: str) -> Callable[[object], str] | None:
    if _make is None:  # an interpreter without json's C speedups
        return None
    encoder = _make(None, default, _ascii, None, colon, comma, False, False, True)

    def encode(value: object) -> str:
        return "".join(encoder(value, 0))

    return encode


_compact_c = _made(str, ":", ",")
_plain_c = _made(_refuse, ": ", ", ")


def compact(value: object) -> str:
    """``json.dumps(value, separators=(",", ":"), default=str)``: the run log's and the
    cache log's lines."""
    if _compact_c is None:
        return json.dumps(value, separators=(",", ":"), default=str)
    return _compact_c(value)


def plain(value: object) -> str:
    """``json.dumps(value)``, json's default text (cache keys hash it)."""
    if _plain_c is None:
        return json.dumps(value)
    return _plain_c(value)


_orjson_loads: Callable[[str | bytes], object] | None
try:  # orjson (the ui extra) reads JSON several times faster; json reads what it refuses
    from orjson import JSONDecodeError as _OrjsonError
    from orjson import loads as _orjson_loads
except ImportError:  # pragma: no cover - the ui extra is not installed
    _orjson_loads = None


def loads(text: str | bytes) -> object:
    """``json.loads(text)``, by orjson when it is installed. What orjson refuses and json
    reads (``NaN``, integers past 64 bits, which json writes) is read by json; what neither
    reads raises ValueError, as json does."""
    if _orjson_loads is not None:
        try:
            return _orjson_loads(text)
        except _OrjsonError:
            pass
    return json.loads(text)

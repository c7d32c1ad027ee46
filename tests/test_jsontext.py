"""``conveyor.jsontext``: the encoders made once write exactly what ``json.dumps`` writes, and
``loads`` reads what json reads (orjson first, json for what orjson refuses)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conveyor.jsontext import compact, loads, plain

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
def test_the_encoders_write_what_json_dumps_writes(value: Any) -> None:
    assert plain(value) == json.dumps(value)
    assert compact(value) == json.dumps(value, separators=(",", ":"), default=str)


def test_compact_writes_other_objects_as_text_and_plain_refuses_them() -> None:
    thing = object()
    assert compact({"o": thing}) == json.dumps({"o": str(thing)}, separators=(",", ":"))
    with pytest.raises(TypeError, match="not JSON serializable"):
        plain({"o": thing})


def test_loads_reads_what_json_writes_and_refuses_what_json_refuses() -> None:
    read = loads('{"n": NaN, "big": 123456789012345678901234567890, "s": "\\u00e9"}')
    assert isinstance(read, dict) and math.isnan(read["n"]) and read["big"] == 123456789012345678901234567890
    assert read["s"] == "é" and loads(b"[1, 2.5]") == [1, 2.5]
    with pytest.raises(ValueError):
        loads('{"cut": ')

"""JSON's value types, named once, so a signature can say "JSON" rather than "anything".

``dict[str, Any]`` switches the type checker off for everything read out of it; these
aliases keep it on: a value read from a ``JSONObject`` is one of JSON's types and must be
narrowed (``isinstance``) before use, and only JSON can be put in. Use them for data that
is JSON by nature (a run log line, an API body, a manifest fragment, a parameter) and that
no richer type (a pydantic model, a dataclass, a ``TypedDict``) describes. Data we pass on
without looking inside (a user's object) is ``object``, not JSON.

No conveyor module is imported here: every layer may use it.
"""

from __future__ import annotations

from typing import TypeAlias

JSONScalar: TypeAlias = str | int | float | bool | None
JSONValue: TypeAlias = JSONScalar | list["JSONValue"] | dict[str, "JSONValue"]
JSONObject: TypeAlias = dict[str, JSONValue]
JSONArray: TypeAlias = list[JSONValue]

__all__ = ["JSONArray", "JSONObject", "JSONScalar", "JSONValue"]

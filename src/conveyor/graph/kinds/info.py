"""What a kind's run record keeps beside its status, as types: one record class per kind,
JSON only at the store's edge (:meth:`Info.from_json`, :meth:`Info.to_json`).

A run log written before these types existed loads unchanged: the JSON keys are those the
kinds always wrote, and keys a record does not know are kept (``extra``) and written back.
The CLI (``runs show``) and the UI show :meth:`Info.summary` and :meth:`Info.label`, so
neither has to know what a kind's info holds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar, TypeVar

from conveyor.jsontypes import JSONObject

InfoT = TypeVar("InfoT", bound="Info")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


@dataclass(kw_only=True)
class Info:
    """A node's info: an error that ended it, and what this version does not know."""

    #: Keys of the JSON that are fields of this record (the rest goes to ``extra``).
    KEYS: ClassVar[tuple[str, ...]] = ("error",)

    error: str | None = None
    extra: JSONObject = field(default_factory=dict)

    @classmethod
    def from_json(cls: type[InfoT], data: JSONObject | None) -> InfoT:
        """The record a store's JSON holds; values of the wrong type are dropped, not errors."""
        data = data or {}
        known = {f.name: f for f in dataclasses.fields(cls)}
        record = cls(extra={k: v for k, v in data.items() if k not in cls.KEYS})
        for key in cls.KEYS:
            value = cls._read(key, data[key], known[key].type) if key in data else None
            if value is not None:  # each field is checked by _read against its annotation
                setattr(record, key, value)
        return record

    @staticmethod
    def _read(key: str, value: object, annotation: object) -> object:
        text = str(annotation)
        if text.startswith("int"):
            return _int(value)
        if text.startswith("str"):
            return _str(value)
        if text.startswith("bool"):
            return value if isinstance(value, bool) else None
        if text.startswith("list[int]"):
            return [v for v in value if _int(v) is not None] if isinstance(value, list) else None
        if text.startswith(("dict", "JSON")):
            return value if isinstance(value, dict) else None
        return value

    def to_json(self) -> JSONObject:
        """The JSON a store keeps: the fields that are set (not None), then ``extra``."""
        out: JSONObject = {key: getattr(self, key) for key in self.KEYS if getattr(self, key) is not None}
        return {**out, **self.extra}

    def take(self, other: Info) -> None:
        """Set this record's fields to ``other``'s (an outcome computed apart, e.g. a map's
        reduction, into the record its node's run is filling)."""
        for key in (*other.KEYS, "extra"):
            setattr(self, key, getattr(other, key))

    def summary(self, error: str | None = None) -> str:
        """One line for ``runs show`` and the UI's step table; ``error`` is the last
        attempt's, when there is one (it wins over the node's own)."""
        return error or self.error or ""

    def label(self) -> str:
        """A few words for a node in the UI's DAG (empty: nothing to say)."""
        return ""

    def state(self) -> dict[str, int | str | None]:
        """Figures the UI's DAG keeps for the node, by name (items, iterations, branch)."""
        return {}

    def chosen(self) -> str | None:
        """The branch it ran, when it runs one of several (None: all, or not chosen yet)."""
        return None


def _then(head: str, detail: str) -> str:
    return head + (f"; {detail}" if detail else "")

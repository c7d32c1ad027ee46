"""Parameter scopes: a map iteration or a branch sees its parent's values plus its own."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any


class Scope:
    """Values set here shadow the parent's; only this scope's own values are merged back."""

    __slots__ = ("env", "own", "parent")

    def __init__(
        self,
        parent: Scope | None = None,
        values: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.parent = parent
        self.own: dict[str, Any] = dict(values or {})
        #: Environment variables the steps in this scope see (a loop's ``index_as``).
        self.env: dict[str, str] = dict(env or {})

    def environment(self) -> dict[str, str]:
        """Every environment variable set by this scope and its parents, nearest winning."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope)
            scope = scope.parent
        out: dict[str, str] = {}
        for each in reversed(chain):
            out.update(each.env)
        return out

    def view(self) -> Mapping[str, Any]:
        """A read-only view of every visible value, nearest scope first (no copying)."""
        maps: list[Mapping[str, Any]] = []
        scope: Scope | None = self
        while scope is not None:
            maps.append(scope.own)
            scope = scope.parent
        return ChainMap(*maps)  # type: ignore[arg-type]

    def get(self, name: str, default: Any = None) -> Any:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.own:
                return scope.own[name]
            scope = scope.parent
        return default

    def __contains__(self, name: str) -> bool:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.own:
                return True
            scope = scope.parent
        return False

    def update(self, values: Mapping[str, Any]) -> None:
        self.own.update(values)

"""Parameter scopes: a map iteration or a branch sees its parent's values plus its own."""

from __future__ import annotations

from collections.abc import Mapping


class Scope:
    """Values set here shadow the parent's; only this scope's own values are merged back.

    Values are the steps' own: JSON parameters, but also objects returned by a step (a
    DataFrame, a model), so they are ``object``: traversal passes them on and a reader
    (a map's ``iterate_on``, a conditional's ``parameter``) checks what it needs.
    """

    __slots__ = ("env", "own", "parent")

    def __init__(
        self,
        parent: Scope | None = None,
        values: Mapping[str, object] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.parent = parent
        self.own: dict[str, object] = dict(values or {})
        #: Environment variables the steps in this scope see (a loop's ``index_as``).
        self.env: dict[str, str] = dict(env or {})

    def environment(self) -> dict[str, str]:
        """Every environment variable set by this scope and its parents, nearest winning."""
        chain: list[Scope] = []
        scope: Scope | None = self
        while scope is not None:
            if scope.env:
                chain.append(scope)
            scope = scope.parent
        out: dict[str, str] = {}
        for each in reversed(chain):
            out.update(each.env)
        return out

    def view(self) -> Mapping[str, object]:
        """Every visible value, nearest scope first: a flat copy of the names (the values
        are not copied), which a step looks up in one step rather than along the chain
        (a map item's step does so for each argument of its function)."""
        if self.parent is None:
            return dict(self.own)
        chain: list[dict[str, object]] = []
        scope: Scope | None = self
        while scope is not None:
            chain.append(scope.own)
            scope = scope.parent
        out: dict[str, object] = {}
        for own in reversed(chain):
            out.update(own)
        return out

    def get(self, name: str, default: object = None) -> object:
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

    def update(self, values: Mapping[str, object]) -> None:
        self.own.update(values)

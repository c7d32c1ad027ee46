"""Argo names: letters, digits and '-', short enough, unique, and stable across renders."""

from __future__ import annotations

import hashlib
import re

MAX_NAME = 60


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:6]


def sanitize(text: str, limit: int = MAX_NAME) -> str:
    """A valid name for ``text``; a stable hash suffix marks any change or shortening."""
    clean = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "x"
    if clean[0].isdigit():
        clean = "s-" + clean
    if clean == text and len(clean) <= limit:
        return clean
    head = clean[: limit - 7].rstrip("-")
    return f"{head}-{_digest(text)}"


class Namer:
    """Hands out unique names within one scope (a DAG's tasks, a workflow's templates)."""

    def __init__(self, reserved: tuple[str, ...] = ()) -> None:
        self.used: set[str] = set(reserved)

    def name(self, text: str, limit: int = MAX_NAME) -> str:
        candidate = sanitize(text, limit)
        if candidate in self.used:
            candidate = f"{candidate[: limit - 7].rstrip('-')}-{_digest('dup:' + text)}"
        self.used.add(candidate)
        return candidate

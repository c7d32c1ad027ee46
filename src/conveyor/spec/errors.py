"""Located validation problems, collected and reported together.

A user should never see a traceback for bad input: every problem found in a pipeline,
a config or a parameters file becomes an :class:`Issue` that says where it is (file,
line, YAML path), what was expected, what was found, and how to fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from conveyor.errors import ConveyorError

PathPart = str | int


def format_path(path: Sequence[PathPart]) -> str:
    """Render a YAML path as ``dag.steps."first step".next``."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
            continue
        text = part if part.isidentifier() else f'"{part}"'
        out.append(("." if out else "") + text)
    return "".join(out) or "<document>"


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest known name to ``word``, as a hint, or None."""
    import difflib  # only for a mistake: not every run's start-up

    match = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{match[0]}'?" if match else None


def describe(value: Any) -> str:
    """A short description of a found value: its text and its YAML type."""
    kinds = {
        dict: "mapping",
        list: "list",
        str: "string",
        bool: "boolean",
        int: "integer",
        float: "number",
        type(None): "null",
    }
    kind = kinds.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return f"a {kind}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


@dataclass(frozen=True)
class Issue:
    """One problem in an input file."""

    message: str
    path: tuple[PathPart, ...] = ()
    file: str | None = None
    line: int | None = None
    expected: str | None = None
    found: str | None = None
    hint: str | None = None

    def render(self) -> str:
        where = self.file or "<input>"
        if self.line is not None:
            where += f":{self.line}"
        lines = [f"{where}: {format_path(self.path)}: {self.message}"]
        if self.expected is not None or self.found is not None:
            lines.append(f"    expected {self.expected or '?'}, found {self.found or '?'}")
        if self.hint:
            lines.append(f"    hint: {self.hint}")
        return "\n".join(lines)


@dataclass
class SpecError(ConveyorError):
    """Every problem found in one input, reported together."""

    issues: list[Issue] = field(default_factory=list)
    title: str = "invalid input"

    def __str__(self) -> str:
        count = len(self.issues)
        head = f"{self.title}: {count} problem{'s' if count != 1 else ''}"
        return "\n".join([head, *(issue.render() for issue in self.issues)])

    def show(self) -> str:
        return str(self)


def sort_issues(issues: list[Issue]) -> list[Issue]:
    """Issues in file and line order, as a reader goes through the file."""
    return sorted(issues, key=lambda i: (i.file or "", i.line or 0))

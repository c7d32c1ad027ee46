"""One attempt's command as data: what it needs (picklable, for a child process or a Dask
worker) and what it gives back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from conveyor.jsontypes import JSONObject
from conveyor.spec.models import TaskNode


@dataclass
class StepRequest:
    """Everything one attempt needs, picklable so that a child process can run it."""

    node: TaskNode
    #: The step's parameters: JSON, and live objects returned by earlier steps.
    params: Mapping[str, object]
    path: list[str]
    run_id: str
    workdir: Path
    secrets: dict[str, str] = field(default_factory=dict)
    attempt: int = 1
    #: Environment variables of this step beyond the process's (a loop's ``index_as``).
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class CommandResult:
    """A command's outcome: its returned values, or an error; files to keep (a notebook)."""

    #: The returned values by name, as the command made them (any Python object).
    values: dict[str, object] = field(default_factory=dict)
    error: str | None = None
    exit_code: int | None = None
    #: Files made by the command to keep in the catalog (an executed notebook).
    artifacts: dict[str, bytes] = field(default_factory=dict)
    #: What the run log notes about how it ran (``mocked``, ``patched``), if anything.
    marks: JSONObject = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None

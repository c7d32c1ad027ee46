"""The Python SDK: build the same pipeline as the YAML format, from Python objects.

``Pipeline(steps=[...])`` chains its steps in order (each step's ``next`` is the one after
it; the last goes to success). What it builds is validated by the same models and checks as
YAML, and ``to_yaml()`` writes a file that runs identically.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from conveyor.spec.load import LoadedPipeline, pipeline_from_located
from conveyor.spec.yamlload import Located


def dotted_path(func: Callable[..., Any]) -> str:
    """The importable name of a function; a script's own functions get their module path."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError(f"{func!r} must be a module-level function so that it can be imported by name")
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if main_file:
            rel = Path(os.path.abspath(main_file)).relative_to(Path.cwd()) if _under_cwd(main_file) else None
            if rel is not None:
                module = ".".join(rel.with_suffix("").parts)
    return f"{module}.{qualname}"


def _under_cwd(path: str) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(Path.cwd())


class Step:
    """Common options of every step: its name and where a failure goes."""

    kind = "task"

    def __init__(self, name: str, on_failure: str | Pipeline | None = None, description: str | None = None):
        self.name = name
        self.on_failure = on_failure
        self.description = description

    def body(self) -> dict[str, Any]:
        return {}

    def to_dict(self, next_step: str | None) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        if self.description:
            out["description"] = self.description
        out.update(self.body())
        if next_step is not None:
            out["next"] = next_step
        if isinstance(self.on_failure, str):
            out["on_failure"] = self.on_failure
        elif isinstance(self.on_failure, Pipeline):
            out["on_failure"] = self.on_failure.steps[0].name
        return out


def _returns(returns: Sequence[str | dict[str, str]]) -> list[Any]:
    return [r if isinstance(r, str) else dict(r) for r in returns]


class _Task(Step):
    command_type = "python"

    def __init__(
        self,
        name: str,
        returns: Sequence[str | dict[str, str]] = (),
        catalog: dict[str, list[str]] | None = None,
        secrets: Sequence[str] = (),
        retry: dict[str, Any] | None = None,
        timeout_seconds: float | None = None,
        overrides: dict[str, dict[str, Any]] | None = None,
        on_failure: str | Pipeline | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(name, on_failure, description)
        self.options: dict[str, Any] = {
            "returns": _returns(returns),
            "catalog": catalog,
            "secrets": list(secrets),
            "retry": retry,
            "timeout_seconds": timeout_seconds,
            "overrides": overrides,
        }

    def command(self) -> str:
        raise NotImplementedError

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"command_type": self.command_type, "command": self.command()}
        out.update({k: v for k, v in self.options.items() if v not in (None, [], {})})
        return out


class PythonTask(_Task):
    """Calls ``function`` with the parameters named by its arguments."""

    def __init__(self, function: Callable[..., Any], name: str | None = None, **options: Any) -> None:
        super().__init__(name or function.__name__, **options)
        self.function = function

    def command(self) -> str:
        return dotted_path(self.function)


class ShellTask(_Task):
    """Runs ``command`` in bash; parameters are environment variables; returns are exports."""

    command_type = "shell"

    def __init__(self, command: str, name: str, **options: Any) -> None:
        super().__init__(name, **options)
        self.shell = command

    def command(self) -> str:
        return self.shell


class NotebookTask(_Task):
    """Executes a notebook with a parameters cell injected; returns are its variables."""

    command_type = "notebook"

    def __init__(self, notebook: str, name: str | None = None, **options: Any) -> None:
        super().__init__(name or Path(notebook).stem, **options)
        self.notebook = notebook

    def command(self) -> str:
        return self.notebook


class Stub(Step):
    """A placeholder step that succeeds."""

    kind = "stub"


class Success(Step):
    """Ends its graph in success."""

    kind = "success"


class Fail(Step):
    """Ends its graph in failure."""

    kind = "fail"


class Parallel(Step):
    """Branches that run at once."""

    kind = "parallel"

    def __init__(self, name: str, branches: dict[str, Pipeline], **kw: Any) -> None:
        super().__init__(name, **kw)
        self.branches = branches

    def body(self) -> dict[str, Any]:
        return {"branches": {k: v.graph() for k, v in self.branches.items()}}


class Map(Step):
    """A branch run once per item of a list parameter (or per partition of files)."""

    kind = "map"

    def __init__(
        self,
        name: str,
        iterate_on: str,
        iterate_as: str,
        branch: Pipeline,
        reducer: Callable[[list[Any]], Any] | str | None = None,
        max_parallelism: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(name, **kw)
        self.iterate_on, self.iterate_as, self.branch = iterate_on, iterate_as, branch
        self.reducer, self.max_parallelism = reducer, max_parallelism

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"iterate_on": self.iterate_on, "iterate_as": self.iterate_as}
        if self.max_parallelism is not None:
            out["max_parallelism"] = self.max_parallelism
        if self.reducer is not None:
            out["reducer"] = self.reducer if isinstance(self.reducer, str) else dotted_path(self.reducer)
        out["branch"] = self.branch.graph()
        return out


class Conditional(Step):
    """The branch keyed by a parameter's value."""

    kind = "conditional"

    def __init__(self, name: str, parameter: str, branches: dict[str, Pipeline], **kw: Any) -> None:
        super().__init__(name, **kw)
        self.parameter, self.branches = parameter, branches

    def body(self) -> dict[str, Any]:
        return {"parameter": self.parameter, "branches": {k: v.graph() for k, v in self.branches.items()}}


class Pipeline:
    """Steps chained in order; a step's ``on_failure`` may be another Pipeline (a handler)."""

    def __init__(self, steps: Sequence[Step], description: str | None = None, name: str = "pipeline") -> None:
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        self.steps = list(steps)
        self.description = description
        self.name = name

    def graph(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.description:
            out["description"] = self.description
        out["start_at"] = self.steps[0].name
        steps: dict[str, Any] = {}
        self._chain(self.steps, steps)
        out["steps"] = steps
        return out

    @staticmethod
    def _chain(chain: list[Step], steps: dict[str, Any]) -> None:
        for i, step in enumerate(chain):
            terminal = step.kind in {"success", "fail"}
            following = None if terminal else (chain[i + 1].name if i + 1 < len(chain) else "success")
            if step.name in steps:
                raise ValueError(f"two steps are named '{step.name}'; step names must be unique")
            steps[step.name] = step.to_dict(following)
            if isinstance(step.on_failure, Pipeline):
                Pipeline._chain(step.on_failure.steps, steps)

    def to_dict(self) -> dict[str, Any]:
        return {"dag": self.graph()}

    def load(self) -> LoadedPipeline:
        """Validate with the same checks as a YAML file (raises SpecError)."""
        return pipeline_from_located(Located(data=self.to_dict(), file=f"<sdk:{self.name}>"), self.name)

    def to_yaml(self, path: str | os.PathLike[str] | None = None) -> str:
        """YAML text of this pipeline (validated first); written to ``path`` if given."""
        self.load()
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

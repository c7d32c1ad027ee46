"""The Python SDK: build the same pipeline as the YAML format, from Python objects.

``Pipeline(steps=[...])`` chains its steps in order (each step's ``next`` is the one after
it; the last goes to success). What it builds is validated by the same models and checks as
YAML, and ``to_yaml()`` writes a file that runs identically.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypedDict

import yaml

from conveyor.spec.kindreg import type_of
from conveyor.spec.load import LoadedPipeline, pipeline_from_located
from conveyor.spec.models import (
    ConditionalNode,
    FailNode,
    LoopNode,
    MapNode,
    NodeBase,
    ParallelNode,
    StubNode,
    SuccessNode,
    TaskNode,
)
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
            parts = rel.with_suffix("").parts if rel is not None else ()
            if parts and all(p.isidentifier() for p in parts):
                module = ".".join(parts)
            else:
                # Not importable from here by its path (outside the working directory, or a
                # folder like `10-loop`): by its file's name, with its folder on the path.
                folder = os.path.dirname(os.path.abspath(main_file))
                if folder not in sys.path:
                    sys.path.insert(0, folder)
                module = Path(main_file).stem
    elif not all(part.isidentifier() for part in module.split(".")):
        module = _by_file_name(module)
    return f"{module}.{qualname}"


def _by_file_name(module: str) -> str:
    """A module imported by a name that is no dotted path (``examples.02-sequential.cond``,
    as ``importlib.import_module`` allows): named by its file's name instead, with its
    folder on the path (child processes get it too), and that name bound to the module
    already loaded, so that this process calls the very functions the script defined."""
    loaded = sys.modules.get(module)
    source = getattr(loaded, "__file__", None)
    stem = Path(source).stem if source else ""
    if loaded is None or not source or not stem.isidentifier():
        raise ValueError(f"module '{module}' has no dotted path; put its functions in a package")
    taken = sys.modules.get(stem)
    if taken is not None and taken is not loaded:
        raise ValueError(
            f"module '{module}' would be imported as '{stem}', which is another module here; "
            "rename the script or put its functions in a package"
        )
    folder = os.path.dirname(os.path.abspath(source))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    sys.modules[stem] = loaded
    return stem


def _under_cwd(path: str) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(Path.cwd())


class Step:
    """Common options of every step: its name, where a failure goes, and whether the chain
    ends after it (``terminate_with_success`` / ``terminate_with_failure``, as in runnable)."""

    #: The node model a step of this class becomes (its ``type`` and traits).
    model: type[NodeBase] = TaskNode
    #: The class ``as_pipeline`` builds: ``conveyor.sdk`` sets its own, which can execute.
    pipeline_class: type[Pipeline] | None = None

    def __init__(
        self,
        name: str,
        on_failure: str | Pipeline | None = None,
        description: str | None = None,
        terminate_with_success: bool = False,
        terminate_with_failure: bool = False,
    ):
        if terminate_with_success and terminate_with_failure:
            raise ValueError(f"step '{name}' cannot terminate with both success and failure")
        self.name = name
        self.on_failure = on_failure
        self.description = description
        self.terminate_with = (
            "success" if terminate_with_success else "fail" if terminate_with_failure else None
        )

    def as_pipeline(self) -> Pipeline:
        """This step alone, as a pipeline (runnable's ``task.as_pipeline()``)."""
        return (Step.pipeline_class or Pipeline)(steps=[self], name=self.name)

    def body(self) -> dict[str, object]:
        """The keys of this step's kind (``command``, ``branches``...), as the YAML format spells them."""
        return {}

    def to_dict(self, next_step: str | None) -> dict[str, object]:
        """The step as the YAML format writes it: plain data for the models to validate."""
        out: dict[str, object] = {"type": type_of(self.model)}
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


def pickled(name: str) -> dict[str, str]:
    """A return kept as a Python object (pickled into the catalog), not as JSON."""
    return {"name": name, "kind": "object"}


def metric(name: str) -> dict[str, str]:
    """A return recorded as a metric of the run (and passed on as a parameter)."""
    return {"name": name, "kind": "metric"}


def json(name: str) -> dict[str, str]:
    """A return kept as JSON: the default, spelled out."""
    return {"name": name, "kind": "json"}


class Catalog:
    """Files a task gets from the catalog before it runs, and puts there after.

    ``store_copy`` is accepted for runnable's pipelines; conveyor always stores a copy of a
    step's files (so a later step or resume reads what this one wrote), which is what
    ``True`` means there. A job honours ``False`` (see :class:`Job`).
    """

    def __init__(self, get: Sequence[str] = (), put: Sequence[str] = (), store_copy: bool = True) -> None:
        self.get, self.put, self.store_copy = list(get), list(put), store_copy

    def to_dict(self) -> dict[str, list[str]]:
        """The ``catalog`` section of a task, empty lists left out."""
        out: dict[str, list[str]] = {}
        if self.get:
            out["get"] = self.get
        if self.put:
            out["put"] = self.put
        return out


def _returns(returns: Sequence[str | Mapping[str, str]]) -> list[str | dict[str, str]]:
    return [r if isinstance(r, str) else dict(r) for r in returns]


class _Task(Step):
    command_type = "python"

    def __init__(
        self,
        name: str,
        returns: Sequence[str | Mapping[str, str]] = (),
        catalog: Catalog | Mapping[str, object] | None = None,
        secrets: Sequence[str] = (),
        retry: Mapping[str, object] | None = None,
        timeout_seconds: float | None = None,
        overrides: Mapping[str, Mapping[str, object] | str] | None = None,
        on_failure: str | Pipeline | None = None,
        description: str | None = None,
        terminate_with_success: bool = False,
        terminate_with_failure: bool = False,
        cache: bool | Mapping[str, object] | None = None,
    ) -> None:
        super().__init__(name, on_failure, description, terminate_with_success, terminate_with_failure)
        self.cache = cache
        self.options: dict[str, object] = {
            "returns": _returns(returns),
            "catalog": catalog.to_dict() if isinstance(catalog, Catalog) else catalog,
            "secrets": list(secrets),
            "retry": retry,
            "timeout_seconds": timeout_seconds,
            "overrides": overrides,
        }

    def command(self) -> str:
        raise NotImplementedError

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"command_type": self.command_type, "command": self.command()}
        out.update({k: v for k, v in self.options.items() if v not in (None, [], {})})
        if self.cache is not None:
            out["cache"] = self.cache
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
    """A placeholder step that succeeds; any other keywords are kept, unchecked (the
    command or returns the step will have), as the YAML format's stubs keep them."""

    model: type[NodeBase] = StubNode
    STEP_OPTIONS = ("on_failure", "description", "terminate_with_success", "terminate_with_failure")

    def __init__(self, name: str, **extra: Any) -> None:
        super().__init__(name, **{k: extra.pop(k) for k in self.STEP_OPTIONS if k in extra})
        catalog = extra.get("catalog")
        if isinstance(catalog, Catalog):
            extra["catalog"] = catalog.to_dict()
        self.extra = extra

    def body(self) -> dict[str, object]:
        return dict(self.extra)


class Success(Step):
    """Ends its graph in success."""

    model: type[NodeBase] = SuccessNode

    def __init__(self, name: str = "success", **kw: Any) -> None:
        super().__init__(name, **kw)


class Fail(Step):
    """Ends its graph in failure."""

    model: type[NodeBase] = FailNode

    def __init__(self, name: str = "fail", **kw: Any) -> None:
        super().__init__(name, **kw)


class Parallel(Step):
    """Branches that run at once."""

    model: type[NodeBase] = ParallelNode

    def __init__(self, name: str, branches: dict[str, Pipeline], **kw: Any) -> None:
        super().__init__(name, **kw)
        self.branches = branches

    def body(self) -> dict[str, object]:
        return {"branches": {k: v.graph() for k, v in self.branches.items()}}


class Map(Step):
    """A branch run once per item of a list parameter (or per partition of files)."""

    model: type[NodeBase] = MapNode

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

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {"iterate_on": self.iterate_on, "iterate_as": self.iterate_as}
        if self.max_parallelism is not None:
            out["max_parallelism"] = self.max_parallelism
        if self.reducer is not None:
            out["reducer"] = self.reducer if isinstance(self.reducer, str) else dotted_path(self.reducer)
        out["branch"] = self.branch.graph()
        return out


class Loop(Step):
    """The branch again and again until the boolean parameter ``break_on`` is true, at most
    ``max_iterations`` times; each iteration sees its index as ``index_as`` (a parameter and
    an environment variable)."""

    model: type[NodeBase] = LoopNode

    def __init__(
        self,
        name: str,
        branch: Pipeline,
        max_iterations: int,
        break_on: str,
        index_as: str,
        on_max_iterations: str = "succeed",
        **kw: Any,
    ) -> None:
        super().__init__(name, **kw)
        self.branch, self.max_iterations = branch, max_iterations
        self.break_on, self.index_as, self.on_max_iterations = break_on, index_as, on_max_iterations

    def body(self) -> dict[str, object]:
        out: dict[str, object] = {
            "max_iterations": self.max_iterations,
            "break_on": self.break_on,
            "index_as": self.index_as,
        }
        if self.on_max_iterations != "succeed":
            out["on_max_iterations"] = self.on_max_iterations
        out["branch"] = self.branch.graph()
        return out


class Conditional(Step):
    """The branch keyed by a parameter's value."""

    model: type[NodeBase] = ConditionalNode

    def __init__(self, name: str, parameter: str, branches: dict[str, Pipeline], **kw: Any) -> None:
        super().__init__(name, **kw)
        self.parameter, self.branches = parameter, branches

    def body(self) -> dict[str, object]:
        return {"parameter": self.parameter, "branches": {k: v.graph() for k, v in self.branches.items()}}


class Pipeline:
    """Steps chained in order; a step's ``on_failure`` may be another Pipeline (a handler)."""

    def __init__(
        self,
        steps: Sequence[Step],
        description: str | None = None,
        name: str = "pipeline",
        cache: bool | Mapping[str, object] | None = None,
    ) -> None:
        if not steps:
            raise ValueError("a pipeline needs at least one step")
        self.steps = list(steps)
        self.description = description
        self.name = name or "pipeline"
        #: The caching of every task that does not say otherwise (``dag: {cache: ...}``).
        self.cache = cache

    def graph(self) -> dict[str, object]:
        """The graph (``start_at``, ``steps``) as the YAML format writes it."""
        out: dict[str, object] = {}
        if self.description:
            out["description"] = self.description
        out["start_at"] = self.steps[0].name
        steps: dict[str, object] = {}
        self._chain(self.steps, steps)
        out["steps"] = steps
        return out

    @staticmethod
    def _chain(chain: list[Step], steps: dict[str, object]) -> None:
        for i, step in enumerate(chain):
            terminal = step.model.ends is not None
            following = (
                None
                if terminal
                else step.terminate_with or (chain[i + 1].name if i + 1 < len(chain) else "success")
            )
            if step.name in steps:
                raise ValueError(f"two steps are named '{step.name}'; step names must be unique")
            steps[step.name] = step.to_dict(following)
            if isinstance(step.on_failure, Pipeline):
                Pipeline._chain(step.on_failure.steps, steps)

    def to_dict(self) -> dict[str, object]:
        """The whole pipeline (``dag: ...``) as the YAML format writes it."""
        dag = self.graph()
        if self.cache is not None:
            dag["cache"] = self.cache
        return {"dag": dag}

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


class AsyncPythonTask(PythonTask):
    """runnable's task for an ``async def`` function. conveyor awaits a coroutine in the
    step that calls it (whatever the task's class), so this is a PythonTask under
    runnable's name and keywords (``AsyncPythonTask(name=..., function=..., returns=[...])``)."""

    def __init__(self, name: str, function: Callable[..., Any], **options: Any) -> None:
        super().__init__(function, name, **options)


class _JobOptions(TypedDict):
    """The task options a job passes on to the one task it runs."""

    returns: list[str | Mapping[str, str]]
    catalog: Catalog | None
    secrets: list[str]


class Job:
    """One task run on its own (runnable's jobs): in conveyor, a pipeline of that one task,
    run and recorded as any pipeline is, so that ``runs show`` and the catalog see it.

    A job's catalog only puts: nothing ran before it to have put what it would get. With
    ``Catalog(store_copy=False)`` the files are recorded with their size and hash but not
    copied into the catalog (no later step of a job reads them back).
    """

    def __init__(
        self,
        returns: Sequence[str | Mapping[str, str]] = (),
        catalog: Catalog | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        if catalog is not None and catalog.get:
            raise ValueError(
                f"a job cannot get files from the catalog (found get={catalog.get}): nothing ran "
                "before it to put them there. Use a pipeline step, or leave get out"
            )
        self.returns, self.catalog, self.secrets = list(returns), catalog, list(secrets)

    @property
    def store_copy(self) -> bool:
        """Whether the files the job puts are copied into the catalog (runnable's default: yes)."""
        return self.catalog is None or self.catalog.store_copy

    def _options(self) -> _JobOptions:
        return {"returns": self.returns, "catalog": self.catalog, "secrets": self.secrets}

    def task(self) -> _Task:
        """The one step this job runs."""
        raise NotImplementedError

    def as_pipeline(self) -> Pipeline:
        """The pipeline of this job's one task (conveyor's SDK gives it ``execute()``)."""
        task = self.task()
        return (Step.pipeline_class or Pipeline)(steps=[task], name=task.name)


class PythonJob(Job):
    """Calls ``function`` once, with the parameters named by its arguments."""

    def __init__(self, function: Callable[..., Any], **options: Any) -> None:
        super().__init__(**options)
        self.function = function

    def task(self) -> _Task:
        return PythonTask(self.function, **self._options())


class NotebookJob(Job):
    """Executes ``notebook`` once, with a parameters cell injected; returns are its variables.
    ``optional_ploomber_args`` is accepted for runnable's scripts and must be empty: conveyor
    executes notebooks itself."""

    def __init__(
        self, notebook: str, optional_ploomber_args: Mapping[str, object] | None = None, **options: Any
    ) -> None:
        if optional_ploomber_args:
            raise ValueError(
                f"optional_ploomber_args={optional_ploomber_args!r} is not supported: conveyor "
                "executes notebooks itself (with nbclient), not with ploomber-engine"
            )
        super().__init__(**options)
        self.notebook = notebook

    def task(self) -> _Task:
        return NotebookTask(self.notebook, **self._options())


class ShellJob(Job):
    """Runs ``command`` once in bash; parameters are environment variables, returns are exports."""

    def __init__(self, command: str, name: str = "shell", **options: Any) -> None:
        super().__init__(**options)
        self.command, self.name = command, name

    def task(self) -> _Task:
        return ShellTask(self.command, self.name, **self._options())

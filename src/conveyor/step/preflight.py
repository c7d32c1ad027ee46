"""Mistakes in a pipeline's code references, found before anything runs.

A typo in a function's name, a missing module or notebook, or a function argument that no
parameter will ever fill shows at run time only when its step is reached, after the steps
before it have run (and maybe for hours). ``conveyor validate`` and ``conveyor execute``
ask here first:

- each python task's function and each map's reducer is imported by the resolution the
  run uses (:func:`conveyor.step.params.resolve_callable`, with the pipeline's folder and
  the working directory on the path as a run puts them);
- a notebook, and a shell command's script named by a relative path, must exist;
- each argument a function requires must be reachable: an initial parameter, the
  ``returns`` of a step that may run before (along ``next`` and ``on_failure``, nested
  steps of earlier composites included), a map's ``iterate_as`` or a loop's ``index_as``
  around it. What may reach a step is over-approximated, never under, and a step that
  may never run (a failure handler, a conditional's branch) gets a note rather than an
  error: a pipeline that can run is never refused.

Nothing here runs a step; importing a module runs its top-level code, as the run would.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conveyor.spec.errors import Issue, PathPart, SpecError, did_you_mean, sort_issues
from conveyor.spec.load import LoadedPipeline
from conveyor.spec.models import ConditionalNode, Graph, LoopNode, MapNode, NodeBase, TaskNode, returned_names
from conveyor.spec.yamlload import Located, load_yaml_file
from conveyor.step.params import StepInputError, resolve_callable

#: Commands whose first argument is the script they run (``bash run.sh``, ``python x.py``).
SCRIPT_RUNNERS = frozenset({"bash", "sh", "zsh", "dash", "source", ".", "python", "python3", "Rscript"})
#: Characters that make a shell word something else than a plain path at check time.
SHELL_MAGIC = set("$`*?[]{}~")
#: At most this many names are listed in a message.
LISTED = 12
#: Up to this many steps, messages list every parameter that may reach a step.
FULL_NAMES_UP_TO = 1000


def add_code_paths(pipeline_file: str | None, workdir: Path) -> None:
    """Put where a run finds functions on ``sys.path``: next to the pipeline file and the
    working directory (the same places, in the same order, as a run's driver does)."""
    folder = os.path.dirname(os.path.abspath(pipeline_file)) if pipeline_file else ""
    for place in (folder, str(workdir)):
        if place and place not in sys.path:
            sys.path.insert(0, place)


@dataclass
class Report:
    """What the checks found: errors (the run would fail) and notes (it may, depending on
    parameters not given here)."""

    issues: list[Issue] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def raise_errors(self) -> None:
        if self.issues:
            raise SpecError(sort_issues(self.issues), "the pipeline cannot run as written")


@dataclass
class _Task:
    """A python task whose function was found: where it is and the arguments it needs."""

    path: tuple[PathPart, ...]
    step: str
    command: str
    required: list[str]


def required_arguments(func: Callable[..., Any]) -> list[str] | None:
    """The arguments ``func`` cannot be called without, by name (as the run binds them:
    ``*args`` and ``**kwargs`` take what they are given and need nothing); None when its
    signature cannot be read (some builtins)."""
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    return [
        name
        for name, param in signature.parameters.items()
        if param.kind not in (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
        and param.default is inspect.Parameter.empty
    ]


def _step_name(path: tuple[PathPart, ...]) -> str:
    """``dag.steps.both.branches.one.steps.work`` as a step path: ``both/one/work`` (a map's
    or loop's item index is left out: ``fan.branch.steps.work`` is ``fan/work``)."""
    names = [str(path[i + 1]) for i, part in enumerate(path[:-1]) if part in ("steps", "branches")]
    return "/".join(names)


def _walk(graph: Graph, path: tuple[PathPart, ...]) -> Iterator[tuple[tuple[PathPart, ...], NodeBase]]:
    for name, node in graph.steps.items():
        here = (*path, "steps", name)
        yield here, node
        branches = getattr(node, "branches", None)
        if isinstance(branches, dict):
            for key, branch in branches.items():
                yield from _walk(branch, (*here, "branches", key))
        elif isinstance(node, MapNode | LoopNode):
            yield from _walk(node.branch, (*here, "branch"))


def _order(graph: Graph) -> list[str]:
    """The steps reached from ``start_at``, each after every step that leads to it (the
    graph has no loops: validation refuses them)."""
    reached, todo = {graph.start_at}, [graph.start_at]
    while todo:
        node = graph.steps.get(todo.pop())
        for target in (node.following(True), node.following(False)) if node else ():
            if target in graph.steps and target not in reached:
                reached.add(target)
                todo.append(target)
    waiting = dict.fromkeys(reached, 0)
    for name in reached:
        for target in {graph.steps[name].following(True), graph.steps[name].following(False)}:
            if target in waiting:
                waiting[target] += 1
    ready = [name for name in graph.steps if name in reached and waiting[name] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for target in {graph.steps[name].following(True), graph.steps[name].following(False)}:
            if target in waiting:
                waiting[target] -= 1
                if waiting[target] == 0:
                    ready.append(target)
    return order + [name for name in graph.steps if name in reached and name not in order]


def _gives(node: NodeBase) -> set[str]:
    """The names a node may add to its graph's parameters once it has run."""
    names = set(node.returned())
    for sub in node.subgraphs():
        names.update(returned_names(sub))
    if isinstance(node, LoopNode):
        names.discard(node.index_as)  # an iteration's index is not carried out of the loop
    return names


class Preflight:
    """One check of one pipeline; :meth:`run` returns the :class:`Report`."""

    def __init__(
        self, loaded: LoadedPipeline, workdir: Path, parameters: Mapping[str, object], known: bool
    ) -> None:
        self.loaded = loaded
        self.workdir = workdir
        self.parameters = parameters
        self.known = known
        self.report = Report()
        self.tasks: dict[tuple[PathPart, ...], _Task] = {}
        self._located: Located | None = None

    # --- where ---------------------------------------------------------------------------

    def _issue(self, path: tuple[PathPart, ...], message: str, **kw: Any) -> Issue:
        if self._located is None:  # the file is read again for line numbers, once, if needed
            try:
                self._located = load_yaml_file(self.loaded.file) if self.loaded.file else None
            except (OSError, SpecError):
                self._located = None
            self._located = self._located or Located(data=None, file=self.loaded.file)
        return self._located.issue(path, message, **kw)

    # --- code ----------------------------------------------------------------------------

    def _resolve(self, dotted: str, path: tuple[PathPart, ...], what: str) -> Callable[..., Any] | None:
        module_name = dotted.rpartition(".")[0]
        try:
            return resolve_callable(dotted)
        except StepInputError as exc:
            module = sys.modules.get(module_name)
            attr = dotted[len(module_name) + 1 :]
            if module is not None and hasattr(module, attr):  # there, but not a function
                self.report.issues.append(
                    self._issue(
                        path,
                        f"{what} '{dotted}' is not a function",
                        found=type(getattr(module, attr)).__name__,
                    )
                )
            elif module is not None:  # the module imported: the name in it is wrong
                names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
                self.report.issues.append(
                    self._issue(
                        path,
                        f"{what} '{dotted}' does not exist: module '{module_name}' has no '{attr}'",
                        expected=f"a function of {module_name}",
                        found=f"'{attr}'",
                        hint=did_you_mean(attr, names)
                        or ("its functions: " + ", ".join(sorted(names)[:LISTED]) if names else None),
                    )
                )
            else:
                self.report.issues.append(
                    self._issue(
                        path,
                        f"{what} '{dotted}' cannot be imported: {exc}",
                        hint="modules are found next to the pipeline file, in the working directory "
                        "and on PYTHONPATH; use --no-import to validate without the code",
                    )
                )
        except (Exception, SystemExit) as exc:  # the module's own code failed while importing
            self.report.issues.append(
                self._issue(
                    path,
                    f"importing '{module_name}' for {what} '{dotted}' failed: {type(exc).__name__}: {exc}",
                    hint="run python -c 'import " + module_name + "' to see the traceback",
                )
            )
        return None

    def _file(self, node: TaskNode, path: tuple[PathPart, ...], relative: str, what: str) -> None:
        if os.path.isabs(relative) or (self.workdir / relative).exists():
            return  # an absolute path may name a tool of the image the step runs in
        patterns = node.catalog.get if node.catalog else []
        if any(fnmatch.fnmatch(relative, p) for p in patterns):
            return  # fetched from the catalog before the step runs
        self.report.issues.append(
            self._issue(
                (*path, "command"),
                f"{what} '{relative}' does not exist",
                expected=f"a file under the working directory {self.workdir}",
                found="no such file",
                hint=did_you_mean(Path(relative).name, _nearby(self.workdir / relative)),
            )
        )

    def _task(self, node: TaskNode, path: tuple[PathPart, ...]) -> None:
        if node.command_type == "notebook":
            self._file(node, path, node.command, "notebook")
        elif node.command_type == "shell":
            script = script_of(node.command)
            if script is not None:
                self._file(node, path, script, "script")
        else:
            func = self._resolve(node.command, (*path, "command"), "function")
            required = required_arguments(func) if func is not None else None
            if required:
                self.tasks[path] = _Task(path, _step_name(path), node.command, required)

    def check_code(self) -> None:
        """Import every function and reducer; look for every notebook and script.

        Declared secrets are out of the environment meanwhile, as they are while a run
        imports its modules: a module's top-level code never sees a secret here that it
        would not see in the run."""
        nodes = list(_walk(self.loaded.pipeline.dag, ("dag",)))
        declared = {name for _, node in nodes for name in getattr(node, "secrets", [])}
        hidden = {name: os.environ.pop(name) for name in declared if name in os.environ}
        try:
            for path, node in nodes:
                if isinstance(node, TaskNode):
                    self._task(node, path)
                elif isinstance(node, MapNode) and node.reducer:
                    self._resolve(node.reducer, (*path, "reducer"), "reducer")
        finally:
            os.environ.update(hidden)

    # --- arguments -----------------------------------------------------------------------

    def _graph(
        self,
        graph: Graph,
        path: tuple[PathPart, ...],
        before: set[str],
        names: set[str] | None,
        visit: Callable[[_Task, set[str], bool], None],
        certain: bool = True,
    ) -> None:
        """Visit each python task of ``graph`` with the names that may be set when it starts
        (of ``names`` only, when given: sets stay small in long chains), and whether it is
        on the path a run takes when all goes well (not a failure handler, not inside a
        conditional's branch, which may never run)."""
        arriving: dict[str, set[str]] = {}
        planned = _planned(graph) if certain else set()
        for name in _order(graph):
            node = graph.steps[name]
            here = (*path, "steps", name)
            available = before | arriving.get(name, set())
            task = self.tasks.get(here)
            if task is not None:
                visit(task, available, name in planned)
            inner = set(available)
            if isinstance(node, MapNode):
                inner.add(node.iterate_as)
            elif isinstance(node, LoopNode):
                inner.add(node.index_as)
            runs = name in planned and not isinstance(node, ConditionalNode)
            for sub, key in _inner(node, here):
                self._graph(sub, key, inner, names, visit, runs)
            gives = _gives(node)
            after = available | (gives if names is None else gives & names)
            for target in {node.following(True), node.following(False)}:
                if target in graph.steps:
                    arriving.setdefault(target, set()).update(after)

    def check_arguments(self) -> None:
        """Every required argument against what may reach its step: first with the names
        some function needs only; then, if any is missing, again with more names for the
        messages (what is there, what is close): every name, unless the pipeline is so
        large that carrying them all down every chain would take long.

        A step that may never run (a failure handler, a conditional's branch) gets a note,
        not an error: a run that never goes there succeeds."""
        needed = {name for task in self.tasks.values() for name in task.required}
        if not needed:
            return
        missing: dict[tuple[PathPart, ...], list[str]] = {}

        def find(task: _Task, available: set[str], certain: bool) -> None:
            lacking = [name for name in task.required if name not in available]
            if not lacking:
                return
            if self.known and certain:
                missing[task.path] = lacking
                return
            for name in lacking:
                then = (
                    "a run that takes this path fails there"
                    if self.known
                    else f"give it with -p or CONVEYOR_PRM_{name} when running"
                )
                self.report.notes.append(
                    f"step '{task.step}': function '{task.command}' needs parameter '{name}', "
                    f"which no earlier step returns: {then}"
                )

        initial = set(self.parameters)
        dag = self.loaded.pipeline.dag
        self._graph(dag, ("dag",), initial, needed, find)
        if not missing:
            return
        nodes = list(_walk(dag, ("dag",)))
        providers: dict[str, list[str]] = {}
        scoped: dict[str, list[str]] = {}
        for path, node in nodes:
            for name in node.returned():
                providers.setdefault(name, []).append(_step_name(path))
            for attr in ("iterate_as", "index_as"):
                if isinstance(getattr(node, attr, None), str):
                    scoped.setdefault(getattr(node, attr), []).append(_step_name(path))
        names: set[str] | None = None
        if len(nodes) > FULL_NAMES_UP_TO:
            import difflib  # only for a pipeline this large, with names missing

            absent = {name for each in missing.values() for name in each}
            known = set(providers) | set(scoped)
            names = needed | {c for n in absent for c in difflib.get_close_matches(n, known, n=3)}

        def report(task: _Task, available: set[str], certain: bool) -> None:
            for name in missing.get(task.path, []):
                where = providers.get(name, []), scoped.get(name, [])
                self.report.issues.append(self._missing(task, name, available, where, names is None))

        self._graph(dag, ("dag",), initial, names, report)

    def _parameters_beside(self) -> str | None:
        """A parameters file beside the pipeline (``params.yaml``, as the examples keep theirs)
        when no parameters were given: the hint names it, as the command would take it."""
        if self.parameters or not self.loaded.file:
            return None
        found = Path(self.loaded.file).parent / "params.yaml"
        if not found.is_file():
            return None
        try:
            return str(found.relative_to(self.workdir))
        except ValueError:
            return str(found)

    def _missing(
        self,
        task: _Task,
        name: str,
        available: set[str],
        where: tuple[list[str], list[str]],
        complete: bool,
    ) -> Issue:
        providers, scoped = where
        hints = []
        close = did_you_mean(name, available)
        if close:
            hints.append(close)
        if providers:
            listed = ", ".join(f"'{p}'" for p in providers[:LISTED])
            hints.append(
                f"{listed} return{'s' if len(providers) == 1 else ''} it but may not run before this step"
            )
        if scoped:
            hints.append(f"'{scoped[0]}' sets it only inside its own branch")
        beside = self._parameters_beside()
        given = f"-p {beside}" if beside else "-p params.yaml"
        hints.append(f"give it with {given} or CONVEYOR_PRM_{name}, or return it from an earlier step")
        shown = sorted(available)
        found = ", ".join(shown[:LISTED]) + (", ..." if len(shown) > LISTED else "") if shown else "none"
        return self._issue(
            (*task.path, "command"),
            f"function '{task.command}' needs parameter '{name}', "
            f"which nothing sets before step '{task.step}'",
            expected=f"'{name}' among the parameters that reach the step",
            found=f"parameters here{'' if complete else ' (of those functions need, or close)'}: {found}",
            hint="; ".join(hints),
        )

    def run(self) -> Report:
        self.check_code()
        self.check_arguments()
        return self.report


def _planned(graph: Graph) -> set[str]:
    """The steps of ``graph`` reached from ``start_at`` by ``next`` alone."""
    planned: set[str] = set()
    name: str | None = graph.start_at
    while name in graph.steps and name not in planned:
        planned.add(name)
        name = graph.steps[name].following(True)
    return planned


def _inner(node: NodeBase, here: tuple[PathPart, ...]) -> Iterator[tuple[Graph, tuple[PathPart, ...]]]:
    branches = getattr(node, "branches", None)
    if isinstance(branches, dict):
        for key, branch in branches.items():
            yield branch, (*here, "branches", key)
    elif isinstance(node, MapNode | LoopNode):
        yield node.branch, (*here, "branch")


def _nearby(path: Path) -> list[str]:
    """The names of the files beside where ``path`` should be, for "did you mean"."""
    try:
        return [p.name for p in path.parent.iterdir()]
    except OSError:
        return []


def script_of(command: str) -> str | None:
    """The script a shell command runs by a relative path (``./run.sh``, ``bash x.sh``,
    ``python tools/y.py``), or None: a program from PATH, an absolute path, an inline
    ``python -c``, or a word the shell expands cannot be checked before the run."""
    import shlex  # shell commands only

    line = command.strip().splitlines()[0] if command.strip() else ""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return None
    while words and "=" in words[0] and words[0].split("=", 1)[0].isidentifier():
        words = words[1:]  # VAR=value before the command
    if not words:
        return None
    first = words[0]
    if first in SCRIPT_RUNNERS:
        candidate = words[1] if len(words) > 1 else None
        if candidate is None or candidate.startswith("-"):
            return None
    elif "/" in first:
        candidate = first
    else:
        return None
    if SHELL_MAGIC & set(candidate) or os.path.isabs(candidate):
        return None
    return candidate


def preflight(
    loaded: LoadedPipeline, parameters: Mapping[str, object], known: bool = True, workdir: Path | None = None
) -> Report:
    """Check a pipeline's code references before it runs (see the module's docstring).
    With ``known`` False the initial parameters are not all known here (``validate``
    without ``-p``): arguments nothing sets are notes, not errors."""
    where = workdir or Path.cwd()
    add_code_paths(loaded.file, where)
    return Preflight(loaded, where, parameters, known).run()

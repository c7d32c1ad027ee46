"""The mocked executor: walk a pipeline without running its tasks, to test its topology.

``executor: {type: mocked, config: {patches: {STEP: {command: ...}}}}`` (runnable's
spelling). Every node runs as usual (composites, ``on_failure`` paths, conditionals), but a
task's command is not run: the task succeeds, and its returns are the values the parameters
already hold for those names (the initial parameters), so that what follows can choose and
iterate. A patched task runs its patch instead: ``command: exit 1`` (with ``command_type:
shell``, implied on a python step when the command is not a dotted path) makes it fail, to
walk an ``on_failure`` path without running anything else.

Patches are keyed by step name, or by a step path (``fan/0/work``) to patch one place only.
Runs are recorded like any other; each step's record says whether it was mocked or patched.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from pydantic import ValidationError

from conveyor.executors.base import Executor
from conveyor.executors.jobs import ThreadJobs
from conveyor.graph.kinds.base import Job
from conveyor.spec.errors import Issue, SpecError, did_you_mean
from conveyor.spec.models import Graph, TaskNode
from conveyor.spec.validate import DOTTED
from conveyor.step.capture import Sink
from conveyor.step.launch import in_process
from conveyor.step.request import CommandResult, StepRequest

#: The keys of a task a patch may replace.
PATCHABLE = ("command", "command_type", "returns", "catalog", "secrets", "timeout_seconds")


class MockedExecutor(Executor):
    """Jobs on threads as the local executor; tasks mocked, or run as patched."""

    isolation = "thread"

    def __init__(self, patches: Mapping[str, object] | None = None, max_workers: int | None = None) -> None:
        #: Each step's patch: task fields (``PATCHABLE``) as the config gives them, checked
        #: by the task model when the patched step runs.
        self.patches: dict[str, dict[str, object]] = {}
        for step, patch in (patches or {}).items():
            if not isinstance(patch, dict):
                raise ValueError(f"the patch of '{step}' must be a mapping like {{command: ...}}")
            for key in patch:
                if key not in PATCHABLE:
                    hint = did_you_mean(key, PATCHABLE) or f"a patch replaces {', '.join(PATCHABLE)}"
                    raise ValueError(f"the patch of '{step}' cannot set '{key}'; {hint}")
            self.patches[step] = patch
        self.max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self.stream_output = True
        self._jobs = ThreadJobs(self.max_workers)

    def run_jobs(self, jobs: Iterable[Job], count: int, limit: int | None) -> list[bool]:
        return self._jobs.run_jobs(jobs, count, limit)

    def patch_for(self, path: list[str]) -> dict[str, object] | None:
        """The patch of the step at ``path``: by its whole path, else by its name."""
        return self.patches.get("/".join(path), self.patches.get(path[-1]))

    def launch(self, request: StepRequest, timeout: float | None, sink: Sink) -> CommandResult:
        patch = self.patch_for(request.path)
        if patch is None:
            sink.write("conveyor: mocked: the command was not run\n")
            names = [r.name for r in request.node.returns]
            values = {name: request.params[name] for name in names if name in request.params}
            return CommandResult(values=values, marks={"mocked": True})
        given = ", ".join(sorted(patch))
        patch = dict(patch)
        command = patch.get("command")
        python = "command_type" not in patch and request.node.command_type == "python"
        if python and isinstance(command, str) and not DOTTED.match(command):
            patch["command_type"] = "shell"  # `command: exit 1` on a python step: a shell line
        try:
            node = TaskNode.model_validate({**request.node.model_dump(exclude_unset=True), **patch})
        except ValidationError as exc:
            return CommandResult(error=f"the patch of '{request.path[-1]}' is not a valid task: {exc}")
        sink.write(f"conveyor: patched: {given}\n")
        result = in_process(replace(request, node=node), timeout, sink)
        result.marks = {"patched": given}
        return result

    def close(self) -> None:
        pass


def check_patches(patches: Mapping[str, object], dag: Graph) -> None:
    """Every patch names a task of ``dag``, by name or by path: a patch naming nothing would
    otherwise be ignored and the task it was meant for run mocked, silently. SpecError with
    one located issue per patch that names no task."""
    tasks: set[str] = set()
    parts: set[str] = set()
    for name, node, labels in _named(dag):
        parts.update((name, *labels))
        if isinstance(node, TaskNode):
            tasks.add(name)
    issues = []
    for key in patches:
        *inner, last = str(key).split("/")
        if last in tasks and all(p in parts or (p.isascii() and p.isdigit()) for p in inner):
            continue
        unknown = next((p for p in inner if p not in parts and not (p.isascii() and p.isdigit())), None)
        if last in tasks and unknown is not None:
            what = f"the patch '{key}' goes through '{unknown}', which is no step of the pipeline"
            hint = did_you_mean(unknown, sorted(parts)) or f"steps: {', '.join(sorted(parts))}"
        elif last in parts:
            what, hint = f"the patch '{key}' names '{last}', a step that is not a task", None
        else:
            what, hint = f"the patch '{key}' names no task of the pipeline", did_you_mean(last, sorted(tasks))
        issues.append(
            Issue(
                what,
                path=("executor", "config", "patches", str(key)),
                expected="a task's name, or its path (parts joined by '/', map items by index)",
                found=repr(key),
                hint=hint or f"tasks: {', '.join(sorted(tasks)) or 'none'}",
            )
        )
    if issues:
        raise SpecError(issues, "invalid config")


def _named(graph: Graph) -> Iterator[tuple[str, Any, list[str]]]:
    """(name, node, the path parts entering its inner graphs) for every step, nested ones too."""
    for name, node in graph.steps.items():
        inner = node.named_subgraphs()
        yield name, node, list(inner)
        for sub in inner.values():
            yield from _named(sub)

"""What Kubernetes and Argo refuse, found before a manifest is rendered or submitted.

A pod whose environment variable name or image Kubernetes refuses fails only once the
workflow runs (the API server rejects the pod, or the kubelet cannot pull ``Foo Bar:1``); a
``{{`` in a step name or branch key is substituted by Argo before the pod starts, so the pod
records its step under another path than the run log's. A step naming an override its
config does not define (``overrides: {argo: smaller}``) would silently get the default pod.
Each is refused here, located in the file it came from.
"""

from __future__ import annotations

from collections.abc import Iterator
from difflib import get_close_matches

from pydantic import ValidationError

from conveyor.executors.argo.config import ArgoConfig, PodSettings, with_overrides
from conveyor.executors.argo.k8s import env_name_problem, quantity
from conveyor.spec.errors import Issue, PathPart, SpecError
from conveyor.spec.load import LoadedPipeline
from conveyor.spec.models import Graph, TaskNode
from conveyor.spec.yamlload import Located, load_yaml_file

#: Argo's template delimiters: text between them is replaced before a pod starts.
BRACES = ("{{", "}}")


def braces_problem(text: str) -> bool:
    """Whether ``text`` holds Argo's template delimiters."""
    return any(b in text for b in BRACES)


def _lines(loaded: LoadedPipeline) -> Located:
    """The pipeline's YAML with the line of each path (no lines for a pipeline from text)."""
    if loaded.file:
        try:
            return load_yaml_file(loaded.file)
        except (OSError, SpecError):
            pass
    return Located(data=None, file=loaded.file)


def _braces(located: Located, path: tuple[PathPart, ...], what: str, name: str) -> Issue:
    return located.issue(
        path,
        f"{what} '{name}' holds '{{{{' or '}}}}', which Argo replaces before the pod starts",
        expected=f"a {what} without '{{{{' and '}}}}' for a pipeline rendered to Argo",
        found=repr(name),
        hint="rename it, e.g. with '(' and ')' instead of braces",
    )


EXPECTED = {
    "image": ("an image reference, [registry[:port]/]name[:tag][@digest]", "e.g. ghcr.io/org/image:1.0"),
    "env_name": ("a name matching [-._a-zA-Z][-._a-zA-Z0-9]*", "e.g. MY_VAR instead of 'my var'"),
}


def _named_issue(
    located: Located, name: str, path: tuple[PathPart, ...], config: ArgoConfig | None
) -> Iterator[Issue]:
    """``overrides: {argo: NAME}`` where the config defines no override NAME."""
    if config is None or name in config.overrides:
        return
    defined = sorted(config.overrides)
    close = get_close_matches(name, defined, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    hint += f"or define it in the config: executor.config.overrides.{name}: {{resources: ...}}"
    yield located.issue(
        (*path, "overrides", "argo"),
        f"the override '{name}' is not defined in the argo executor's config",
        expected="a name under executor.config.overrides: "
        + (", ".join(repr(d) for d in defined) if defined else "(the config defines none)"),
        found=repr(name),
        hint=hint,
    )


def _request_issues(located: Located, pod: ArgoConfig, path: tuple[PathPart, ...]) -> Iterator[Issue]:
    """Kubernetes refuses a pod whose request of a resource is above its limit: an override
    that replaces the defaults' limits can make one out of the defaults' requests."""
    resources = pod.resources
    if resources is None:
        return
    for name, limit in resources.limits.items():
        request = resources.requests.get(name)
        wanted, allowed = quantity(request or ""), quantity(limit)
        if request is None or wanted is None or allowed is None or wanted <= allowed:
            continue
        yield located.issue(
            (*path, "overrides", "argo"),
            f"the step's pod would request {name} {request} with a limit of {limit}, "
            "which Kubernetes refuses",
            expected=f"requests.{name} at most limits.{name}",
            found=f"requests.{name}: {request}, limits.{name}: {limit}",
            hint=f"set resources.requests.{name} in the override too (an override's limits and "
            "requests each replace the defaults' whole)",
        )


def _override_issues(
    located: Located, node: TaskNode, path: tuple[PathPart, ...], config: ArgoConfig | None = None
) -> Iterator[Issue]:
    """A step's ``overrides.argo``, checked by the model the renderer builds it with; a bad
    environment variable name is pointed at by its own key. A name must be one the config
    defines (checked when the config is known)."""
    settings = node.overrides.get("argo")
    if settings is None:
        return
    if isinstance(settings, str):
        yield from _named_issue(located, settings, path, config)
        if config is not None and settings in config.overrides:
            yield from _request_issues(located, with_overrides(config, config.overrides[settings]), path)
        return
    try:
        model = PodSettings.model_validate(settings)
        if config is not None:
            yield from _request_issues(located, with_overrides(config, model), path)
    except ValidationError as exc:
        for err in exc.errors():
            where = (*path, "overrides", "argo", *(p for p in err["loc"] if isinstance(p, str | int)))
            expected, hint = EXPECTED.get(err["type"], ("a pod setting the argo executor takes", None))
            if err["type"] == "env_name" and isinstance(err.get("input"), dict):
                for name in err["input"]:
                    problem = env_name_problem(str(name))
                    if problem:
                        yield located.issue(
                            (*where, name), problem, expected=expected, found=repr(name), hint=hint
                        )
                continue
            message = err["msg"] if err["type"] != "extra_forbidden" else f"unknown key '{where[-1]}'"
            yield located.issue(
                where, message, expected=expected, found=repr(err.get("input"))[:60], hint=hint
            )


def _graph_issues(
    located: Located, graph: Graph, path: tuple[PathPart, ...], config: ArgoConfig | None
) -> Iterator[Issue]:
    for name, node in graph.steps.items():
        here = (*path, "steps", name)
        if braces_problem(name):
            yield _braces(located, here, "step name", name)
        if isinstance(node, TaskNode):
            yield from _override_issues(located, node, here, config)
        for field, holds in node.subgraph_fields.items():
            value = getattr(node, field)
            if holds == "one":
                yield from _graph_issues(located, value, (*here, field), config)
                continue
            for key, branch in value.items():
                if braces_problem(key):
                    yield _braces(located, (*here, field, key), "branch key", key)
                yield from _graph_issues(located, branch, (*here, field, key), config)


def pipeline_issues(loaded: LoadedPipeline, config: ArgoConfig | None = None) -> list[Issue]:
    """What in a pipeline Argo or Kubernetes would refuse or change: every problem, located.
    With the executor's ``config``, a step's named override must be one it defines."""
    found: list[Issue] = []
    located: Located | None = None
    for issue in _graph_issues(Located(data=None, file=None), loaded.pipeline.dag, ("dag",), config):
        if located is None:
            located = _lines(loaded)  # read the file for line numbers only when there is a problem
        found.append(
            located.issue(
                issue.path, issue.message, expected=issue.expected, found=issue.found, hint=issue.hint
            )
        )
    return found


def check_pipeline(loaded: LoadedPipeline, config: ArgoConfig | None = None) -> None:
    """Raise a SpecError listing every problem :func:`pipeline_issues` finds."""
    issues = pipeline_issues(loaded, config)
    if issues:
        raise SpecError(issues, "cannot render for Argo")

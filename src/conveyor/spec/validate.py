"""Turn pydantic errors and graph problems into located issues, all reported together."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from pydantic import AliasChoices, BaseModel, ValidationError
from pydantic_core import ErrorDetails

from conveyor.spec import kindreg
from conveyor.spec.config import Backend
from conveyor.spec.errors import Issue, PathPart, SpecError, describe, did_you_mean
from conveyor.spec.models import DEFAULT_TYPE, TERMINALS, NodeBase, Pipeline
from conveyor.spec.yamlload import Located

M = TypeVar("M", bound=BaseModel)
DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[PathPart, ...]:
    """Map a pydantic error location onto the YAML path."""
    path: list[PathPart] = []
    current = data
    for part in loc:
        if (isinstance(current, dict) and part in current) or (
            isinstance(current, list) and isinstance(part, int) and part < len(current)
        ):
            path.append(part)
            current = current[part]
        else:
            path.append(part)
            current = None
    return tuple(path)


def _node_model(raw: Any) -> type[NodeBase] | None:
    """The node model a raw step's ``type`` names, if any."""
    tag = raw.get("type", DEFAULT_TYPE) if isinstance(raw, dict) else None
    return kindreg.lookup(tag) if isinstance(tag, str) else None


def _at(data: Any, loc: tuple[Any, ...]) -> Any:
    for part in loc:
        if not isinstance(data, dict | list):
            return None
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _holds_graph(data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether ``loc`` is a subgraph of a step (a field its model says holds graphs)."""
    for back, holds in ((1, "one"), (2, "keyed")):
        step, field = loc[:-back], loc[-back]
        if len(step) > 1 and step[-2] == "steps":
            model = _node_model(_at(data, step))
            if model is not None and model.subgraph_fields.get(str(field)) == holds:
                return True
    return False


def _fields_at(model: type[BaseModel], data: Any, loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed where an unknown key was found, for "did you mean"."""
    from conveyor.spec import models

    parent = loc[:-1]
    cls: type[BaseModel] = model
    step = _node_model(_at(data, parent)) if len(parent) > 1 and parent[-2] == "steps" else None
    if not parent:
        cls = model
    elif step is not None:
        cls = step
    elif model is not Pipeline and len(parent) == 1:
        cls = Backend
    elif parent == ("dag",) or _holds_graph(data, parent):
        cls = models.Graph
    elif parent[-1] == "partition":
        cls = models.PartitionSpec
    elif parent[-1] == "retry":
        cls = models.RetrySpec
    elif parent[-1] == "catalog":
        cls = models.CatalogSpec
    elif isinstance(parent[-1], int) and len(parent) > 1 and parent[-2] == "returns":
        cls = models.ReturnSpec
    names = []
    for name, info in cls.model_fields.items():
        alias = info.validation_alias
        names.append(alias.choices[0] if isinstance(alias, AliasChoices) else name)
    return [str(n) for n in names]


def _issue_from_error(model: type[BaseModel], located: Located, err: ErrorDetails) -> Issue:
    loc = tuple(err["loc"])
    path = _data_path(located.data, loc)
    kind = err["type"]
    found = err.get("input")
    if kind == "missing":
        return located.issue(
            path,
            f"missing key '{path[-1]}'" if path else "missing value",
            expected=f"a value for '{path[-1]}'" if path else "a value",
            found="nothing",
            hint=f"add '{path[-1]}:' here" if path else None,
        )
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        allowed = _fields_at(model, located.data, loc)
        return located.issue(
            path,
            f"unknown key '{key}'",
            expected="one of " + ", ".join(sorted(str(a) for a in allowed)),
            found=f"'{key}'",
            hint=did_you_mean(key, allowed) or "remove it; unknown keys are never ignored",
        )
    if kind in {"union_tag_invalid", "union_tag_not_found"}:
        tag = found.get("type") if isinstance(found, dict) else found
        return located.issue(
            (*path, "type"),
            f"unknown step type {tag!r}",
            expected="one of " + ", ".join(kindreg.known()),
            found=describe(tag),
            hint=did_you_mean(str(tag), kindreg.known()),
        )
    if kind == "model_type" or kind == "dict_type":
        return located.issue(path, "wrong type", expected="a mapping", found=describe(found))
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = re.findall(r"'([^']*)'", expected)
        return located.issue(
            path,
            "value not allowed",
            expected=f"one of {expected}",
            found=describe(found),
            hint=did_you_mean(str(found), choices),
        )
    if kind == "string_pattern_mismatch":
        return located.issue(
            path,
            "not a valid name",
            expected="a name of letters, digits and '_', not starting with a digit",
            found=describe(found),
        )
    message = err["msg"]
    if kind == "value_error":
        return located.issue(path, message.removeprefix("Value error, "), found=None)
    expected = message.removeprefix("Input should be ").removeprefix("Value should be ")
    return located.issue(path, "wrong value", expected=expected, found=describe(found))


def build_model(model: type[M], located: Located, title: str, strict: bool = True) -> M:
    """Validate data into ``model``; every problem becomes a located issue.

    With ``strict=False`` the YAML-level issues (duplicate keys) are left for the caller,
    so that later checks can report them together with their own.
    """
    data = {} if located.data is None else located.data
    try:
        built = model.model_validate(data)
    except ValidationError as exc:
        issues = [_issue_from_error(model, located, err) for err in exc.errors()]
        raise SpecError(located.issues + _dedupe(issues), title) from None
    if strict and located.issues:
        raise SpecError(list(located.issues), title)
    return built


def _dedupe(issues: list[Issue]) -> list[Issue]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for issue in issues:
        key = (issue.path, issue.message)
        if key not in seen:
            seen.add(key)
            out.append(issue)
    return out


# --- graph checks -------------------------------------------------------------------------
# These run on the raw data, so that they report alongside the model's own problems even
# when a step is malformed. Anything that is not the expected shape is skipped here: the
# model reports it. A step or graph here is a mapping whose values are not yet known to be
# anything: each is narrowed (``isinstance``) before it is used.

Raw = Mapping[str, object]


def _links(node: object) -> Iterator[tuple[str, str]]:
    if not isinstance(node, dict):
        return
    for key in ("next", "on_failure"):
        target = node.get(key)
        if isinstance(target, str):
            yield key, target


def _steps(graph: Raw) -> Raw:
    steps = graph.get("steps")
    return steps if isinstance(steps, dict) else {}


def _check_graph(graph: object, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    if not isinstance(graph, dict):
        return
    steps = _steps(graph)
    names = set(steps)
    known = names | set(TERMINALS)
    start = graph.get("start_at")
    if isinstance(start, str) and names and start not in names:
        yield located.issue(
            (*path, "start_at"),
            f"start_at names an unknown step '{start}'",
            expected="one of " + ", ".join(sorted(names)),
            found=f"'{start}'",
            hint=did_you_mean(start, names),
        )
    for name, node in steps.items():
        kind = node.get("type", DEFAULT_TYPE) if isinstance(node, dict) else None
        if name in TERMINALS and kind != name:
            yield located.issue(
                (*path, "steps", name),
                f"step name '{name}' is reserved",
                expected=f"'{name}' only as a step of type {name} (it ends the graph)",
                found=f"a {kind} step named '{name}'",
                hint=f"rename the step, e.g. '{name}-step'",
            )
        if "/" in name:
            yield located.issue(
                (*path, "steps", name),
                f"step name '{name}' contains '/'",
                expected="a name without '/' ('/' separates the parts of a step path)",
                found=f"'{name}'",
                hint="use another separator, such as '-' or ' '",
            )
        for key, target in _links(node):
            if target not in known:
                yield located.issue(
                    (*path, "steps", name, key),
                    f"{key} names an unknown step '{target}'",
                    expected="a step of this graph, 'success' or 'fail'",
                    found=f"'{target}'",
                    hint=did_you_mean(target, known),
                )
        if isinstance(node, dict):
            yield from _check_node(node, (*path, "steps", name), located)
    if isinstance(start, str) and start in names:
        yield from _check_reachable(steps, start, path, located)
    yield from _check_cycles(steps, path, located)


def _check_reachable(steps: Raw, start: str, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        todo.extend(target for _, target in _links(steps[name]))
    for name, node in steps.items():
        # Declaring both ends (`success: {type: success}`, `fail: {type: fail}`) is usual,
        # as in runnable's pipelines, whether or not a path leads to them.
        ends = isinstance(node, dict) and node.get("type") in TERMINALS
        if name not in seen and not ends:
            yield located.issue(
                (*path, "steps", name),
                f"step '{name}' is unreachable",
                expected=f"a step reached from start_at '{start}' by next or on_failure",
                found="no path to it",
                hint="link it with next/on_failure, or remove it",
            )


def _check_cycles(steps: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    """Loops over next/on_failure links, found by an iterative depth-first search (a chain
    of thousands of steps must not hit Python's recursion limit)."""
    state: dict[str, int] = {}  # 1: on the current trail, 2: finished
    reported: set[frozenset[str]] = set()
    for root in steps:
        if root in state:
            continue
        trail: list[str] = [root]
        stack: list[Iterator[tuple[str, str]]] = [_links(steps[root])]
        state[root] = 1
        while stack:
            step = next(stack[-1], None)
            if step is None:
                stack.pop()
                state[trail.pop()] = 2
                continue
            key, target = step
            if target not in steps:
                continue
            if state.get(target) == 1:
                loop = [*trail[trail.index(target) :], target]
                if frozenset(loop) not in reported:
                    reported.add(frozenset(loop))
                    yield located.issue(
                        (*path, "steps", trail[-1], key),
                        "the steps form a loop: " + " -> ".join(loop),
                        expected="a chain that ends in success or fail",
                        found="a loop",
                        hint="use retry for repeated attempts; point the chain forward",
                    )
            elif target not in state:
                state[target] = 1
                trail.append(target)
                stack.append(_links(steps[target]))


def _check_patterns(patterns: object, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    if not isinstance(patterns, list):
        return
    for i, pattern in enumerate(patterns):
        if not isinstance(pattern, str):
            continue
        parts = pattern.replace("\\", "/").split("/")
        if pattern.startswith(("/", "~")) or re.match(r"^[A-Za-z]:", pattern) or ".." in parts:
            yield located.issue(
                (*path, i),
                "catalog pattern escapes the working directory",
                expected="a relative path or glob inside the working directory",
                found=repr(pattern),
                hint="drop leading '/', '~' and '..' parts",
            )


def _check_dotted(
    node: Raw, key: str, what: str, path: tuple[PathPart, ...], located: Located, lambdas: bool = False
) -> Iterator[Issue]:
    value = node.get(key)
    if isinstance(value, str) and value and not DOTTED.match(value):
        if lambdas and is_lambda(value):
            return
        yield located.issue(
            (*path, key),
            f"{what} must be a dotted path to a function" + (" or a lambda" if lambdas else ""),
            expected="module.function, e.g. pkg.steps.load" + (", or lambda *x: sum(x)" if lambdas else ""),
            found=repr(value),
        )


def is_lambda(text: str) -> bool:
    """Whether ``text`` is one Python lambda expression (checked without evaluating it)."""
    if not text.lstrip().startswith("lambda"):
        return False
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError:
        return False
    return isinstance(tree.body, ast.Lambda)


def _check_command(node: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    command_type = node.get("command_type", "python")
    if command_type == "python":
        yield from _check_dotted(node, "command", "a python command", path, located)
    command = node.get("command")
    if command_type == "notebook" and isinstance(command, str) and not command.endswith(".ipynb"):
        yield located.issue(
            (*path, "command"),
            "a notebook command must be the path of an .ipynb file",
            expected="a path ending in .ipynb",
            found=repr(command),
        )


def _check_returns(node: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    returns = node.get("returns")
    if isinstance(returns, list):
        names = [r.get("name") if isinstance(r, dict) else r for r in returns]
        for dup in sorted({str(n) for n in names if names.count(n) > 1}):
            yield located.issue(
                (*path, "returns"),
                f"return name '{dup}' is used twice",
                expected="unique names",
                found=f"'{dup}' twice",
            )


def _check_catalog(node: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    catalog = node.get("catalog")
    if isinstance(catalog, dict):
        yield from _check_patterns(catalog.get("get"), (*path, "catalog", "get"), located)
        yield from _check_patterns(catalog.get("put"), (*path, "catalog", "put"), located)


def _check_reducer(node: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    yield from _check_dotted(node, "reducer", "a reducer", path, located, lambdas=True)


#: The raw checks a node model asks for by name in its ``raw_checks``.
RAW_CHECKS = {
    "command": _check_command,
    "returns": _check_returns,
    "catalog": _check_catalog,
    "reducer": _check_reducer,
}


def _check_keyed(branches: object, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    if not isinstance(branches, dict):
        return
    for key, branch in branches.items():
        if "/" in key:
            yield located.issue(
                (*path, key),
                f"branch name '{key}' contains '/'",
                expected="a name without '/'",
                found=f"'{key}'",
            )
        yield from _check_graph(branch, (*path, key), located)


def _check_node(node: Raw, path: tuple[PathPart, ...], located: Located) -> Iterator[Issue]:
    model = _node_model(node)
    if model is None:
        return
    for check in model.raw_checks:
        yield from RAW_CHECKS[check](node, path, located)
    for field, holds in model.subgraph_fields.items():
        if holds == "one":
            yield from _check_graph(node.get(field), (*path, field), located)
        else:
            yield from _check_keyed(node.get(field), (*path, field), located)


def check_pipeline(located: Located) -> list[Issue]:
    """Graph checks the models cannot express: links, reachability, loops, paths."""
    data = located.data
    if not isinstance(data, dict):
        return []
    return list(_check_graph(data.get("dag"), ("dag",), located))

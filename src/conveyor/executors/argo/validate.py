"""Checking a rendered manifest against Argo Workflows' official schemas.

The schemas ship with the package (``schemas/``, see its README for their origin), so
``conveyor render argo --validate`` and the tests need nothing beside the checkout. A manifest
is checked three ways, each catching what the others let through:

- Argo's JSON schema, for the manifest's kind, *closed*: the published schema never sets
  ``additionalProperties: false``, so a misspelt key (``dependson:``) would pass unnoticed;
  here an object that lists its properties accepts no others.
- For a Workflow, the openAPIV3Schema of the full Workflow CRD: what the API server enforces
  (name patterns, at most 200 templates and tasks, enums, ``parallelism >= 1``).
- References no schema can express: template names present and unique, ``entrypoint``,
  ``onExit`` and every task's or step's ``template`` naming a template, task names unique and
  ``dependencies`` naming tasks.

Needs ``jsonschema`` (the ``argo`` extra).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from conveyor.errors import ConveyorError
from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.spec.errors import Issue, PathPart, SpecError

SCHEMAS = Path(__file__).with_name("schemas")
JSON_SCHEMA = SCHEMAS / "argo-workflows-schema.json"
CRD_SCHEMA = SCHEMAS / "argo-workflows-crd-workflow-openapiv3.json"
KINDS = ("Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow")
_DEFINITION = "#/definitions/io.argoproj.workflow.v1alpha1."
# The JSON schema (from Swagger 2.0) types Kubernetes' IntOrString as a string only; the API
# server takes either, as the CRD schema says.
_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_TEMPLATE_TYPES = (
    *("container", "script", "dag", "steps", "resource"),
    *("suspend", "containerSet", "data", "http", "plugin"),
)
_HINT = (
    "the value comes from the run config (executor.config) or a step's overrides.argo; "
    "if neither sets it, conveyor rendered it wrongly: please report it"
)
_LONGEST_MESSAGE = 300


def check_manifest(doc: object, file: str = "<rendered manifest>") -> None:
    """Raise :class:`SpecError` with every problem Argo would find in ``doc``, located by its
    path in the manifest; return quietly when it is valid."""
    issues = manifest_issues(doc, file)
    if issues:
        kind = doc.get("kind", "manifest") if isinstance(doc, dict) else "manifest"
        title = f"the rendered {kind} does not pass Argo's schemas (render it without --validate to see it)"
        raise SpecError(issues, title)


def manifest_issues(doc: object, file: str | None = None) -> list[Issue]:
    """Every problem found in ``doc`` (an Argo manifest as data), in manifest order."""
    if not isinstance(doc, dict) or doc.get("kind") not in KINDS:
        found = repr(doc.get("kind")) if isinstance(doc, dict) else type(doc).__name__
        return [Issue("not an Argo manifest", ("kind",), file, expected=" or ".join(KINDS), found=found)]
    errors = list(_validator(doc["kind"]).iter_errors(doc))
    if doc["kind"] == "Workflow":
        errors += _crd_validator().iter_errors(doc)
    seen: set[tuple[tuple[PathPart, ...], str]] = set()
    issues = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path, message = tuple(error.absolute_path), _shorten(error.message)
        if (path, message) not in seen:
            seen.add((path, message))
            issues.append(Issue(message, path, file, hint=_HINT))
    return issues + [Issue(message, path, file, hint=_HINT) for path, message in _reference_problems(doc)]


def _shorten(message: str) -> str:
    """jsonschema's messages quote the offending value whole; a template can be long."""
    return message if len(message) <= _LONGEST_MESSAGE else message[: _LONGEST_MESSAGE - 3] + "..."


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        raise ConveyorError(
            "checking manifests against Argo's schemas needs jsonschema: pip install 'conveyor[argo]'"
        ) from None
    return jsonschema


def _closed(schema: JSONValue) -> JSONValue:
    """``schema`` where every object that lists its properties accepts no others (in place)."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for key, value in schema.items():
            children = value.values() if key == "properties" and isinstance(value, dict) else [value]
            for child in children:
                _closed(child)
    elif isinstance(schema, list):
        for item in schema:
            _closed(item)
    return schema


@functools.cache
def _json_schema() -> JSONObject:
    schema = _closed(json.loads(JSON_SCHEMA.read_text(encoding="utf-8")))
    definitions = schema.get("definitions") if isinstance(schema, dict) else None
    if not isinstance(schema, dict) or not isinstance(definitions, dict):
        raise ConveyorError(f"{JSON_SCHEMA} is not Argo's JSON schema: reinstall conveyor")
    definitions[_INT_OR_STRING] = {"type": ["string", "integer"]}
    del schema["oneOf"]  # checked against its kind's definition: errors name the real field
    return dict(schema)


@functools.cache
def _validator(kind: str) -> Any:
    schema = copy.copy(_json_schema())
    schema["$ref"] = _DEFINITION + kind
    return _jsonschema().Draft202012Validator(schema)


@functools.cache
def _crd_validator() -> Any:
    return _jsonschema().Draft4Validator(_closed(json.loads(CRD_SCHEMA.read_text(encoding="utf-8"))))


def _mapping(value: object) -> Mapping[str, object]:
    """``value`` if it is a mapping, else an empty one: a manifest read from a file may hold
    anything where a mapping belongs (the schemas report that; here it holds no names)."""
    return value if isinstance(value, dict) else {}


def _items(value: object) -> list[object]:
    """``value`` if it is a list, else an empty one (see :func:`_mapping`)."""
    return value if isinstance(value, list) else []


def _reference_problems(doc: Mapping[str, object]) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    """Names that must exist or be unique, which Argo's controller checks and no schema can."""
    spec = _mapping(doc.get("spec"))
    at: tuple[PathPart, ...] = ("spec",)
    if doc["kind"] == "CronWorkflow":
        spec, at = _mapping(spec.get("workflowSpec")), ("spec", "workflowSpec")
    templates = [_mapping(t) for t in _items(spec.get("templates")) if isinstance(t, dict)]
    names = [t.get("name") for t in templates]
    yield from _duplicates(names, (*at, "templates"), "template")
    known = {n for n in names if n}
    for i, template in enumerate(templates):
        where = (*at, "templates", i)
        if not template.get("name"):
            yield where, "the template has no name"
        types = [k for k in _TEMPLATE_TYPES if k in template]
        if len(types) > 1:
            yield where, f"a template has one type, this one has {len(types)}: {', '.join(types)}"
        for j, group in enumerate(_items(template.get("steps"))):
            for k, step in enumerate(_items(group)):
                yield from _template_reference(_mapping(step), (*where, "steps", j, k), known)
        yield from _dag_problems(_mapping(template.get("dag")), (*where, "dag"), known)
    if "workflowTemplateRef" not in spec:
        for key in ("entrypoint", "onExit"):
            if spec.get(key) and spec[key] not in known:
                yield (*at, key), f"no template is named {spec[key]!r}"


def _dag_problems(
    dag: Mapping[str, object], where: tuple[PathPart, ...], known: set[object]
) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    tasks = [_mapping(t) for t in _items(dag.get("tasks")) if isinstance(t, dict)]
    names = [t.get("name") for t in tasks]
    yield from _duplicates(names, (*where, "tasks"), "task")
    for k, task in enumerate(tasks):
        at = (*where, "tasks", k)
        yield from _template_reference(task, at, known)
        if "depends" in task and "dependencies" in task:
            yield at, "a task has 'depends' or 'dependencies', not both"
        for dependency in _items(task.get("dependencies")):
            if dependency not in names:
                yield (*at, "dependencies"), f"no task is named {dependency!r}"


def _template_reference(
    node: Mapping[str, object], where: tuple[PathPart, ...], known: set[object]
) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    name = node.get("template")
    if name is not None and "templateRef" not in node and "inline" not in node and name not in known:
        yield (*where, "template"), f"no template is named {name!r}"


def _duplicates(
    names: list[object], where: tuple[PathPart, ...], what: str
) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    twice = sorted({n for n in names if n and names.count(n) > 1}, key=str)
    if twice:
        yield where, f"{what} names used more than once: {', '.join(map(str, twice))}"

"""A run's parameters as the Workflow's ``spec.arguments.parameters``.

The parameters given at render time become the workflow's arguments, so that ``argo submit
-p name=value``, the Argo UI, or a WorkflowTemplate's submitter can change them without a
new image or manifest. Only ``run-start`` reads them: its container gets each one as
``CONVEYOR_PRM_<name>: {{workflow.parameters.<name>}}``, which ``load_parameters`` reads by
the rule of ``--param`` (YAML 1.2 core: ``3`` a number, ``[1, 2]`` a list, ``"3"`` text) and
records in the run log once; every other pod replays them from the run log.

Typing rule: an argument's value is text read by that rule. A string is written as itself
when it reads back as the same string, else as a JSON string; any other value as JSON text.
Two things would change a value on its way to the pod, so a rendered value never holds
them: Argo substitutes ``{{...}}`` in arguments and templates (more than once: an argument
can name ``{{workflow.name}}``), and Kubernetes expands ``$(VAR)`` and ``$$`` in a
container's environment. Such a value is written as a JSON string with ``\\u007b`` for a
``{`` that starts ``{{`` and ``\\u0024`` for every ``$``, which reads back as the original.

Limits, refused at render time (a located SpecError, exit 2): a name Argo refuses (it
allows ``[-a-zA-Z0-9_]+``), the name ``run_id`` (conveyor's own argument), a name the
config's ``env`` also sets as ``CONVEYOR_PRM_<name>``, a value over 128 KiB (Linux refuses to
start a process with one environment string longer than that), and values over 512 KiB
together (a Workflow and its pods are stored in etcd, which takes objects up to 1.5 MiB).
Large values (a map's 50,000 file names) go in ``executor.config.parameters_file``, a file
the pods read on the image or a volume; run-start reads it first, the arguments win.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator

from conveyor.executors.argo.manifest import EnvVar, Parameter
from conveyor.jsontypes import JSONObject, JSONValue
from conveyor.spec.errors import Issue, SpecError
from conveyor.spec.load import ENV_PREFIX, parse_params

#: The argument conveyor adds for the run id (a workflow's name unless submit sets it).
RUN_ID_ARGUMENT = "run_id"
#: Argo's rule for a parameter's name (``paramOrArtifactNameRegex`` in its validation).
NAME = re.compile(r"[-a-zA-Z0-9_]+")
#: Linux's limit on one environment string (``MAX_ARG_STRLEN``), its NUL included.
MAX_ENV_STRING = 128 * 1024
#: All values together: far under etcd's 1.5 MiB per object, with room for the rest.
MAX_TOTAL = 512 * 1024
_STARTS_BRACES = re.compile(r"\{(?=\{)")


def _reads_as(text: str) -> JSONValue | None:
    """What the pod makes of ``text``, by the rule of ``--param``; None if it refuses it."""
    try:
        return parse_params([f"x={text}"])["x"]
    except SpecError:
        return None


def _same(a: JSONValue | None, b: JSONValue) -> bool:
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return type(a) is type(b) and a == b


def argument_text(value: JSONValue) -> str | None:
    """The argument text the pod reads back as ``value`` (see the module's typing rule),
    holding neither ``{{`` nor ``$``; None for a value no text reads back as (a NaN)."""
    if isinstance(value, str) and "{{" not in value and "$" not in value and _same(_reads_as(value), value):
        return value
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        return None
    # JSON writes '{' outside strings only before '"' or '}', and '$' only inside strings,
    # so each '{{' and '$' is inside a string, where an escape reads back as the character.
    text = _STARTS_BRACES.sub(r"\\u007b", text).replace("$", "\\u0024")
    return text if _same(_reads_as(text), value) else None


def _issue(source: str | None, name: str, message: str, expected: str, found: str, hint: str) -> Issue:
    return Issue(message, path=(name,), file=source, expected=expected, found=found, hint=hint)


def _issues(values: JSONObject, env: dict[str, str], source: str | None) -> Iterator[Issue]:
    total = 0
    for name, value in values.items():
        if not NAME.fullmatch(name):
            yield _issue(
                source,
                name,
                "Argo refuses this parameter name in a workflow's arguments",
                "a name of letters, digits, '_' and '-'",
                repr(name),
                "rename the parameter, e.g. 'learning_rate' for 'learning rate'",
            )
            continue
        if name == RUN_ID_ARGUMENT:
            yield _issue(
                source,
                name,
                "'run_id' is the argument conveyor gives the run id in the workflow",
                "another parameter name",
                repr(name),
                "rename the parameter, e.g. 'job_id'",
            )
            continue
        if f"{ENV_PREFIX}{name}" in env:
            yield _issue(
                source,
                name,
                f"the config's env also sets {ENV_PREFIX}{name}, which would hide the argument",
                f"no {ENV_PREFIX}{name} in executor.config.env",
                f"env {ENV_PREFIX}{name}",
                "give the value as a parameter only",
            )
            continue
        text = argument_text(value)
        if text is None:
            yield _issue(
                source,
                name,
                "this value cannot be written as text that reads back the same",
                "a value JSON can write",
                repr(value)[:60],
                "give the parameter a number, text, list or mapping",
            )
            continue
        size = len(f"{ENV_PREFIX}{name}={text}".encode()) + 1
        total += len(text.encode())
        if size > MAX_ENV_STRING:
            yield _issue(
                source,
                name,
                "the value is too large for an Argo argument: run-start gets it in its environment, "
                "where Linux refuses a string over 128 KiB",
                "a value under 128 KiB",
                f"{size} bytes",
                "give large values in a parameters file the pods read (executor.config.parameters_file, "
                "on the image or a volume), and the rest with -p",
            )
    if total > MAX_TOTAL:
        yield Issue(
            "the parameters are too large together for an Argo workflow's arguments",
            file=source,
            expected=f"at most {MAX_TOTAL // 1024} KiB of values",
            found=f"{total} bytes",
            hint="give large values in a parameters file the pods read (executor.config.parameters_file, "
            "on the image or a volume), and the rest with -p",
        )


def check_arguments(values: JSONObject, env: dict[str, str], source: str | None = None) -> None:
    """Raise a SpecError listing every parameter Argo, Kubernetes or Linux would refuse or
    change on its way to ``run-start`` (``source`` names the parameters file)."""
    issues = list(_issues(values, env, source))
    if issues:
        raise SpecError(issues, "cannot pass these parameters as Argo arguments")


def workflow_arguments(values: JSONObject) -> list[Parameter]:
    """``spec.arguments.parameters``: the run id's, then each parameter's (checked first)."""
    params: list[Parameter] = [{"name": RUN_ID_ARGUMENT, "value": "{{workflow.name}}"}]
    for name, value in values.items():
        text = argument_text(value)
        assert text is not None, "check_arguments refuses what cannot be written"
        params.append({"name": name, "value": text})
    return params


def parameter_env(values: JSONObject) -> list[EnvVar]:
    """run-start's environment: each argument where ``load_parameters`` reads it. First in
    the list, so that Kubernetes' ``$(VAR)`` in a value given at submit time has none of the
    container's own variables to expand."""
    return [
        {"name": f"{ENV_PREFIX}{name}", "value": f"{{{{workflow.parameters.{name}}}}}"} for name in values
    ]

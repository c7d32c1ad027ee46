"""The checks of a submitted run (sizes, pipeline, config, backends, parameters, code): a
submission either passes them all, as an :class:`Accepted` in conveyor's own spelling, or is
:class:`Refused` with the HTTP status and the located issues the API answers with. A re-run
with edited parameters (:func:`rerun`) goes through the same checks."""

import base64
import binascii
import os
from dataclasses import dataclass
from typing import Any

import yaml
from fastapi.responses import JSONResponse
from sqlalchemy import select

from conveyor.server import policy, queue
from conveyor.server.db import runs
from conveyor.server.limits import LimitError, Limits, check_code, check_parameters, check_pipeline
from conveyor.server.schemas import IssueBody, SubmitRun, error
from conveyor.spec.config import RunConfig
from conveyor.spec.errors import Issue, SpecError, describe
from conveyor.spec.load import LoadedPipeline, load_pipeline_text
from conveyor.spec.load import _config as read_config  # the one reading of a config: runnable's names too
from conveyor.spec.yamlload import load_yaml_text, parse_yaml_text

#: Where edited parameters' issues say they are (the run page's form, or the API's body).
EDITED = "<edited parameters>"


def issue_dict(issue: Issue) -> IssueBody:
    """A located validation issue as JSON (the same text as ``conveyor validate``)."""
    return {
        "file": issue.file,
        "line": issue.line,
        "path": list(issue.path),
        "message": issue.message,
        "expected": issue.expected,
        "found": issue.found,
        "hint": issue.hint,
        "text": issue.render(),
    }


@dataclass
class Accepted:
    """A submission that passed every check, its config in conveyor's own spelling."""

    pipeline: LoadedPipeline
    config: RunConfig
    config_text: str
    code: bytes | None


class Refused(Exception):
    """A submission refused: the HTTP status, the message and located issues."""

    def __init__(self, status: int, message: str, issues: list[IssueBody] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.issues = status, message, issues

    def response(self) -> JSONResponse:
        """The API's JSON error for it."""
        return error(self.status, self.message, self.issues)


def normalised_config(text: str) -> tuple[RunConfig, str]:
    """A submitted config read as ``conveyor run`` reads one (runnable's spellings and type
    names translated) and written back in conveyor's own spelling: the text a worker runs
    with, so it never meets ``pipeline-executor`` or ``file-system``."""
    located = load_yaml_text(text, file="<submitted config>")
    # No variable of the server's own environment is ever filled into a user's config.
    config = read_config(located, environ={})
    config._source = located
    data = config.model_dump(exclude_unset=True)
    return config, yaml.safe_dump(data, sort_keys=False) if data else ""


def accept(body: SubmitRun, limits: Limits) -> Accepted:
    """Every check of a submission (sizes, pipeline, config, backends, parameters, code);
    Refused with what is wrong otherwise."""
    try:
        check_pipeline(body.pipeline, limits)
        check_pipeline(body.config or "", limits, "the config")
        check_parameters(body.parameters, limits)
    except LimitError as exc:
        raise Refused(exc.status, str(exc)) from None
    try:
        loaded = load_pipeline_text(body.pipeline, name=body.name or "pipeline", file="<submitted pipeline>")
        config, config_text = normalised_config(body.config or "")
    except SpecError as exc:
        raise Refused(422, exc.title, [issue_dict(i) for i in exc.issues]) from None
    if config.retry_of is not None:
        raise Refused(422, f"to retry run '{config.retry_of}' on a server: conveyor retry {config.retry_of}")
    if config.executor.type not in limits.executors:
        kind, allowed = config.executor.type, ", ".join(limits.executors)
        raise Refused(422, f"this server lets users choose the executor(s) {allowed}, not '{kind}'")
    # What only the operator chooses (stores, catalog locations, secrets files): refused.
    refused = backend_problems(config, config_text) or policy.problems(config, config._source)
    if refused is not None:
        raise Refused(422, refused.title, [issue_dict(i) for i in refused.issues])
    return Accepted(loaded, config, config_text, decoded_code(body.code, limits))


def decoded_code(text: str | None, limits: Limits) -> bytes | None:
    """The code bundle's bytes, checked to unpack safely within the limits."""
    if not text:
        return None
    try:
        code = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(422, "code must be a base64-encoded tar archive") from None
    try:
        check_code(code, limits)
    except LimitError as exc:
        raise Refused(exc.status, str(exc)) from None
    return code


def backend_problems(config: RunConfig, text: str) -> SpecError | None:
    """A submitted config's backends checked now, with locations, not when a worker runs it:
    keys, values and what can be told without connecting. A Dask address must be the one
    the operator set (``CONVEYOR_SERVER_DASK_ADDRESS``): a user never points a worker at an
    address of their choosing."""
    from conveyor.executors.registry import build

    try:
        for group, backend in (
            ("conveyor.executors", config.executor),
            ("conveyor.catalogs", config.catalog),
            ("conveyor.secrets", config.secrets),
        ):
            build(group, backend, check_only=True)
    except SpecError as exc:
        return config.locate(exc)
    if config.executor.type == "dask":
        allowed = os.environ.get("CONVEYOR_SERVER_DASK_ADDRESS")
        given = config.executor.config.get("address")
        if "local" in config.executor.config or not allowed or given not in (None, allowed):
            return SpecError(
                [
                    Issue(
                        "a Dask run uses the operator's cluster",
                        path=("executor", "config"),
                        file="<submitted config>",
                        expected=f"address: {allowed}"
                        if allowed
                        else "no Dask runs (no cluster is configured)",
                        found=f"address: {given}" if given else "a local cluster",
                        hint="remove the executor's config or use the server's address",
                    )
                ],
                "invalid config",
            )
    return None


def parameters_from_text(text: str) -> dict[str, object]:
    """Parameters as a user edited them on a run page: YAML or JSON text (JSON is YAML) read by
    the rule of a parameters file, which must be a mapping of name to value. Refused (422) with
    the located issue otherwise: the form shows where, what was expected and what was found."""
    try:
        data, located = parse_yaml_text(text, file=EDITED)
    except SpecError as exc:
        raise Refused(422, "invalid parameters", [issue_dict(i) for i in exc.issues]) from None
    if located.issues:
        raise Refused(422, "invalid parameters", [issue_dict(i) for i in located.issues])
    if data is None:
        return {}
    if not isinstance(data, dict):
        wrong = Issue(
            "parameters must be a mapping of name to value",
            file=EDITED,
            line=1,
            expected="a mapping like 'name: value' (or a JSON object)",
            found=describe(data),
            hint="write one 'name: value' per line, as in a parameters file",
        )
        raise Refused(422, "invalid parameters", [issue_dict(wrong)])
    return dict(data)


def rerun(engine: Any, limits: Limits, user_id: int, old: str, parameters: dict[str, object]) -> str:
    """Queue a new run of run ``old``'s pipeline, config and code with ``parameters``, for
    ``user_id``; return its id. It is checked as a new submission is (the limits and the
    operator's policy may have changed since), and records ``old`` as the run it re-runs, so
    that its page links back. The caller has checked that the user may see ``old`` (LookupError
    if it is gone)."""
    with engine.connect() as conn:
        row = conn.execute(select(runs).where(runs.c.id == old)).mappings().first()
    if row is None:
        raise LookupError(old)
    code = row["code"]
    body = SubmitRun(
        pipeline=row["pipeline"],
        config=row["config"] or None,
        parameters=parameters,
        code=base64.b64encode(code).decode() if code else None,
        name=row["pipeline_name"],
        file=row["pipeline_file"],
    )
    accepted = accept(body, limits)
    return queue.submit(
        engine,
        user_id,
        accepted.pipeline.name,
        body.pipeline,
        accepted.config_text,
        parameters,
        accepted.code,
        None,
        row["pipeline_file"],
        rerun_of=old,
        tags=queue.tags_of(engine, old),
    )

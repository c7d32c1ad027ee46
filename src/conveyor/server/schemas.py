"""The shapes the HTTP API reads and writes: request and response bodies and the JSON error
every failing call returns. Apart from the routes, so that each route module, the
middlewares and the submission checks share one definition without importing each other."""

import re
import unicodedata
from collections.abc import Sequence
from typing import Annotated, NotRequired, TypedDict

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from conveyor.runlog.records import RUN_ID_PATTERN, TAG_PATTERN

MAX_BODY = 16 * 1024 * 1024
RUN_ID = RUN_ID_PATTERN
#: A run's tags: each as ``TAG_PATTERN`` says, at most MAX_TAGS to a run.
MAX_TAGS = 20
_TAG = re.compile(TAG_PATTERN)


class SubmitRun(BaseModel):
    """The body of ``POST /runs``. A misspelt field (``paramters``) is refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    pipeline: Annotated[str, Field(description="The pipeline YAML text.", max_length=MAX_BODY)]
    config: Annotated[str | None, Field(description="The run config YAML text.")] = None
    #: The user's parameters: only their size is checked here; they are passed on as given.
    parameters: dict[str, object] = Field(default_factory=dict)
    code: Annotated[str | None, Field(description="A base64 tar(.gz) of the user's package.")] = None
    name: Annotated[str | None, Field(max_length=200)] = None
    file: Annotated[
        str | None,
        Field(
            description="The file the pipeline came from, as the user named it (shown on run pages).",
            max_length=1000,
            pattern=r"^[^\x00-\x1f\x7f]+$",
        ),
    ] = None
    run_id: Annotated[str | None, Field(pattern=RUN_ID)] = None
    tags: Annotated[
        list[str], Field(description="Tags to find the run by (listings filter by one).", max_length=MAX_TAGS)
    ] = Field(default_factory=list)

    @field_validator("tags")
    @classmethod
    def _tags_by_the_rule(cls, value: list[str]) -> list[str]:
        """Each tag as ``TAG_PATTERN`` says: the message says the rule, not the pattern."""
        for tag in value:
            if not _TAG.fullmatch(tag):
                raise ValueError(
                    f"tags like 'nightly' or 'team:data' (letters, digits and '_.:=+/@-', at most 100, "
                    f"not starting with a sign), not {tag!r}"
                )
        return value

    @field_validator("file")
    @classmethod
    def _shown_as_written(cls, value: str | None) -> str | None:
        """The file's name is shown on run pages and in terminals: no control, format
        (bidirectional overrides) or line-separator characters, and not blank."""
        if value is None:
            return value
        if not value.strip():
            raise ValueError("a file name that is not blank")
        for char in value:
            if unicodedata.category(char) in {"Cc", "Cf", "Zl", "Zp"}:
                raise ValueError(f"a file name without the character U+{ord(char):04X}")
        return value


class Rerun(BaseModel):
    """The body of ``POST /runs/{id}/rerun``: the parameters of the new run (the old run's
    pipeline, config and code are kept). A misspelt field is refused, never ignored."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, object] = Field(
        description="The new run's parameters, in full (its tags are the old run's)."
    )


class RunSummary(BaseModel):
    """A run as the queue knows it."""

    id: str
    pipeline_name: str
    #: The file the pipeline was submitted from, as the user named it (None if not given).
    pipeline_file: str | None = None
    #: The run this one re-runs with edited parameters (``POST /runs/{id}/rerun``), if any.
    rerun_of: str | None = None
    status: str
    user: str
    #: The tags it was submitted with (a re-run keeps its run's).
    tags: list[str] = Field(default_factory=list)
    created_at: float
    started_at: float | None = None
    ended_at: float | None = None
    worker: str | None = None
    claims: int = 0
    error: str | None = None
    cancel_requested: bool = False


class RunList(BaseModel):
    """A page of runs."""

    runs: list[RunSummary]
    total: int
    limit: int
    offset: int


class RunDetail(RunSummary):
    """A run with its run log: the step tree, attempts, parameters and metrics."""

    parameters: dict[str, object] = Field(default_factory=dict)
    #: The run log's run record (``RunRecord.to_json``), its status settled, config redacted.
    run_log: dict[str, object] | None = None
    #: The step records (``StepRecord.to_json``), as the run log holds them.
    steps: list[dict[str, object]] = Field(default_factory=list)


class Health(BaseModel):
    """What ``/health`` says to probes."""

    status: str
    database: str
    workers: int | None = None


class Version(BaseModel):
    """What ``/version`` says."""

    version: str


class IssueBody(TypedDict):
    """One located problem of a refused request, as the API answers it: where (file, line,
    path), what was expected and found, a hint, and ``text``, the whole rendered as
    ``conveyor validate`` prints it. A request that does not fit its schema gets issues with
    the path, message and found value only."""

    path: Sequence[str | int]
    message: str
    found: str | None
    file: NotRequired[str | None]
    line: NotRequired[int | None]
    expected: NotRequired[str | None]
    hint: NotRequired[str | None]
    text: NotRequired[str]


class ErrorBody(TypedDict):
    """The ``error`` object of every failing call."""

    status: int
    message: str
    issues: NotRequired[list[IssueBody]]


def error(status: int, message: str, issues: list[IssueBody] | None = None) -> JSONResponse:
    """The JSON error every failing call returns."""
    body: ErrorBody = {"status": status, "message": message}
    if issues is not None:
        body["issues"] = issues
    return JSONResponse({"error": body}, status_code=status)

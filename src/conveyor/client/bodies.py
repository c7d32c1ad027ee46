"""The server API's bodies as the client sends and reads them.

The server describes them with pydantic models (``conveyor.server.schemas``, published in
``/openapi.json``); the client cannot import the server (the two are independent layers), and
it only reads the keys it shows, so here they are ``TypedDict``s of the same names and keys.
"""

from collections.abc import Mapping, Sequence
from typing import NotRequired, TypedDict

from conveyor.jsontypes import JSONObject


class SubmitPayload(TypedDict):
    """The body of ``POST /runs`` (the server refuses a key it does not know)."""

    pipeline: str
    config: str | None
    #: The user's parameters, sent as JSON and passed on by the server unread.
    parameters: Mapping[str, object]
    name: str | None
    #: The file the pipeline came from, as the user named it (shown on run pages).
    file: NotRequired[str]
    #: A base64 tar.gz of the user's package (``--code``).
    code: NotRequired[str]
    run_id: NotRequired[str]
    #: Tags kept with the run (``--tag``); listings filter by one.
    tags: NotRequired[list[str]]


class RunSummary(TypedDict):
    """A run as the server's queue knows it (what submit, cancel and retry answer)."""

    id: str
    pipeline_name: str
    pipeline_file: str | None
    rerun_of: str | None
    status: str
    user: str
    created_at: float
    started_at: float | None
    ended_at: float | None
    worker: str | None
    claims: int
    error: str | None
    cancel_requested: bool
    #: The run's tags (a server before they existed sends none).
    tags: NotRequired[list[str]]


class RunDetail(RunSummary):
    """A run with what its run log holds (``GET /runs/{id}``); no run log yet, no steps."""

    parameters: JSONObject
    run_log: NotRequired[JSONObject]
    #: Step records as the run log writes them (``conveyor.runlog.records.step_from_json``).
    steps: NotRequired[list[JSONObject]]


class RunList(TypedDict):
    """A page of runs (``GET /runs``)."""

    runs: list[RunSummary]
    total: int
    limit: int
    offset: int


class Issue(TypedDict):
    """One located problem of a refused request; ``text`` is all of it, as
    ``conveyor validate`` prints it (a request that does not fit its schema has no ``text``)."""

    path: Sequence[str | int]
    message: str
    found: str | None
    file: NotRequired[str | None]
    line: NotRequired[int | None]
    expected: NotRequired[str | None]
    hint: NotRequired[str | None]
    text: NotRequired[str]

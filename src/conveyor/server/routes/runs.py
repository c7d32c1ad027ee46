"""The API's runs: submit, list, read one (with its run log), its logs, cancel and retry.
Users see and act on their own runs, admins on all (:func:`~conveyor.server.routes.deps.visible`).
Endpoints say why in comments: a docstring would become their description in /openapi.json."""

import json
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, PlainTextResponse

from conveyor.runlog.base import RunNotFoundError
from conveyor.runlog.records import Status
from conveyor.server import queue
from conveyor.server.redact import finite, without_credentials
from conveyor.server.routes.deps import Caller, State, visible
from conveyor.server.schemas import IssueBody, Rerun, RunDetail, RunList, RunSummary, SubmitRun, error
from conveyor.server.submission import Refused, accept, rerun
from conveyor.step.context import path_slug
from conveyor.ui.when import BadRange, date_range

router = APIRouter()
#: What a run's summary holds, in its order.
SUMMARY_FIELDS = tuple(RunSummary.model_fields)


# A run queued once every check passed (a chosen run id must be new); 422 with the located
# issues otherwise. Answered with the row as written, in RunSummary's shape, serialised here:
# reading it back and validating it against the model cost as much as queuing it.
@router.post("/api/v1/runs", response_model=RunSummary, status_code=201)
def submit(body: SubmitRun, caller: Caller, state: State) -> Any:
    try:
        accepted = accept(body, state.limits)
    except Refused as exc:
        return exc.response()
    if body.run_id and queue.get(state.readonly, body.run_id) is not None:
        return error(422, f"run '{body.run_id}' exists already")
    queued = queue.enqueue(
        state.engine,
        caller.id,
        caller.name,
        accepted.pipeline.name,
        body.pipeline,
        accepted.config_text,
        body.parameters,
        accepted.code,
        body.run_id,
        body.file,
        tags=body.tags,
    )
    return JSONResponse({name: queued[name] for name in SUMMARY_FIELDS}, status_code=201)  # type: ignore[literal-required]


# A page of the runs the caller may see, filtered.
@router.get("/api/v1/runs", response_model=RunList)
def list_runs(
    caller: Caller,
    state: State,
    status: Annotated[str | None, Query(max_length=20)] = None,
    user_name: Annotated[str | None, Query(alias="user", max_length=100)] = None,
    pipeline: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    since: Annotated[str, Query(max_length=40)] = "",
    until: Annotated[str, Query(max_length=40)] = "",
    tag: Annotated[str | None, Query(max_length=100)] = None,
) -> Any:
    # since and until bound when runs started: epoch seconds or ISO 8601 (UTC without a zone);
    # tag: only the runs that carry it.
    try:
        span = date_range(since, until)
    except BadRange as exc:
        issue: IssueBody = {"path": ["query", exc.where], "message": str(exc), "found": exc.found,
                            "expected": exc.expected, "hint": exc.hint}  # fmt: skip
        return error(422, str(exc), [issue])
    owner = None if caller.is_admin else caller.id
    rows, total = queue.listing(
        state.readonly, owner, status, user_name, pipeline, limit, offset, since=span.since, until=span.until,
        tag=tag,
    )  # fmt: skip
    return {"runs": rows, "total": total, "limit": limit, "offset": offset}


# One run with its run log; an ended run's open steps read as its ending.
@router.get("/api/v1/runs/{run_id}", response_model=RunDetail)
async def get_run(run_id: str, caller: Caller, state: State) -> Any:
    from conveyor.runlog.endings import settle

    run = visible(state, run_id, caller)
    # RunDetail's shape, built as JSON: the parameters decoded, the error and config redacted.
    detail: dict[str, object] = {**run, "parameters": json.loads(run["parameters"] or "{}")}
    detail["error"] = without_credentials(run["error"])
    try:
        log = settle(state.store.load(run_id))
        run_log = {**log.run.to_json(), "status": str(log.status)}
        run_log["config"] = without_credentials(run_log.get("config"))
        detail["run_log"] = run_log
        detail["steps"] = [record.to_json() for record in log.steps.values()]
    except RunNotFoundError:
        pass
    # The hot path of status polling: serialise directly (the model documents the shape).
    try:
        return JSONResponse(detail)
    except ValueError:  # NaN or an infinity somewhere in what the run recorded
        return JSONResponse(finite(detail))


# Every attempt's output (of one step and what is inside it, with ``step``), credentials hidden.
@router.get("/api/v1/runs/{run_id}/logs", response_class=PlainTextResponse)
def logs(
    run_id: str, caller: Caller, state: State, step: Annotated[str | None, Query(max_length=1000)] = None
) -> Any:
    visible(state, run_id, caller)
    store = state.store
    try:
        log = store.load(run_id)
    except RunNotFoundError:
        return PlainTextResponse("")
    wanted = [p for p in step.split("/") if p] if step else None
    parts = []
    for record in log.steps.values():
        if wanted is not None and record.path[: len(wanted)] != wanted:
            continue
        for attempt in record.attempts:
            # A running attempt's output so far is written every second under the name
            # its final output will have (it has no log on record until it ends).
            location = attempt.log or (
                store.log_location(run_id, f"{path_slug(record.path)}/attempt-{attempt.attempt}.log")
                if attempt.status is Status.RUNNING
                else None
            )
            text = store.read_log(location) if location else ""
            if attempt.log or text:
                parts.append(f"==> {' / '.join(record.path)} (attempt {attempt.attempt}) <==\n")
                parts.append(text)
    return PlainTextResponse(without_credentials("".join(parts)))


# Asks the run's worker to stop it (a queued run ends cancelled at once).
@router.post("/api/v1/runs/{run_id}/cancel", response_model=RunSummary)
def cancel(run_id: str, caller: Caller, state: State) -> Any:
    visible(state, run_id, caller)
    queue.request_cancel(state.engine, run_id)
    return queue.get(state.engine, run_id)


# Queues a failed or cancelled run again; a worker resumes it where it ended.
@router.post("/api/v1/runs/{run_id}/retry", response_model=RunSummary)
def retry(run_id: str, caller: Caller, state: State) -> Any:
    run = visible(state, run_id, caller)
    if not queue.requeue(state.engine, run_id):
        return error(422, f"run '{run_id}' is {run['status']}: only failed or cancelled runs can be retried")
    return queue.get(state.engine, run_id)


# A new run of the run's pipeline, config and code with the parameters given, checked as a
# submission is; it records the run it re-runs (``rerun_of``). Whoever may see the run may.
@router.post("/api/v1/runs/{run_id}/rerun", response_model=RunSummary, status_code=201)
def rerun_run(run_id: str, body: Rerun, caller: Caller, state: State) -> Any:
    visible(state, run_id, caller)
    try:
        new = rerun(state.engine, state.limits, caller.id, run_id, body.parameters)
    except Refused as exc:
        return exc.response()
    except LookupError:
        return error(404, f"no run '{run_id}'")
    return queue.get(state.engine, new)

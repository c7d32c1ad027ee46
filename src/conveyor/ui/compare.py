"""Two runs side by side (issue 24, "compare runs"): their parameters, and each step's
status, duration, attempts, returns and metrics, with what differs said by the server.

The difference is computed here, not in the page, so that what is flagged is one rule, tested
once, and the same for the local UI and the server; and it is computed on values already
redacted (``clean``): a difference only in a hidden password is not flagged, since the page
could not show it.

Steps are compared outside map items (a map is one row, as in the step table, with its items'
counts): two runs of a 100,000-item map compare in the size of their pipelines.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import TypedDict, cast

from conveyor.spec import kindreg
from conveyor.ui.runpage import RunPage
from conveyor.ui.shapes import Values, info, step_json

#: Durations differ when the longer is this much longer than the shorter (a fraction of
#: the longer) and by more than DURATION_FLOOR seconds: timings always move a little.
DURATION_TOLERANCE = 0.2
DURATION_FLOOR = 0.5
#: The most steps compared (as the step table, beyond: said in ``truncated``).
STEP_LIMIT = 2000


class RunSide(TypedDict):
    """One run of a comparison, as its header says it."""

    run_id: str
    status: str
    pipeline: str | None
    started_at: float | None
    ended_at: float | None
    duration: float | None
    tag: object
    user: str | None


class ParamRow(TypedDict):
    """A parameter of either run: its values (``has_a``/``has_b`` say whether each run has
    it) and ``change``: ``added`` (in B only), ``removed`` (in A only), ``changed``, ``same``."""

    name: str
    a: object
    b: object
    has_a: bool
    has_b: bool
    change: str


class ParamDiff(TypedDict):
    """Parameters of two runs: every row, and the names in each kind of change."""

    rows: list[ParamRow]
    added: list[str]
    removed: list[str]
    changed: list[str]


class StepSide(TypedDict):
    """A step in one run: its status, duration, attempts, and its last attempt's returns and
    metrics; for a map, its items' counts by status."""

    status: str
    duration: float | None
    attempts: int
    returns: Values
    metrics: Values
    items: dict[str, int]


class Differs(TypedDict):
    """What differs between a step's two sides (``presence``: it ran in one run only)."""

    presence: bool
    status: bool
    duration: bool
    attempts: bool
    returns: bool
    metrics: bool
    items: bool


class StepDiff(TypedDict):
    """One step path in either run: each side (None where it did not run), the flags, and
    the keys of returns and metrics whose values differ (for the page to mark one by one)."""

    path: str
    a: StepSide | None
    b: StepSide | None
    differs: Differs
    changed_returns: list[str]
    changed_metrics: list[str]


class Comparison(TypedDict):
    """What the compare page shows."""

    a: RunSide
    b: RunSide
    same_pipeline: bool
    initial_parameters: ParamDiff
    final_parameters: ParamDiff
    steps: list[StepDiff]
    #: Steps with any difference, and whether steps beyond STEP_LIMIT were left out.
    steps_differing: int
    truncated: bool


def _key(value: object) -> str:
    """A value as compared: its canonical JSON (NaN equals NaN, key order does not count)."""
    return json.dumps(value, sort_keys=True, default=str)


def run_side(view: RunPage, user: str | None) -> RunSide:
    """The header of one run of a comparison."""
    header = view.header()
    return {
        "run_id": view.run_id,
        "status": header["status"],
        "pipeline": header["pipeline"],
        "started_at": header["started_at"],
        "ended_at": header["ended_at"],
        "duration": header["duration"],
        "tag": header["tag"],
        "user": user,
    }


def step_sides(view: RunPage) -> dict[str, StepSide]:
    """Each step outside map items by its path ("a/b"), in first-seen order."""
    out: dict[str, StepSide] = {}
    for key, record in view.steps.items():
        pattern = view.pattern(key)
        if view.in_map(pattern):
            continue
        if len(out) >= STEP_LIMIT + 1:  # one more than shown: to say there were more
            break
        model = view.types.get(pattern)
        row = step_json(record, kindreg.type_of(model) if model else None)
        last = row["attempts"][-1] if row["attempts"] else None
        items: dict[str, int] = {}
        if model is not None and model.entry == "item":
            items = view.map_counts(pattern, int(info(record).state().get("items") or 0))
        out["/".join(key)] = {
            "status": row["status"],
            "duration": row["duration"],
            "attempts": len(row["attempts"]),
            "returns": dict(last["returns"]) if last else {},
            "metrics": dict(last["metrics"]) if last else {},
            "items": items,
        }
    return out


def diff_params(a: Mapping[str, object] | None, b: Mapping[str, object] | None) -> ParamDiff:
    """Parameters of A against B, by name (A's order, then B's new ones)."""
    a, b = a or {}, b or {}
    rows: list[ParamRow] = []
    for name in [*a, *(n for n in b if n not in a)]:
        has_a, has_b = name in a, name in b
        if not has_b:
            change = "removed"
        elif not has_a:
            change = "added"
        else:
            change = "same" if _key(a[name]) == _key(b[name]) else "changed"
        rows.append({"name": name, "a": a.get(name), "b": b.get(name), "has_a": has_a, "has_b": has_b,
                     "change": change})  # fmt: skip
    return {
        "rows": rows,
        "added": [r["name"] for r in rows if r["change"] == "added"],
        "removed": [r["name"] for r in rows if r["change"] == "removed"],
        "changed": [r["name"] for r in rows if r["change"] == "changed"],
    }


def durations_differ(a: float | None, b: float | None) -> bool:
    """Whether two durations differ by more than timings move by themselves (see
    DURATION_TOLERANCE); one known and one not do."""
    if a is None or b is None:
        return (a is None) != (b is None)
    if not (math.isfinite(a) and math.isfinite(b)):
        return a != b
    longer, gap = max(a, b), abs(a - b)
    return gap > DURATION_FLOOR and gap > DURATION_TOLERANCE * longer


def changed_keys(a: Values, b: Values) -> list[str]:
    """The keys whose values differ between two mappings (in one only: differ too)."""
    names = [*a, *(n for n in b if n not in a)]
    return [n for n in names if (n in a) != (n in b) or _key(a.get(n)) != _key(b.get(n))]


def diff_step(path: str, a: StepSide | None, b: StepSide | None) -> StepDiff:
    """One step of both runs, with what differs."""
    if a is None or b is None:
        flags: Differs = {"presence": True, "status": True, "duration": True, "attempts": True,
                          "returns": True, "metrics": True, "items": True}  # fmt: skip
        return {"path": path, "a": a, "b": b, "differs": flags, "changed_returns": [], "changed_metrics": []}
    returns, metrics = changed_keys(a["returns"], b["returns"]), changed_keys(a["metrics"], b["metrics"])
    flags = {
        "presence": False,
        "status": a["status"] != b["status"],
        "duration": durations_differ(a["duration"], b["duration"]),
        "attempts": a["attempts"] != b["attempts"],
        "returns": bool(returns),
        "metrics": bool(metrics),
        "items": a["items"] != b["items"],
    }
    return {"path": path, "a": a, "b": b, "differs": flags,
            "changed_returns": returns, "changed_metrics": metrics}  # fmt: skip


#: One run as :func:`compare` reads it: its header, initial and final parameters, steps.
Read = tuple[RunSide, Mapping[str, object], Mapping[str, object], dict[str, StepSide]]


def compare(a: Read, b: Read) -> Comparison:
    """Two runs, each read (and redacted) already: its header, initial and final
    parameters and steps (see :func:`read_run`)."""
    (side_a, first_a, final_a, steps_a), (side_b, first_b, final_b, steps_b) = a, b
    paths = [*steps_a, *(p for p in steps_b if p not in steps_a)]
    steps = [diff_step(p, steps_a.get(p), steps_b.get(p)) for p in paths[:STEP_LIMIT]]
    return {
        "a": side_a,
        "b": side_b,
        "same_pipeline": side_a["pipeline"] == side_b["pipeline"],
        "initial_parameters": diff_params(first_a, first_b),
        "final_parameters": diff_params(final_a, final_b),
        "steps": steps,
        "steps_differing": sum(1 for s in steps if any(s["differs"].values())),
        "truncated": len(paths) > STEP_LIMIT,
    }


def read_run(view: RunPage, user: str | None, clean: Callable[[object], object]) -> Read:
    """What a comparison reads of one run, under its view's lock (another request may be
    folding events into it), each value passed through ``clean`` (the redaction) before it
    is compared."""
    with view.lock:
        side = run_side(view, user)
        first, final = view.run.initial_parameters or {}, view.run.final_parameters or {}
        steps = step_sides(view)
    return cast(Read, tuple(cast(list[object], clean([side, first, final, steps]))))

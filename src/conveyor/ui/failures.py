"""Every failure one click away (issue 24): what failed in a run, with its error and the
first lines of its log, for the summary a failed run's page opens on; and one map item
whole (its parameter, every step's attempts and returns) for the item's page.

Both read what the run page's fold does not keep (logs, an item's returns), so both are
computed on demand and kept until the run changes (the view's ``version``), never per poll
of a run that goes on.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from conveyor.runlog.records import Status, StepRecord, event_from_json, fold
from conveyor.spec.models import Graph, NodeBase, step_in
from conveyor.step.context import path_slug
from conveyor.ui.logfiles import attempt_location, is_file_log, open_log
from conveyor.ui.shapes import Failure, ItemDetail, info, step_json

if TYPE_CHECKING:
    from conveyor.ui.runpage import RunPage as RunView

#: Failures the summary lists (failed map items: at most ITEMS_PER_MAP of each map).
LIMIT = 20
ITEMS_PER_MAP = 5
#: The head of a log the summary shows: lines, and bytes read at most.
LOG_LINES, LOG_BYTES = 12, 16 * 1024


def log_head(view: RunView, key: tuple[str, ...], attempt: int, location: str | None) -> str | None:
    """The first lines of an attempt's log (None when it wrote none, or it is gone); read
    from the run's own log folder only (:mod:`conveyor.ui.logfiles`)."""
    name = f"{path_slug(list(key))}/attempt-{attempt}.log"
    where = attempt_location(view.store, view.run_id, location, name)
    try:
        if is_file_log(view.store, view.run_id, where):
            with open(open_log(view.store, view.run_id, where), encoding="utf-8", errors="replace") as handle:
                text = handle.read(LOG_BYTES)
        else:
            text = view.store.read_log(where)[:LOG_BYTES]
    except (OSError, KeyError, ValueError):
        return None
    lines = text.splitlines()
    return "\n".join(lines[:LOG_LINES]) + ("\n…" if len(lines) > LOG_LINES else "") if lines else None


def failures(view: RunView) -> list[Failure]:
    """What failed: steps that run a command (or end nothing but failed on their own:
    a composite with its own error and no failed step under it), then the first failed
    items of each map; each with the first lines of its log."""
    out: list[Failure] = []
    failed_keys = [k for k, r in view.steps.items() if r.status is Status.FAILED]
    for key in failed_keys:
        record = view.steps[key]
        model = view.types.get(view.pattern(key))
        below = any(len(k) > len(key) and k[: len(key)] == key for k in failed_keys) or any(
            k[: len(key)] == key for k, s in view.items.items() if s.status is Status.FAILED
        )
        if model is not None and not model.runs_command and (below or model.ends is not None):
            continue
        out.append(_failure(view, key, record, model is None or model.runs_command))
        if len(out) >= LIMIT:
            return out
    # Failed items still to list: when it is known (maps at the top, one item level), the
    # scan of 100,000 items stops once each map has listed what it will list.
    failing = {p: c[Status.FAILED] for p, c in view.counts.items() if "*" in p and c.get(Status.FAILED)}
    owners: dict[tuple[str, ...], int] = {}
    for pattern, count in failing.items():
        owner = pattern[: pattern.index("*")]
        owners[owner] = owners.get(owner, 0) + count
    left = sum(min(n, ITEMS_PER_MAP) for n in owners.values())
    if any(p.count("*") > 1 for p in failing):
        left = -1  # items of nested maps: each inner map is its own owner, counted as met
    per_map: dict[tuple[str, ...], int] = {}
    for key, state in view.items.items():
        if left == 0:
            break
        if state.status is not Status.FAILED:
            continue
        item = view.item_of(key)
        owner = tuple(item.split("/")[:-1]) if item else key[:1]
        if per_map.get(owner, 0) >= ITEMS_PER_MAP:
            continue
        per_map[owner] = per_map.get(owner, 0) + 1
        left -= 1
        attempt = state.attempt or 1
        out.append(
            {"path": "/".join(key), "type": None, "error": state.error, "attempt": attempt, "item": item,
             "log": log_head(view, key, attempt, None)}
        )  # fmt: skip
        if len(out) >= LIMIT:
            break
    return out


def _failure(view: RunView, key: tuple[str, ...], record: StepRecord, runs_command: bool) -> Failure:
    """A failed step's entry; a composite (conditional, map, loop, parallel) that failed by
    itself has no attempt and no log: its attempt reads 0, which the page shows as no link."""
    last = record.last
    error = last.error if last is not None and last.error else info(record).summary(None) or None
    attempt = last.attempt if last is not None and runs_command else 0
    head = log_head(view, key, attempt, last.log) if last is not None and attempt else None
    return {"path": "/".join(key), "type": record.type, "error": error, "attempt": attempt, "item": None,
            "log": head}  # fmt: skip


def _map_node(graph: Graph, prefix: tuple[str, ...]) -> NodeBase | None:
    """The node that holds the item ``prefix`` names (``fan/3``: the map ``fan``)."""
    node: NodeBase | None = None
    i = 0
    while i + 1 < len(prefix):
        node = step_in(graph, prefix[i])
        if node is None or not node.subgraphs():
            return None
        graph = node.inner("0" if node.entry in ("item", "iteration") else prefix[i + 1])
        i += 2
    return node if node is not None and node.entry == "item" else None


def _value(view: RunView, name: str, index: int, before: float | None) -> tuple[object, bool]:
    """Element ``index`` of list parameter ``name`` as the map found it: the last return of
    that name by a step that ended before the map began, else the initial parameter."""
    value: object = view.run.initial_parameters.get(name)
    found = name in view.run.initial_parameters
    for record in view.steps.values():
        for attempt in record.attempts:
            if (
                attempt.status is Status.SUCCEEDED
                and name in attempt.returns
                and (before is None or (attempt.end or 0) <= before)
            ):
                value, found = attempt.returns[name], True
    if found and isinstance(value, list) and 0 <= index < len(value):
        return value[index], True
    return None, False


def item_records(view: RunView, prefix: tuple[str, ...]) -> dict[tuple[str, ...], StepRecord]:
    """The step records of the map item ``prefix`` names (``fan/3``), whole: read from the
    run log on demand (the view keeps items compact), the item's lines picked before they
    are decoded."""
    needle = json.dumps(prefix[-1])
    needle_bytes = needle.encode()
    got = view.store.read_event_lines(view.run_id, None)
    if got is None:
        return {k: r for k, r in view.store.load(view.run_id).steps.items() if k[: len(prefix)] == prefix}
    events = []
    for line in got[0]:
        if (needle_bytes not in line) if isinstance(line, bytes) else (needle not in line):
            continue
        try:
            event = event_from_json(json.loads(line))
        except ValueError:
            continue
        if event is not None and tuple(event.path[: len(prefix)]) == prefix and len(event.path) > len(prefix):
            events.append(event)
    return fold(events)


def item_detail(view: RunView, prefix: tuple[str, ...]) -> ItemDetail | None:
    """The map item ``prefix`` names (``fan/3``), whole (:func:`item_records`)."""
    if view.pipeline is None or len(prefix) < 2 or not (prefix[-1].isascii() and prefix[-1].isdigit()):
        return None
    node = _map_node(view.pipeline.dag, prefix)
    if node is None:
        return None
    records = item_records(view, prefix)
    name = getattr(node, "iterate_as", None)
    source = getattr(node, "iterate_on", None)
    value, known = None, False
    if len(prefix) == 2 and isinstance(source, str):  # a top-level map: its list is the run's
        holder = view.steps.get(prefix[:1])
        value, known = _value(view, source, int(prefix[-1]), holder.start if holder else None)
    return {
        "path": "/".join(prefix),
        "index": prefix[-1],
        "parameter": name if isinstance(name, str) else None,
        "value": value,
        "value_known": known,
        "steps": [step_json(r) for r in records.values()],
    }

"""Where the UI's runs come from: a run log store on a laptop (``conveyor ui``), or the
server's database (``conveyor.server.pages``), behind one interface.

Listing 10,000 runs must stay fast: the local source keeps an index of run records and
re-reads only what changed (for a file store, the ``run.json`` files whose modification
time moved).
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict

from conveyor.runlog.base import RunLogStore, effective_status
from conveyor.runlog.codec import decode_run
from conveyor.runlog.endings import run_end
from conveyor.runlog.records import RunRecord
from conveyor.ui.views import RunView
from conveyor.ui.when import Range, date_range

#: Run views kept in memory (the most recently looked at).
VIEWS_KEPT = 64
#: A view is brought up to date at most this often (seconds).
REFRESH_EVERY = 0.5
#: The list of runs is brought up to date at most this often (a look at every run record).
LIST_EVERY = 2.0


@dataclass(frozen=True)
class Viewer:
    """Who is looking: a server user (name, admin), or nobody in particular (a laptop)."""

    name: str | None = None
    admin: bool = True
    #: The server user's id (None on a laptop).
    id: int | None = None


class TableRow(TypedDict):
    """A run as a row of the UI's runs table (what the page's script reads)."""

    id: str
    status: str
    pipeline: str | None
    #: Who submitted it (the server's user; None on a laptop).
    user: str | None
    started_at: float | None
    duration: float | None
    #: The run's ``tag``, kept in its record's extra keys (local runs).
    tag: NotRequired[object]
    #: The tags a server run was submitted with.
    tags: NotRequired[list[str]]
    #: Steps and items done (:func:`add_progress`); None for a run without a run log yet.
    progress: NotRequired[Mapping[str, object] | None]


class RunsPage(TypedDict):
    """A page of the runs table, with the choices its filters offer."""

    runs: list[TableRow]
    total: int
    pipelines: list[str]
    #: The users an admin may filter by (none for others, and on a laptop).
    users: list[str]
    #: The tags the runs carry, to filter by.
    tags: NotRequired[list[str]]


class RunSource(Protocol):
    """What the pages need: run listings, one run's view, who may see and act on it."""

    store: RunLogStore
    #: Whether retry and cancel exist here (the server) or not (a read-only laptop UI).
    actions: bool
    #: The runs being looked at, folded incrementally.
    views: Views

    def runs(self, viewer: Viewer, filters: dict[str, str], offset: int, limit: int) -> RunsPage:
        """A page of runs, newest first, matching ``filters`` (status, pipeline, user, q,
        tag; since and until, checked already by ``ui.when.date_range``)."""

    def visible(self, viewer: Viewer, run_id: str) -> bool:
        """Whether ``viewer`` may see ``run_id`` (False also when there is no such run)."""

    def act(self, viewer: Viewer, run_id: str, action: str) -> str:
        """Retry or cancel; the run's status after it."""

    def owner(self, run_id: str) -> str | None:
        """Who submitted the run (the server's user), if anyone is on record."""

    def pending(self, run_id: str) -> tuple[str, str | None]:
        """A run with no run log yet: its status and why it ended, if it did (the server's
        queue knows a run that failed before its engine recorded anything)."""

    def catalog(self, run_id: str, run: RunRecord) -> Path | None:
        """The folder of the run's file catalog on this machine, as this source trusts it
        (the server: the owner's catalog, whatever the run recorded); None if there is none."""


class Views:
    """Run views by id, kept up to date on access, the least recently used dropped."""

    def __init__(self, store: RunLogStore) -> None:
        self.store = store
        self._views: OrderedDict[str, tuple[RunView, float]] = OrderedDict()
        self._making: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunView:
        with self._lock:
            making = self._making.setdefault(run_id, threading.Lock())
        with making:  # one fold per run, even when a page asks while warm-up folds it
            return self._get(run_id)

    def _get(self, run_id: str) -> RunView:
        with self._lock:
            held = self._views.pop(run_id, None)
        if held is None:
            view, seen = RunView(self.store, run_id), time.monotonic()
        else:
            view, seen = held
            if time.monotonic() - seen > REFRESH_EVERY:
                view.refresh()
                seen = time.monotonic()
        with self._lock:
            self._views[run_id] = (view, seen)
            while len(self._views) > VIEWS_KEPT:
                dropped, _ = self._views.popitem(last=False)
                self._making.pop(dropped, None)
        return view

    def warm(self, run_ids: list[str]) -> None:
        """Fold these runs now (in the background, at start), so that the first look at a
        large run costs what a later one does."""
        for run_id in run_ids[:VIEWS_KEPT]:
            try:
                self.get(run_id)
            except Exception:  # an unreadable run: the page that asks for it says why
                continue


def _tag(run: RunRecord) -> object:
    """The run's ``tag`` (``conveyor execute --tag``), kept in its record's extra keys."""
    return run.extra.get("tag") if isinstance(run.extra, dict) else None


def run_row(run: RunRecord, user: str | None = None) -> TableRow:
    """A run as a row of the runs table."""
    end = run_end(run) or (time.time() if run.started_at else None)  # an ended run's stays put
    return {
        "id": run.run_id,
        "status": str(effective_status(run)),
        "pipeline": run.pipeline_name,
        "user": user,
        "started_at": run.started_at,
        "duration": (end - run.started_at) if run.started_at and end else None,
        "tag": _tag(run),
    }


def add_progress(views: Views, rows: list[TableRow]) -> None:
    """Steps and items done for each row of a page of runs (views stay cached, so a page
    looked at again costs only what changed)."""
    for row in rows:
        try:
            view = views.get(row["id"])
            with view.lock:
                row["progress"] = view.progress()
        except Exception:  # a run without a run log yet (queued), or unreadable
            row["progress"] = None


#: The filters a runs listing reads (a page with none of them set lists every run).
FILTERS = ("status", "pipeline", "user", "q", "tag", "since", "until")


def matches(row: Mapping[str, object], filters: dict[str, str], span: Range | None = None) -> bool:
    """Whether a runs-table row passes the filters (status, pipeline, user, tag; q: id
    search; since and until: when it started, see ``ui.when``, read once by a caller that
    passes ``span``)."""
    for key in ("status", "pipeline", "user"):
        if filters.get(key) and row.get(key) != filters[key]:
            return False
    if filters.get("tag") and (row.get("tag") is None or str(row.get("tag")) != filters["tag"]):
        return False
    if span is None:
        span = date_range(filters.get("since", ""), filters.get("until", ""))
    started = row.get("started_at")
    if not span.holds(started if isinstance(started, float | int) else None):
        return False
    query = filters.get("q")
    return not query or query.lower() in str(row["id"]).lower()


class LocalSource:
    """Runs of a run log store, read-only: what ``conveyor ui`` shows."""

    actions = False

    def __init__(self, store: RunLogStore, catalog: Path | None = None) -> None:
        self.store = store
        #: The file catalog of the config ``conveyor ui`` was started with: where every
        #: run's artifacts are read (never where a run record says: records can be edited).
        self._catalog = catalog
        self.views = Views(store)
        self._index: dict[str, tuple[int, RunRecord]] = {}
        self._listed = 0.0
        self._rows: list[RunRecord] = []
        #: The pipelines and tags of the records last listed (found again when they change).
        self._pipelines: tuple[list[RunRecord], list[str], list[str]] | None = None
        self._stamp: int | None = None
        self._lock = threading.Lock()

    def _records(self) -> list[RunRecord]:
        """All run records, newest first; re-read at most every REFRESH_EVERY seconds, and
        for a file store only the records whose file changed."""
        with self._lock:
            root = getattr(self.store, "root", None)
            try:  # a new run's folder changes the root folder at once
                stamp = os.stat(root).st_mtime_ns if isinstance(root, Path) else None
            except OSError:
                stamp = None
            if time.monotonic() - self._listed < LIST_EVERY and stamp == self._stamp:
                return self._rows
            if isinstance(root, Path):
                self._rows = self._scan(root)
            else:
                self._rows = self.store.list_runs(limit=1_000_000)
            self._listed, self._stamp = time.monotonic(), stamp
            return self._rows

    def _scan(self, root: Path) -> list[RunRecord]:
        seen: dict[str, tuple[int, RunRecord]] = {}
        try:
            entries = list(os.scandir(root))
        except FileNotFoundError:
            return []
        for entry in entries:
            path = os.path.join(entry.path, "run.json")
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                continue
            held = self._index.get(entry.name)
            if held is not None and held[0] == mtime:
                seen[entry.name] = held
                continue
            try:
                with open(path, encoding="utf-8", errors="replace") as handle:
                    seen[entry.name] = (mtime, decode_run(handle.read()))
            except (OSError, ValueError):
                continue
        self._index = seen
        return sorted((r for _, r in seen.values()), key=lambda r: r.started_at or 0, reverse=True)

    def runs(self, viewer: Viewer, filters: dict[str, str], offset: int, limit: int) -> RunsPage:
        records = self._records()
        span = date_range(filters.get("since", ""), filters.get("until", ""))
        chosen = records
        if span.since is not None or span.until is not None:  # on the record: no row built
            chosen = [r for r in chosen if span.holds(r.started_at)]
        if any(filters.get(k) for k in FILTERS if k not in ("since", "until")):
            chosen = [r for r in chosen if matches(run_row(r), filters, Range())]
        page = [run_row(r) for r in chosen[offset : offset + limit]]
        add_progress(self.views, page)
        if self._pipelines is None or self._pipelines[0] is not records:
            self._pipelines = (records, sorted({str(r.pipeline_name) for r in records if r.pipeline_name}),
                               sorted({str(t) for r in records if (t := _tag(r)) is not None}))  # fmt: skip
        _, pipelines, tags = self._pipelines
        return {"runs": page, "total": len(chosen), "pipelines": pipelines, "users": [], "tags": tags}

    def warm(self, count: int = 20) -> None:
        """Index the runs and fold the newest ``count`` (a background thread at start)."""
        self.views.warm([r.run_id for r in self._records()[:count]])

    def visible(self, viewer: Viewer, run_id: str) -> bool:
        try:
            self.store.load_record(run_id)
        except Exception:
            return False
        return True

    def act(self, viewer: Viewer, run_id: str, action: str) -> str:
        raise PermissionError("this UI is read-only: retry with 'conveyor retry RUN_ID'")

    def owner(self, run_id: str) -> str | None:
        return None

    def pending(self, run_id: str) -> tuple[str, str | None]:
        return "queued", None

    def catalog(self, run_id: str, run: RunRecord) -> Path | None:
        return self._catalog

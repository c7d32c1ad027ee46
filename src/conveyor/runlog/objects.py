"""The file run log store on object storage (S3 and any fsspec URL), through fsspec.

Object stores have no append: each batch of events becomes an object of its own under
``events/``, named so that listing returns them in order; the run record is replaced with
one PUT (atomic on S3). Reading lists the run's event objects and concatenates them.

Taking a run over is an exclusive PUT (``If-None-Match: *``) of ``claims/N.json``: of any
number of takers expecting generation N-1, one creates it. A driver holding generation N
checks that ``claims/N+1.json`` does not exist before each write; object storage has no lock
to hold across that check and the write, so one write already under way when the claim
lands can still follow it (the local file store closes that gap with ``flock``).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from collections.abc import Mapping, Sequence

from conveyor.runlog.base import RunExistsError, RunLog, RunLogStore, RunNotFoundError, RunTakenOverError
from conveyor.runlog.codec import decode_run, decode_run_of, encode_events, encode_run, fold_lines, unreadable
from conveyor.runlog.records import Event, RunRecord, check_run_id

_counter = itertools.count()
CLAIMS = "claims"


class ObjectRunLogStore(RunLogStore):
    """Runs under a URL prefix, one object per event batch (see the module docstring)."""

    def __init__(self, path: str, storage_options: Mapping[str, object] | None = None) -> None:
        import fsspec.core

        self.fs, root = fsspec.core.url_to_fs(path, **(storage_options or {}))
        self.url_root = root.rstrip("/")
        self.where = path

    def _key(self, run_id: str, *parts: str) -> str:
        return "/".join([self.url_root, check_run_id(run_id), *parts])

    def save_run(self, run: RunRecord, create: bool = False) -> None:
        key = self._key(run.run_id, "run.json")
        data = encode_run(run, indent=1).encode()
        if not create:
            self._fence(run.run_id, run.generation)
            self.fs.pipe_file(key, data)
            self._hold(run.run_id, run.generation)
            return
        self.fs.invalidate_cache()
        if self.fs.exists(self._key(run.run_id, "events")):
            raise RunExistsError(run.run_id, self.where)
        try:  # an exclusive PUT (If-None-Match: *): of two creators, one wins
            self.fs.pipe_file(key, data, mode="create")
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "Precondition" in str(exc) or self.fs.exists(key):
                raise RunExistsError(run.run_id, self.where) from None
            raise
        self._hold(run.run_id, run.generation)

    def _exclusive(self, key: str, data: bytes) -> bool:
        """PUT ``key`` unless it exists (a conditional write): False if it did."""
        try:
            self.fs.pipe_file(key, data, mode="create")
        except (FileExistsError, OSError) as exc:
            if isinstance(exc, FileExistsError) or "Precondition" in str(exc):
                return False
            raise
        return True

    def _generation(self, run_id: str) -> int:
        """The newest claim's generation (0: never taken over), listed afresh."""
        self.fs.invalidate_cache(self._key(run_id, CLAIMS))
        try:
            names = self.fs.ls(self._key(run_id, CLAIMS), detail=False)
        except FileNotFoundError:
            return 0
        stems = (str(n).rstrip("/").rsplit("/", 1)[-1].removesuffix(".json") for n in names)
        return max((int(s) for s in stems if s.isascii() and s.isdigit()), default=0)

    def _fence(self, run_id: str, held: int | None) -> None:
        if held is None:
            return
        key = self._key(run_id, CLAIMS, f"{held + 1}.json")
        self.fs.invalidate_cache(key)
        if self.fs.exists(key):
            raise RunTakenOverError(run_id, self.where, held, self._generation(run_id))

    def claim(self, run: RunRecord, expected_generation: int) -> bool:
        self.fs.invalidate_cache()
        if not self.fs.exists(self._key(run.run_id, "run.json")):
            raise RunNotFoundError(run.run_id, self.where)
        if self._generation(run.run_id) != expected_generation:
            return False
        mine = dataclasses.replace(run, generation=expected_generation + 1)
        data = encode_run(mine, indent=1).encode()
        if not self._exclusive(self._key(run.run_id, CLAIMS, f"{mine.generation}.json"), data):
            return False
        self.fs.pipe_file(self._key(run.run_id, "run.json"), data)
        run.generation = mine.generation
        self._hold(run.run_id, run.generation)
        return True

    def append(self, run_id: str, events: Sequence[Event]) -> None:
        self._fence(run_id, self._held(run_id))
        # Time first, so that names sort in write order across processes; then pid and a counter.
        name = f"{time.time_ns():020d}-{os.getpid():07d}-{next(_counter):09d}.jsonl"
        self.fs.pipe_file(self._key(run_id, "events", name), encode_events(events))

    def load(self, run_id: str) -> RunLog:
        try:
            text = self.fs.cat_file(self._key(run_id, "run.json"))
        except FileNotFoundError:
            raise RunNotFoundError(run_id, self.where) from None
        run = decode_run_of(run_id, self.where, text)
        generation = self._generation(run_id)
        if generation > run.generation:  # its taker died before writing run.json
            claimed = self.fs.cat_file(self._key(run_id, CLAIMS, f"{generation}.json"))
            run = decode_run_of(run_id, self.where, claimed)
        self.fs.invalidate_cache()
        try:
            names = sorted(self.fs.find(self._key(run_id, "events")))
        except FileNotFoundError:
            names = []
        blobs = self.fs.cat(names) if names else {}
        lines = (line for name in names for line in blobs[name].splitlines())
        return RunLog(run, *fold_lines(lines))

    def list_runs(self, limit: int = 50) -> list[RunRecord]:
        self.fs.invalidate_cache()
        try:
            entries = self.fs.ls(self.url_root, detail=False)
        except FileNotFoundError:
            return []
        runs = []
        for entry in entries:
            try:
                text = self.fs.cat_file(f"{entry.rstrip('/')}/run.json")
            except FileNotFoundError:
                continue
            try:
                runs.append(decode_run(text))
            except ValueError as exc:
                runs.append(unreadable(entry.rstrip("/").rsplit("/", 1)[-1], exc))
        runs.sort(key=lambda r: r.started_at or 0, reverse=True)
        return runs[:limit]

    def write_log(self, run_id: str, name: str, text: str) -> str:
        key = self._key(run_id, "logs", name)
        self.fs.pipe_file(key, text.encode())
        return str(self.fs.unstrip_protocol(key))

    def read_log(self, location: str) -> str:
        try:
            return bytes(self.fs.cat_file(location)).decode(errors="replace")
        except (FileNotFoundError, OSError):
            return ""

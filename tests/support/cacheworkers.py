"""Work for processes spawned by cache tests: importable by its name in a spawned child
(a test module's own functions are not, when pytest imports it by path)."""

from __future__ import annotations

from conveyor.catalog.store import FsspecCatalog
from conveyor.step.cache import StepCache

PER_PROCESS = 300


def append_many(root: str, worker: int) -> None:
    """Fill ``PER_PROCESS`` entries of one step's log, each line several kB long (a write
    that long would show interleaving if appends were not whole)."""
    cache = StepCache(FsspecCatalog(root), True)
    for i in range(PER_PROCESS):
        cache.fill(f"{'a' * 16}{worker:04d}{i:06d}", f"w{worker}", ["s"], "p", {"r": "x" * 4000}, {}, {}, {})

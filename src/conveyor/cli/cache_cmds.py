"""``conveyor cache list | show | clear``: the step cache kept in a config's catalog."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from conveyor.cli.errors import friendly
from conveyor.cli.richconsole import Console
from conveyor.spec.errors import Issue, SpecError

if TYPE_CHECKING:
    from conveyor.catalog.store import Catalog
    from conveyor.jsontypes import JSONObject

UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _catalog(config: Path | None) -> Catalog:
    from conveyor.executors.registry import build
    from conveyor.spec.load import load_config

    run_config = load_config(config)
    try:
        catalog: Catalog = build("conveyor.catalogs", run_config.catalog)
        return catalog
    except SpecError as exc:
        raise run_config.locate(exc) from None


def _chosen(catalog: Catalog, pipeline: str | None, step: str | None) -> list[JSONObject]:
    from conveyor.step.cache import entries

    return [
        e
        for e in entries(catalog)
        if (pipeline is None or e.get("pipeline") == pipeline) and (step is None or e.get("step") == step)
    ]


def _number(entry: JSONObject, key: str) -> float:
    """A number the entry records (its size, when it was created); 0 if it has none."""
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def seconds(text: str) -> float:
    """``7d``, ``12h``, ``30m``, ``90s`` or a number of seconds; SpecError otherwise."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise SpecError(
            [
                Issue(
                    "not a duration",
                    path=("--older-than",),
                    expected="like 7d, 12h, 30m or 90s",
                    found=repr(text),
                )
            ],
            "invalid option",
        )
    return float(match[1]) * UNITS.get(match[2] or "s", 1)


@friendly
def listing(config: Path | None, pipeline: str | None, step: str | None) -> int:
    """Entries, newest first, with their sizes."""
    chosen = _chosen(_catalog(config), pipeline, step)
    table = Table()
    for column in ("key", "pipeline", "step", "from run", "age", "size"):
        table.add_column(column)
    for e in chosen:
        age = time.time() - _number(e, "created")
        table.add_row(
            str(e.get("key"))[:16], str(e.get("pipeline")), str(e.get("step")), str(e.get("run_id")),
            f"{age / 3600:.1f} h", _size(_number(e, "size")),
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"{len(chosen)} entries, {_size(sum(_number(e, 'size') for e in chosen))}")
    return 0


@friendly
def show(config: Path | None, key: str) -> int:
    """One entry (a key or its first characters), as JSON."""
    from conveyor.step.cache import entries

    found = [e for e in entries(_catalog(config)) if str(e.get("key", "")).startswith(key)]
    if len(found) != 1:
        what = "no cache entry" if not found else f"{len(found)} cache entries"
        raise SpecError(
            [Issue(f"{what} with a key starting '{key}'", hint="list them: conveyor cache list")], "cache"
        )
    print(json.dumps(found[0], indent=2, default=str))
    return 0


@friendly
def clear(config: Path | None, pipeline: str | None, step: str | None, older_than: str | None) -> int:
    """Delete entries (all, or those chosen), and the blobs no remaining entry uses."""
    from conveyor.step.cache import remove

    catalog = _catalog(config)
    chosen = _chosen(catalog, pipeline, step)
    if older_than is not None:
        limit = time.time() - seconds(older_than)
        chosen = [e for e in chosen if _number(e, "created") < limit]
    size = sum(_number(e, "size") for e in chosen)
    print(f"removed {remove(catalog, chosen)} cache entries ({_size(size)})")
    return 0

"""Where a map's items come from, for in-process runs and for pods alike.

A plain map iterates over a list parameter. A partitioned map lists its source, leaves out
files an earlier run already processed (``incremental``), groups the rest and writes the
manifests to the catalog; the plan is kept in the map's record, so a resumed run, and every
pod of an Argo run, uses the same partitions. A succeeded partition of an incremental map
is marked in the ledger. (``conveyor.step.partitions`` is imported by the partitioned maps
only: the others, and every run without a map, do not pay for it at start-up.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from conveyor.catalog.store import Catalog
from conveyor.graph.kinds.base import NotReached, PlanError
from conveyor.graph.kinds.map import MapInfo, list_items
from conveyor.graph.scope import Scope
from conveyor.jsontypes import JSONObject
from conveyor.spec.models import MapNode
from conveyor.step.context import path_slug


class MapItems:
    """Plans, re-reads and marks a run's map items (see the module docstring)."""

    def __init__(self, catalog: Catalog, run_id: str, pipeline_name: str | None) -> None:
        self.catalog = catalog
        self.run_id = run_id
        self.pipeline_name = str(pipeline_name)

    def plan(
        self, node: MapNode, path: list[str], scope: Scope, prior: JSONObject | None = None
    ) -> tuple[Sequence[Any], JSONObject]:
        """The items, and what the map's record keeps of them. ``prior`` is the map's record
        info from an earlier attempt of the run: its partitions are reused."""
        if node.partition is None:
            items = list_items(node, scope)
            return items, {"items": len(items)}
        from conveyor.step.partitions import PartitionError, Partitions, plan, processed

        earlier = MapInfo.from_json(prior)
        if earlier.planned:
            parts = Partitions.from_record(self.catalog, self.run_id, earlier.extra)
            skipped = earlier.skipped or 0
        else:
            spec = node.partition
            values = scope.get(spec.parameter) if spec.parameter else None
            skip = processed(self.catalog, self._ledger(path)) if node.incremental else None
            try:
                parts, skipped = plan(
                    spec, values, self.catalog, self.run_id, f"partitions/{path_slug(path)}", skip
                )
            except PartitionError as exc:
                raise PlanError(str(exc)) from None
        return parts, {**parts.record(), "items": len(parts), "skipped": skipped}

    def recorded(self, node: MapNode, path: list[str], scope: Scope, info: JSONObject) -> Sequence[Any]:
        """The items as planned earlier in the run (a pod after ``fan-out``); ``info`` is
        the map's record info."""
        if node.partition is None:
            return list_items(node, scope)
        from conveyor.step.partitions import Partitions

        planned = MapInfo.from_json(info)
        if not planned.planned:
            raise NotReached(f"map '{'/'.join(path)}' has not planned its partitions yet (fan-out)")
        return Partitions.from_record(self.catalog, self.run_id, planned.extra)

    def done(self, node: MapNode, path: list[str], index: int, items: Sequence[Any]) -> None:
        """Item ``index`` of the map at ``path`` succeeded: mark its files as processed."""
        if not node.incremental:
            return
        from conveyor.step.partitions import Partitions, mark_processed

        if isinstance(items, Partitions):
            mark_processed(self.catalog, self._ledger(path), self.run_id, index, items.files(index))

    def _ledger(self, path: list[str]) -> str:
        from conveyor.step.partitions import ledger_prefix

        return ledger_prefix(self.pipeline_name, path_slug(path))

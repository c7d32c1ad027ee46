"""Where each node of a DAG level goes on the page: layers by longest path from the start,
rows in declaration order within a layer."""

from __future__ import annotations

from conveyor.ui.shapes import Dag, DagEdge, DagNode


def lay_out(start_at: str, nodes: list[DagNode], edges: list[DagEdge]) -> Dag:
    """``nodes`` with their layer and row: each one layer below the deepest node that leads
    to it (from ``start_at``); those no path reaches (declared ends) at the bottom."""
    out: dict[str, list[str]] = {}
    for edge in edges:
        out.setdefault(edge["from"], []).append(edge["to"])
    depth: dict[str, int] = {start_at: 0}
    todo = [start_at]
    limit = len(nodes) + 2
    while todo:
        name = todo.pop()
        for target in out.get(name, ()):
            new = depth[name] + 1
            if new > depth.get(target, -1) and new <= limit:
                depth[target] = new
                todo.append(target)
    bottom = max(depth.values(), default=0) + 1
    rows: dict[int, int] = {}
    for node in nodes:
        layer = depth.get(node["name"], bottom)
        node["layer"], node["row"] = layer, rows.get(layer, 0)
        rows[layer] = rows.get(layer, 0) + 1
    return {"nodes": nodes, "edges": edges}

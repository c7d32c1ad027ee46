"""The DAG layout's cost (issue 24: a 500-step pipeline laid out in under 300 ms).

Usage: python benchmarks/layout.py [--steps 500] [--repeat 5]

Lays out three shapes of ``--steps`` steps, as ``ui.layout.lay_out`` receives them from a
run page: a chain; a fan of parallel-like chains between one fork and one join (branches
expanded in place); and a random DAG where each step leads to the next and, one in three, to
a step further on (long edges: virtual nodes and crossings to reduce). Prints the median
and worst CPU time of ``--repeat`` runs (the machine is shared: wall time would measure the
neighbours), and the crossings left between adjacent ranks.
"""

from __future__ import annotations

import argparse
import itertools
import random
import statistics
import time

from conveyor.ui.layout import _crossings, lay_out
from conveyor.ui.shapes import DagEdge, DagNode


def _node(name: str) -> DagNode:
    return {"name": name, "type": "task", "path": name, "status": "pending"}


def chain(n: int) -> tuple[list[DagNode], list[DagEdge]]:
    names = [f"s{i}" for i in range(n)]
    edges: list[DagEdge] = [{"from": a, "to": b, "kind": "next"} for a, b in itertools.pairwise(names)]
    return [_node(x) for x in names], edges


def fan(n: int, width: int = 10) -> tuple[list[DagNode], list[DagEdge]]:
    nodes, edges = [_node("s0"), _node("join")], []
    per = max(1, (n - 2) // width)
    for b in range(width):
        previous = "s0"
        for i in range(per):
            name = f"b{b}-{i}"
            nodes.append(_node(name))
            edges.append({"from": previous, "to": name, "kind": "next"})
            previous = name
        edges.append({"from": previous, "to": "join", "kind": "next"})
    return nodes, edges


def random_dag(n: int, seed: int = 7) -> tuple[list[DagNode], list[DagEdge]]:
    rng = random.Random(seed)
    names = [f"s{i}" for i in range(n)]
    edges: list[DagEdge] = [{"from": a, "to": b, "kind": "next"} for a, b in itertools.pairwise(names)]
    for i in range(0, n - 2, 3):
        edges.append(
            {"from": names[i], "to": names[rng.randrange(i + 2, min(n, i + 12))], "kind": "on_failure"}
        )
    return [_node(x) for x in names], edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for label, build in (("chain", chain), ("fan of 10 branches", fan), ("random DAG", random_dag)):
        times = []
        for _ in range(args.repeat):
            nodes, edges = build(args.steps)
            start = time.process_time()
            dag = lay_out(nodes[0]["name"], nodes, edges)
            times.append(time.process_time() - start)
        by_rank: dict[int, list[str]] = {}
        for node in sorted(dag["nodes"], key=lambda m: m["x"]):
            by_rank.setdefault(node["layer"], []).append(node["name"])
        down: dict[str, list[str]] = {m["name"]: [] for m in dag["nodes"]}
        for edge in dag["edges"]:
            down[edge["from"]].append(edge["to"])
        ranks = [by_rank[r] for r in sorted(by_rank)]
        crossings = sum(_crossings(a, b, down) for a, b in itertools.pairwise(ranks))
        print(
            f"{label}, {len(nodes)} steps: median {statistics.median(times) * 1000:.0f} ms, "
            f"worst {max(times) * 1000:.0f} ms; crossings between adjacent ranks (real nodes): {crossings}"
        )


if __name__ == "__main__":
    main()

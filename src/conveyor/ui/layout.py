"""Where each node of a DAG level goes on the page: a layered (Sugiyama-style) layout,
computed here so that the page's script only draws.

1. ranks: each node one rank below the deepest node leading to it (longest path, in
   topological order; a node on a cycle, which validation refuses, keeps its first rank);
2. an edge spanning several ranks passes through a virtual node on each rank between,
   so that it is routed around the nodes rather than through them;
3. the order within each rank reduces edge crossings: barycentre sweeps down and up,
   keeping the best order found (crossings counted between adjacent ranks);
4. x coordinates: each node pulled towards the mean of its neighbours, then pushed apart
   to keep the gap, for a few rounds; edges are polylines through their virtual nodes.

Parallel and conditional branches expanded in place are ordinary nodes here; they come out
side by side because their common fork and join hold them between the same ranks.
"""

from __future__ import annotations

import itertools
from collections import defaultdict

from conveyor.ui.shapes import Dag, DagEdge, DagNode

#: A node's box (the script draws it this size, or wider for long labels: see
#: ``node_width``) and the gaps between boxes, in pixels.
WIDTH, HEIGHT, GAP_X, GAP_Y, MARGIN = 180.0, 48.0, 36.0, 44.0, 20.0
SWEEPS = 8
ROUNDS = 6
#: Labels: the most characters a box widens for (longer ones are clipped, whole on hover),
#: the width of a character (12 px system-ui, rounded up) and the box's inner padding.
MAX_CHARS, CHAR, PADDING = 40, 7.0, 16.0
#: How far above its box a map's stack of cards reaches (the script draws it): an edge into
#: a map ends there, so that its arrowhead is not hidden under the back cards.
STACK = 8.0
#: The radius of a join's dot (drawn by the script in the middle of the join's box).
JOIN = 7.0


def _lines(node: DagNode) -> tuple[str, str]:
    """The two lines the script writes in a node's box: its name and its sub-line."""
    name = node["name"].split("/")[-1] if "group" in node else node["name"]
    counts = node.get("counts") or {}
    if counts:
        sub = " · ".join(f"{v} {k}" for k, v in counts.items())
    else:
        sub = ("↻ " if node.get("shape") == "repeat" else "") + node["type"]
        sub += f" · {node['branch']}" if node.get("branch") else ""
    if node.get("label"):
        sub += f" · {node['label']}"
    return name, sub


def node_width(nodes: list[DagNode]) -> float:
    """One box width for a level: wide enough for its longest label, up to MAX_CHARS
    characters (a level with short names keeps WIDTH), so names are not cut with room."""
    longest = max((len(line) for n in nodes if not n.get("join") for line in _lines(n)), default=0)
    return max(WIDTH, min(longest, MAX_CHARS) * CHAR + PADDING)


def _ranks(names: list[str], succ: dict[str, list[str]], start_at: str) -> dict[str, int]:
    """Longest-path ranks in topological order (Kahn); ``start_at`` first among sources."""
    indegree = dict.fromkeys(names, 0)
    for source in names:
        for target in succ[source]:
            indegree[target] += 1
    ready = [n for n in names if indegree[n] == 0]
    ready.sort(key=lambda n: n != start_at)
    rank = dict.fromkeys(names, 0)
    seen: set[str] = set()
    while ready:
        name = ready.pop(0)
        seen.add(name)
        for target in succ[name]:
            rank[target] = max(rank[target], rank[name] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    for name in names:  # on a cycle: below whatever reached it, once
        if name not in seen:
            rank[name] = max([rank[name], *(rank[s] + 1 for s in names if name in succ[s] and s in seen)])
    return rank


def _crossings(upper: list[str], lower: list[str], down: dict[str, list[str]]) -> int:
    """Edge crossings between two adjacent ranks (pairs of edges whose ends swap order)."""
    where = {n: i for i, n in enumerate(lower)}
    ends = [(i, where[t]) for i, n in enumerate(upper) for t in down[n] if t in where]
    ends.sort()
    count = 0
    for k, (_, b) in enumerate(ends):
        for _, d in ends[k + 1 :]:
            count += d < b
    return count


def _order(layers: list[list[str]], down: dict[str, list[str]], up: dict[str, list[str]]) -> list[list[str]]:
    """Orders within ranks by barycentre sweeps, the one with the fewest crossings kept."""

    def total(order: list[list[str]]) -> int:
        return sum(_crossings(a, b, down) for a, b in itertools.pairwise(order))

    best, best_count = [list(layer) for layer in layers], total(layers)
    current = [list(layer) for layer in layers]
    for sweep in range(SWEEPS):
        downward = sweep % 2 == 0
        indices = range(1, len(current)) if downward else range(len(current) - 2, -1, -1)
        for i in indices:
            fixed = current[i - 1] if downward else current[i + 1]
            place = {n: k for k, n in enumerate(fixed)}
            near = up if downward else down

            def centre(name: str, near: dict[str, list[str]] = near, place: dict[str, int] = place) -> float:
                found = [place[n] for n in near[name] if n in place]
                return sum(found) / len(found) if found else -1.0

            keyed = [(centre(n), k, n) for k, n in enumerate(current[i])]
            slots = sorted(k for c, k, _ in keyed if c >= 0)  # nodes without neighbours stay put
            moved = sorted((c, k, n) for c, k, n in keyed if c >= 0)
            for slot, (_, _, name) in zip(slots, moved, strict=True):
                current[i][slot] = name
        count = total(current)
        if count < best_count:
            best, best_count = [list(layer) for layer in current], count
        if best_count == 0:
            break
    return best


def _xs(
    layers: list[list[str]], down: dict[str, list[str]], up: dict[str, list[str]], width: float = WIDTH
) -> dict[str, float]:
    """Centre x of each node: pulled towards its neighbours' mean, kept in order and apart;
    then a node that is its parent's only child, and that parent its only parent, put
    straight below it when there is room (so a chain's edges are straight, not wobbling)."""
    step = width + GAP_X
    x = {n: i * step for layer in layers for i, n in enumerate(layer)}
    for round_ in range(ROUNDS):
        sequence = layers if round_ % 2 == 0 else layers[::-1]
        for layer in sequence:
            wanted = []
            for n in layer:
                near = [x[m] for m in (*up[n], *down[n])]
                wanted.append(sum(near) / len(near) if near else x[n])
            placed: list[float] = []
            for w in wanted:  # left to right, at least a step apart
                placed.append(max(w, placed[-1] + step) if placed else w)
            shift = (sum(wanted) - sum(placed)) / len(placed)  # keep the layer where it wanted to be
            for i in range(len(placed) - 1, -1, -1):  # right to left, the shift kept
                limit = placed[i + 1] - step if i + 1 < len(placed) else float("inf")
                placed[i] = min(placed[i] + shift, limit)
            for n, value in zip(layer, placed, strict=True):
                x[n] = value
    for layer in layers:
        for i, n in enumerate(layer):
            if len(up[n]) == 1 and len(down[up[n][0]]) == 1:
                want = x[up[n][0]]
                left = x[layer[i - 1]] + step if i > 0 else float("-inf")
                right = x[layer[i + 1]] - step if i + 1 < len(layer) else float("inf")
                if left <= want <= right:
                    x[n] = want
    low = min(x.values(), default=0.0)
    return {n: round(v - low + MARGIN + width / 2, 1) for n, v in x.items()}


def lay_out(start_at: str, nodes: list[DagNode], edges: list[DagEdge]) -> Dag:
    """``nodes`` placed (``layer``, ``row``, and ``x``, ``y`` of the box's top left) and
    ``edges`` routed (``points``, from the bottom of one box to the top of the other)."""
    names = [n["name"] for n in nodes]
    known = set(names)
    succ: dict[str, list[str]] = {n: [] for n in names}
    for edge in edges:
        if edge["from"] in known and edge["to"] in known and edge["to"] not in succ[edge["from"]]:
            succ[edge["from"]].append(edge["to"])
    rank = _ranks(names, succ, start_at)
    down: dict[str, list[str]] = defaultdict(list)
    up: dict[str, list[str]] = defaultdict(list)
    chains: dict[tuple[str, str], list[str]] = {}
    for source in names:
        for target in succ[source]:
            chain, previous = [], source
            for r in range(rank[source] + 1, rank[target]):  # virtual nodes on the ranks between
                virtual = f"\0{source}\0{target}\0{r}"
                rank[virtual] = r
                chain.append(virtual)
                down[previous].append(virtual)
                up[virtual].append(previous)
                previous = virtual
            down[previous].append(target)
            up[target].append(previous)
            chains[(source, target)] = chain
    depth = max(rank.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for name in [*names, *(v for chain in chains.values() for v in chain)]:
        layers[rank[name]].append(name)
    layers = _order(layers, down, up)
    width = node_width(nodes)
    xs = _xs(layers, down, up, width)
    y = {n: MARGIN + rank[n] * (HEIGHT + GAP_Y) for n in rank}
    rows = {n: row for layer in layers for row, n in enumerate(m for m in layer if m in known)}
    for node in nodes:
        name = node["name"]
        node["layer"], node["row"] = rank[name], rows[name]
        node["x"], node["y"] = xs[name] - width / 2, y[name]
    stacked = {n["name"]: n.get("entry") == "item" and not n.get("join") for n in nodes}
    # a join is drawn as a dot of radius JOIN in its box's middle: its edges meet the dot
    inset = {n["name"]: HEIGHT / 2 - JOIN for n in nodes if n.get("join")}
    for edge in edges:
        source, target = edge["from"], edge["to"]
        if source not in known or target not in known:
            continue
        points = [[xs[source], y[source] + HEIGHT - inset.get(source, 0.0)]]
        points += [[xs[v], y[v] + HEIGHT / 2] for v in chains.get((source, target), [])]
        points.append([xs[target], y[target] - (STACK if stacked.get(target) else -inset.get(target, 0.0))])
        edge["points"] = points
    height = depth * (HEIGHT + GAP_Y) - GAP_Y + 2 * MARGIN if depth else 0.0
    return {
        "nodes": nodes, "edges": edges, "width": max((xs[n] + width / 2 for n in xs), default=0.0) + MARGIN,
        "height": height, "node_width": width, "label_chars": int((width - PADDING) // CHAR),
    }  # fmt: skip

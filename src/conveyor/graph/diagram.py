"""Pipeline diagrams in Mermaid and Graphviz dot: the same graph walk, two spellings."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

from conveyor.spec.models import IMPLICIT, TERMINALS, Graph


def _id(path: tuple[str, ...]) -> str:
    return "n" + hashlib.sha1("\x1f".join(path).encode()).hexdigest()[:10]


def _label(text: str) -> str:
    return text.replace('"', "'")


def _walk(graph: Graph, prefix: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    """Yield ('node', id, label, shape) and ('edge', a, b, label) tuples, and subgraph marks."""
    terminals = {name: _id((*prefix, name)) for name in TERMINALS}
    used_terminals: set[str] = set()
    for name, node in graph.steps.items():
        node_id = _id((*prefix, name))
        yield ("node", node_id, name, node.shape)
        for key, target in (("next", node.following(True)), ("on_failure", node.following(False))):
            if target is None:
                continue
            if target in graph.steps:
                target_id = _id((*prefix, target))
            else:
                target_id = terminals[target]
                used_terminals.add(target)
            yield ("edge", node_id, target_id, "" if key == "next" else "on failure")
        for key, branch in node.named_subgraphs().items():
            sub = (*prefix, name, key)
            yield ("begin", _id(sub), key, "")
            yield from _walk(branch, sub)
            yield ("end", "", "", "")
            yield ("edge", node_id, _id((*sub, branch.start_at)), "")
    for name in sorted(used_terminals):
        yield ("node", terminals[name], name, IMPLICIT[name].shape)


def mermaid(graph: Graph) -> str:
    """The pipeline as a Mermaid flowchart (GitHub and most editors render it)."""
    shapes = {
        "end": '(("{}"))',
        "fan": '[["{}"]]',
        "fork": '[/"{}"/]',
        "choice": '{{"{}"}}',
        "repeat": '(["{}"])',
        "step": '["{}"]',
    }
    lines = ["flowchart TD"]
    for kind, a, b, c in _walk(graph, ()):
        if kind == "node":
            lines.append(f"  {a}" + shapes.get(c, '["{}"]').format(_label(b)))
        elif kind == "edge":
            arrow = f" -.->|{c}| " if c else " --> "
            lines.append(f"  {a}{arrow}{b}")
        elif kind == "begin":
            lines.append(f'  subgraph {a}["{_label(b)}"]')
        elif kind == "end":
            lines.append("  end")
    return "\n".join(lines) + "\n"


def dot(graph: Graph) -> str:
    """The pipeline as a Graphviz digraph."""
    shapes = {
        "end": "doublecircle",
        "fan": "box3d",
        "fork": "parallelogram",
        "choice": "diamond",
        "repeat": "cds",
        "step": "box",
    }
    lines = ["digraph pipeline {", "  rankdir=TB;"]
    for kind, a, b, c in _walk(graph, ()):
        if kind == "node":
            lines.append(f'  {a} [label="{_label(b)}", shape={shapes.get(c, "box")}];')
        elif kind == "edge":
            style = f' [label="{c}", style=dashed]' if c else ""
            lines.append(f"  {a} -> {b}{style};")
        elif kind == "begin":
            lines.append(f'  subgraph cluster_{a} {{ label="{_label(b)}";')
        elif kind == "end":
            lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"

"""Pipeline diagrams (``graph.diagram``): Mermaid and Graphviz dot drawn from the same walk,
ids stable across renders and distinct per path, failure edges dashed, branches as
subgraphs, only the terminals used, quotes never breaking the text."""

from __future__ import annotations

import re

from conveyor.graph.diagram import dot, mermaid
from conveyor.spec.load import load_pipeline_text
from conveyor.spec.models import Graph

PIPELINE = """dag:
  start_at: load
  steps:
    load: {type: stub, next: fan, on_failure: "tidy \\"up\\""}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: load, steps: {load: {type: stub, next: success}}}
      next: choose
    choose:
      type: conditional
      parameter: which
      branches:
        a: {start_at: load, steps: {load: {type: stub, next: success}}}
      next: success
    'tidy "up"': {type: stub, next: fail}
"""


def graph() -> Graph:
    return load_pipeline_text(PIPELINE, name="p").pipeline.dag


def test_mermaid_draws_nodes_edges_and_branches() -> None:
    text = mermaid(graph())
    assert text.startswith("flowchart TD\n") and text.endswith("\n")
    ids = re.findall(r"^  (n[0-9a-f]{10})", text, flags=re.M)
    # Three steps called 'load' (top level, in the map's branch, in the conditional's
    # branch): three different ids, since ids come from paths, not names.
    loads = [i for i in set(ids) if re.search(rf"^  {i}\[\"load\"\]", text, flags=re.M)]
    assert len(loads) == 3
    assert text.count("  subgraph ") == 2 and len(re.findall(r"^  end$", text, flags=re.M)) == 2
    assert " -.->|on failure| " in text  # the failure path, dashed and said
    assert "tidy 'up'" in text and 'tidy "up"' not in text  # a quote cannot end the label


def test_only_the_terminals_reached_are_drawn() -> None:
    text = mermaid(graph())
    # Each graph draws its own: the pipeline and both branches end in success, one step fails.
    assert text.count('(("success"))') == 3 and text.count('(("fail"))') == 1
    fail_free = load_pipeline_text("dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n")
    assert '"fail"' not in mermaid(fail_free.pipeline.dag)


def test_dot_is_the_same_graph() -> None:
    text = dot(graph())
    assert text.startswith("digraph pipeline {\n  rankdir=TB;\n") and text.endswith("}\n")
    mermaid_ids = set(re.findall(r"n[0-9a-f]{10}", mermaid(graph())))
    dot_ids = set(re.findall(r"n[0-9a-f]{10}", text))
    assert dot_ids == mermaid_ids and len(dot_ids) > 6
    mermaid_edges = re.findall(r"(n[0-9a-f]{10}) -", mermaid(graph()))
    assert len(re.findall(r"-> n[0-9a-f]{10}", text)) == len(mermaid_edges)
    assert '[label="on failure", style=dashed]' in text
    assert text.count("subgraph cluster_") == 2


def test_renders_are_stable() -> None:
    assert mermaid(graph()) == mermaid(graph()) and dot(graph()) == dot(graph())

"""Node models declare their traits; what reads them (validation, diagrams) needs no kind names."""

from __future__ import annotations

import pytest

from conveyor.graph.diagram import dot, mermaid
from conveyor.spec import kindreg
from conveyor.spec.models import Graph, NodeBase, Pipeline


@pytest.mark.parametrize("tag", list(kindreg.MODELS))
def test_subgraph_fields_name_graph_fields(tag: str) -> None:
    model: type[NodeBase] = kindreg.MODELS[tag]
    for field, holds in model.subgraph_fields.items():
        annotation = str(model.model_fields[field].annotation)
        assert "Graph" in annotation, (tag, field, annotation)
        assert ("dict" in annotation) == (holds == "keyed"), (tag, field)
    assert model.composite == bool(model.subgraph_fields)
    assert (model.entry is None) == (not model.subgraph_fields)


def test_unknown_type_lists_every_kind() -> None:
    from conveyor.spec.validate import build_model
    from conveyor.spec.yamlload import load_yaml_text

    located = load_yaml_text("dag: {start_at: a, steps: {a: {type: mapp, next: success}}}", "p.yaml")
    with pytest.raises(Exception) as info:
        build_model(Pipeline, located, "pipeline")
    text = str(info.value)
    assert "unknown step type 'mapp'" in text and "did you mean 'map'" in text.lower()


def test_diagram_shapes_come_from_traits() -> None:
    graph = Graph.model_validate(
        {
            "start_at": "m",
            "steps": {
                "m": {
                    "type": "map",
                    "iterate_on": "xs",
                    "iterate_as": "x",
                    "next": "c",
                    "branch": {"start_at": "t", "steps": {"t": {"command": "a.b", "next": "success"}}},
                },
                "c": {
                    "type": "conditional",
                    "parameter": "p",
                    "next": "success",
                    "branches": {"a": {"start_at": "s", "steps": {"s": {"type": "stub", "next": "success"}}}},
                },
            },
        }
    )
    text = mermaid(graph)
    assert '[["m"]]' in text and '{"c"}' in text and '(("success"))' in text
    assert "shape=box3d" in dot(graph) and "shape=diamond" in dot(graph)

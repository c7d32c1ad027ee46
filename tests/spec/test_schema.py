from __future__ import annotations

import json
from pathlib import Path

from conveyor.spec.schema import pipeline_schema

ROOT = Path(__file__).resolve().parents[2]


def test_schema_describes_the_node_types() -> None:
    schema = pipeline_schema()
    text = json.dumps(schema)
    for kind in ("TaskNode", "MapNode", "ParallelNode", "ConditionalNode", "StubNode"):
        assert kind in schema["$defs"], kind
    assert schema["required"] == ["dag"]
    assert '"iterate_on"' in text and '"on_failure"' in text


def test_shipped_schema_is_current() -> None:
    shipped = json.loads((ROOT / "src/conveyor/spec/schema.json").read_text())
    assert shipped == pipeline_schema(), (
        "regenerate with: conveyor schema --builtin > src/conveyor/spec/schema.json"
    )

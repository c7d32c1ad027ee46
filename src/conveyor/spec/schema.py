"""The JSON Schema of the pipeline format, generated from the models."""

from __future__ import annotations

from typing import Any

from conveyor.spec.models import Pipeline


def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema of the pipeline format, generated from the models."""
    schema = Pipeline.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "conveyor pipeline"
    return schema

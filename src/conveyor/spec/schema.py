"""The JSON Schema of the pipeline format, generated from the models."""

from __future__ import annotations

from typing import Literal

from pydantic.json_schema import models_json_schema

from conveyor.jsontypes import JSONObject
from conveyor.spec import kindreg
from conveyor.spec.models import Pipeline


def pipeline_schema(plugins: bool = False) -> JSONObject:
    """The JSON Schema of the pipeline format, generated from the models: a step is one of
    the node models (with ``plugins``, those of installed kind plugins too)."""
    if plugins:
        kindreg.load_plugins()
    mode: Literal["validation"] = "validation"
    nodes = [(model, mode) for model in kindreg.MODELS.values()]
    _, top = models_json_schema([(Pipeline, "validation"), *nodes])
    defs = dict(top["$defs"])
    top_level = defs.pop("Pipeline")
    schema: JSONObject = {"$defs": dict(sorted(defs.items())), **top_level}
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "conveyor pipeline"
    return schema

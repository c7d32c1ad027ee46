"""What the YAML loader makes of a document: JSON's values, and where each came from."""

from __future__ import annotations

import math

from conveyor.spec.load import parse_params
from conveyor.spec.yamlload import parse_yaml_text


def test_the_data_is_json_and_is_the_located_data() -> None:
    value, located = parse_yaml_text("a: [1, 2.5, true, null, yes]\nb: {c: .inf}\n", file="x.yaml")
    assert value is located.data
    assert value == {"a": [1, 2.5, True, None, "yes"], "b": {"c": math.inf}}
    assert located.line_of(("b", "c")) == 2


def test_an_empty_document_is_null() -> None:
    value, located = parse_yaml_text("", file="empty.yaml")
    assert value is None and located.data is None and located.file == "empty.yaml"


def test_param_options_are_read_as_yaml_values() -> None:
    assert parse_params(["n=3", "xs=[1, 2]", "t=yes", "s=a: b: c"]) == {
        "n": 3,
        "xs": [1, 2],
        "t": "yes",
        "s": "a: b: c",
    }

"""What the executors take from a config or a run as plain data is checked where it is
read: storage options that are not a mapping are a located problem, a patch that is not a
mapping is refused, and parameters that are not JSON are kept by their repr."""

from __future__ import annotations

import pytest

from conveyor.executors.checks import problems
from conveyor.executors.engine import json_safe
from conveyor.executors.mocked import MockedExecutor


def test_storage_options_that_are_not_a_mapping_are_a_problem_when_checked() -> None:
    config = {"location": "memory://conveyor-checks/catalog", "storage_options": "key=abc"}
    assert problems("conveyor.catalogs", "file", config) == []  # no connection: not read
    found = problems("conveyor.catalogs", "file", config, connect=True)
    assert found == [
        "cannot reach memory://conveyor-checks/catalog: TypeError: storage_options must be a mapping, not str"
    ]
    fine = {"location": "memory://conveyor-checks/catalog", "storage_options": {}}
    assert problems("conveyor.catalogs", "file", fine, connect=True) == []


def test_patches_are_mappings_of_task_fields() -> None:
    executor = MockedExecutor({"a": {"command": "exit 1"}, "m/0/b": {"command_type": "shell"}})
    assert executor.patch_for(["a"]) == {"command": "exit 1"}
    assert executor.patch_for(["m", "0", "b"]) == {"command_type": "shell"}
    assert executor.patch_for(["m", "1", "b"]) is None
    with pytest.raises(ValueError, match="the patch of 'a' must be a mapping"):
        MockedExecutor({"a": "exit 1"})
    with pytest.raises(ValueError, match="the patch of 'a' cannot set 'comand'"):
        MockedExecutor({"a": {"comand": "x"}})


class Model:
    def __repr__(self) -> str:
        return "Model()"


def test_parameters_the_run_log_keeps_are_json_or_a_repr() -> None:
    kept = json_safe({"n": 1, "xs": [1, "a", None], "pair": (1, 2), "m": Model(), "nan": float("nan")})
    assert kept["n"] == 1 and kept["xs"] == [1, "a", None] and kept["pair"] == (1, 2)
    assert kept["m"] == {"$repr": "Model()", "$type": "Model"}
    assert set(kept) == {"n", "xs", "pair", "m", "nan"}

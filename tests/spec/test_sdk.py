"""The SDK builds the same pipelines as YAML; to_yaml writes a file that runs identically."""

from __future__ import annotations

from pathlib import Path

import ctasks
import pytest

from conveyor import Conditional, Map, Parallel, Pipeline, PythonTask, ShellTask, Stub
from conveyor.executors.run import execute
from conveyor.spec.errors import SpecError
from conveyor.spec.load import load_pipeline


def build() -> Pipeline:
    each = Pipeline(steps=[PythonTask(ctasks.square, returns=["sq"])])
    return Pipeline(
        steps=[
            PythonTask(ctasks.numbers, returns=["xs"]),
            Map("fan", iterate_on="xs", iterate_as="x", branch=each, max_parallelism=2),
            Parallel(
                "both",
                branches={
                    "a": Pipeline(steps=[PythonTask(ctasks.add, name="plus", returns=["c"])]),
                    "b": Pipeline(steps=[ShellTask("export d=$((a*b))", name="times", returns=["d"])]),
                },
            ),
            Conditional(
                "route",
                parameter="mode",
                branches={
                    "fast": Pipeline(steps=[Stub("skip")]),
                    "slow": Pipeline(steps=[PythonTask(ctasks.concat, name="join", returns=["joined"])]),
                },
            ),
        ]
    )


def test_sdk_execute_returns_status_run_id_and_parameters(workdir: Path) -> None:
    result = build().execute(parameters={"n": 4, "a": 2, "b": 5, "mode": "slow", "values": [1, 2]})
    assert result.ok and result.status == "succeeded"
    assert result.run_id
    assert result.parameters["sq"] == [0, 1, 4, 9]
    assert result.parameters["c"] == 7 and result.parameters["d"] == 10
    assert result.parameters["joined"] == "1,2"


def test_to_yaml_runs_identically(workdir: Path) -> None:
    pipeline = build()
    text = pipeline.to_yaml(workdir / "p.yaml")
    assert "ctasks.square" in text
    params = {"n": 3, "a": 1, "b": 2, "mode": "fast", "values": []}
    from_sdk = pipeline.execute(parameters=params)
    from_yaml = execute(load_pipeline(workdir / "p.yaml"), parameters=params)
    assert from_yaml.status == from_sdk.status == "succeeded"
    assert from_yaml.parameters == from_sdk.parameters
    assert load_pipeline(workdir / "p.yaml").hash == pipeline.load().hash


def test_on_failure_handler_pipeline(workdir: Path) -> None:
    handler = Pipeline(steps=[PythonTask(ctasks.record, name="note", returns=["noted"])])
    pipeline = Pipeline(steps=[PythonTask(ctasks.fail_always, on_failure=handler), Stub("after")])
    result = pipeline.execute(parameters={"counter": str(workdir / "c.txt"), "tag": "handled"})
    assert result.ok and result.parameters["noted"] == "handled"


def test_sdk_errors_are_spec_errors(workdir: Path) -> None:
    pipeline = Pipeline(steps=[PythonTask(ctasks.noop, on_failure="nowhere")])
    with pytest.raises(SpecError) as info:
        pipeline.to_yaml()
    assert info.value.issues[0].message == "on_failure names an unknown step 'nowhere'"


def test_lambda_is_refused() -> None:
    with pytest.raises(ValueError, match="module-level function"):
        Pipeline(steps=[PythonTask(lambda: 1, name="x")]).to_dict()

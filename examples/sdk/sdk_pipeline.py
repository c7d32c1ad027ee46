"""The same kind of pipeline, built with the Python SDK, run in-process and written as YAML.

Run: python examples/sdk/sdk_pipeline.py [OUT.yaml]
"""

from __future__ import annotations

import sys

from conveyor import Map, Pipeline, PythonTask, ShellTask


def numbers(count: int) -> list[int]:
    return list(range(1, count + 1))


def square(n: int) -> int:
    return n * n


def report(squares: list[int]) -> int:
    print(f"sum of squares: {sum(squares)}")
    return sum(squares)


def build() -> Pipeline:
    each = Pipeline(steps=[PythonTask(square, returns=["squares"])])
    return Pipeline(
        steps=[
            PythonTask(numbers, returns=["ns"]),
            Map("square each", iterate_on="ns", iterate_as="n", branch=each),
            PythonTask(report, returns=[{"name": "total", "kind": "metric"}]),
            ShellTask('echo "total is $total"', name="announce"),
        ],
        name="sdk_example",
    )


if __name__ == "__main__":
    pipeline = build()
    result = pipeline.execute(parameters={"count": 4})
    print(result.status, result.run_id, result.parameters["total"])
    if len(sys.argv) > 1:
        pipeline.to_yaml(sys.argv[1])
    sys.exit(0 if result.ok else 1)

"""runnable's async SDK: ``AsyncPythonTask`` steps (coroutines awaited in their step, async
generators drained) and ``AsyncPipeline.execute_streaming()``, which yields the run's
events as they happen while the run is recorded as any other."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conveyor import AsyncPipeline, AsyncPythonTask, ExecutionFailedError, Pipeline, PythonTask
from conveyor.runlog.file import FileRunLogStore
from conveyor.runlog.records import Status
from support import ROOT


def _config(workdir: Path) -> dict[str, object]:
    return {
        "run_log_store": {"type": "file", "config": {"path": str(workdir / "runs")}},
        "catalog": {"type": "none"},
    }


def _pipeline() -> AsyncPipeline:
    from jobtasks import greet, shout

    return AsyncPipeline(
        name="async_sequential",
        steps=[
            AsyncPythonTask(name="hello", function=greet, returns=["greeting"]),
            AsyncPythonTask(name="loud", function=shout, returns=["loud", "size"]),
        ],
    )


async def _collect(pipeline: AsyncPipeline, **kw: Any) -> list[dict[str, Any]]:
    return [event async for event in pipeline.execute_streaming(**kw)]


def test_coroutine_steps_are_awaited_and_pass_returns(workdir: Path) -> None:
    result = _pipeline().execute(configuration_file=_config(workdir), parameters={"name": "ada"})
    assert result.parameters["greeting"] == "hello ada"
    assert result.parameters["loud"] == "HELLO ADA" and result.parameters["size"] == 9


def test_a_coroutine_step_in_a_plain_pipeline(workdir: Path) -> None:
    from jobtasks import greet

    result = Pipeline(steps=[PythonTask(function=greet, returns=["greeting"])]).execute(
        configuration_file=_config(workdir)
    )
    assert result.parameters["greeting"] == "hello world"


def test_streaming_yields_start_and_end_events_in_order(workdir: Path) -> None:
    events = asyncio.run(_collect(_pipeline(), configuration_file=_config(workdir), run_id="streamed"))
    seen = [(e["e"], e.get("path"), e.get("status")) for e in events]
    assert seen == [
        ("run", None, "running"),
        ("start", ["hello"], None),
        ("end", ["hello"], "succeeded"),
        ("start", ["loud"], None),
        ("end", ["loud"], "succeeded"),
        ("run", None, "succeeded"),
    ]
    assert {e["run_id"] for e in events} == {"streamed"}
    assert events[2]["returns"] == {"greeting": "hello world"}
    assert events[-1]["parameters"]["loud"] == "HELLO WORLD"
    assert [e["t"] for e in events] == sorted(e["t"] for e in events)
    log = FileRunLogStore(path=str(workdir / "runs")).load("streamed")
    assert log.run.status is Status.SUCCEEDED
    assert [s.status for s in log.steps.values()] == [Status.SUCCEEDED, Status.SUCCEEDED]


def test_events_arrive_while_the_run_goes_on(workdir: Path) -> None:
    """The first step's end is yielded before the second step has ended: a stream, not a
    list handed over at the end."""

    async def watch() -> list[bool]:
        store = FileRunLogStore(path=str(workdir / "runs"))
        seen = []
        async for event in _pipeline().execute_streaming(configuration_file=_config(workdir), run_id="live"):
            if event["e"] == "end" and event["path"] == ["hello"]:
                loud = store.load("live").step(["loud"])
                seen.append(loud is None or loud.status is not Status.SUCCEEDED)
        return seen

    assert asyncio.run(watch()) == [True]


def test_a_failed_async_step_ends_the_stream_with_the_error(workdir: Path) -> None:
    from jobtasks import async_explode

    pipeline = AsyncPipeline(steps=[AsyncPythonTask(name="boom", function=async_explode)])
    events: list[dict[str, Any]] = []

    async def follow() -> None:
        async for event in pipeline.execute_streaming(configuration_file=_config(workdir), run_id="bad"):
            events.append(event)

    with pytest.raises(ExecutionFailedError, match="run 'bad' failed; failed: boom"):
        asyncio.run(follow())
    ends = [e for e in events if e["e"] == "end"]
    assert ends and ends[-1]["error"] == "ValueError: async step failed"
    log = Path(ends[-1]["log"]).read_text()  # the user's frames, none of asyncio's
    assert "in async_explode" in log and "asyncio" not in log and "awaiting.py" not in log
    assert events[-1]["e"] == "run" and events[-1]["status"] == "failed"


def test_async_generator_step_returns_its_done_event(workdir: Path) -> None:
    from jobtasks import stream_tokens

    task = AsyncPythonTask(name="tokens", function=stream_tokens, returns=["text", "count"])
    result = AsyncPipeline(steps=[task]).execute(configuration_file=_config(workdir), parameters={"words": 2})
    assert result.parameters["text"] == "w0 w1" and result.parameters["count"] == 2
    log = FileRunLogStore(path=str(workdir / "runs")).load(result.run_id)
    attempt = log.steps[("tokens",)].attempts[-1]
    assert '{"type": "token", "text": "w1"}' in Path(str(attempt.log)).read_text()


def test_execute_async_awaits_the_result(workdir: Path) -> None:
    result = asyncio.run(_pipeline().execute_async(configuration_file=_config(workdir)))
    assert result.ok and result.parameters["size"] == len("hello world")


def test_streaming_script_prints_while_steps_print(tmp_path: Path) -> None:
    """runnable's example, as a script: events printed by the caller's loop while the run's
    steps print in their threads, the run recorded on disk (conveyor's default)."""
    (tmp_path / "flow.py").write_text(
        "import asyncio\n"
        "from conveyor import AsyncPipeline, AsyncPythonTask\n\n"
        "async def hi():\n    print('hi from the step')\n    return 1\n\n"
        "async def main():\n"
        "    pipeline = AsyncPipeline(steps=[AsyncPythonTask(name='hi', function=hi, returns=['x'])])\n"
        "    async for event in pipeline.execute_streaming(run_id='script'):\n        print(event['e'], event.get('status'))\n\n"
        "if __name__ == '__main__':\n    asyncio.run(main())\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "flow.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "hi from the step" in lines  # the step's own output, echoed as the run goes
    events = [line for line in lines if line != "hi from the step"]
    assert events == ["run running", "start None", "end succeeded", "run succeeded"]
    assert (tmp_path / ".conveyor" / "runs" / "script").is_dir()


@pytest.mark.parametrize("call", ["streaming", "async"])
def test_a_script_without_a_main_guard_runs_once(tmp_path: Path, call: str) -> None:
    """The step imports the script, whose top level calls asyncio.run(main()) again: that
    second call is recognised while its caller's stack still reaches the import (not later,
    in the run's thread, where the suspended coroutine's stack ends), and runs nothing."""
    use = (
        "    async for event in pipeline.execute_streaming():\n        print(event['e'], event.get('status'))\n"
        if call == "streaming"
        else "    print((await pipeline.execute_async()).status)\n"
    )
    (tmp_path / "flow.py").write_text(
        "import asyncio\n"
        "from conveyor import AsyncPipeline, AsyncPythonTask\n\n"
        "async def hi():\n    return 1\n\n"
        "async def main():\n"
        "    pipeline = AsyncPipeline(steps=[AsyncPythonTask(name='hi', function=hi, returns=['x'])])\n"
        + use
        + "\nasyncio.run(main())\n"
    )
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "flow.py"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "not run again" in done.stdout + done.stderr
    assert len(list((tmp_path / ".conveyor" / "runs").iterdir())) == 1

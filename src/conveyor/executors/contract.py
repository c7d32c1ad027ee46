"""The contract between an orchestrator's manifest and the pods it starts: the subcommands
a pod runs and where it leaves the small outputs the orchestrator reads. Written once, read
by the Argo renderer and by the pod commands."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PodContract:
    """What an orchestrator and a pod agree on: subcommands, and where small outputs go."""

    outputs_env: str = "CONVEYOR_OUTPUTS_DIR"
    outputs_dir: str = "/tmp/conveyor-outputs"
    run_start: str = "run-start"
    step: str = "execute-single-node"
    fan_out: str = "fan-out"
    fan_in: str = "fan-in"
    loop_check: str = "loop-check"
    run_end: str = "run-end"
    #: Outputs each subcommand writes, read by the orchestrator.
    outputs: tuple[tuple[str, tuple[str, ...]], ...] = (
        ("fan-out", ("count", "indices")),
        ("choose", ("branch",)),
        ("loop-check", ("again", "next")),
    )


POD_CONTRACT = PodContract()

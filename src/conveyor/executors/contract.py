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
    #: ``kind-verb VERB RUN STEP``: a kind's orchestrator-side verbs (a map's ``fan-out``).
    verb: str = "kind-verb"
    run_end: str = "run-end"
    #: Outputs ``execute-single-node`` writes, read by the orchestrator, by template kind
    #: (a kind's verbs declare theirs: :attr:`conveyor.graph.kinds.Kind.verbs`).
    outputs: tuple[tuple[str, tuple[str, ...]], ...] = (("choose", ("branch",)),)


POD_CONTRACT = PodContract()

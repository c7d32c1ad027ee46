"""``conveyor render argo`` and ``conveyor submit --to argo``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from conveyor.cli.errors import friendly
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from rich.table import Table

    from conveyor.executors.argo.client import ArgoServer
    from conveyor.executors.argo.config import ArgoConfig
    from conveyor.executors.argo.manifest import Kind, Manifest, WorkflowObject
    from conveyor.runlog.records import RunRecord


def _argo_config(config: Path | None) -> ArgoConfig:
    from conveyor.executors.argo.executor import ArgoExecutor
    from conveyor.executors.registry import build
    from conveyor.spec.errors import Issue, SpecError
    from conveyor.spec.load import load_config

    run_config = load_config(config)
    for note in run_config.notes:
        print(f"conveyor: note: {note}", file=sys.stderr)
    if run_config.executor.type != "argo":
        raise SpecError(
            [
                Issue(
                    "the config does not use the argo executor",
                    file=str(config) if config else None,
                    path=("executor", "type"),
                    expected="'argo'",
                    found=repr(run_config.executor.type),
                    hint="set executor: {type: argo, config: {image: ...}}",
                )
            ],
            "invalid config",
        )
    try:
        executor: ArgoExecutor = build("conveyor.executors", run_config.executor)
    except SpecError as exc:
        raise run_config.locate(exc) from None
    return executor.config


def manifest(file: Path, config: Path | None, params: Path | None, kind: Kind) -> Manifest:
    """The Argo manifest for a pipeline and config, with the file paths its pods will read.
    The parameters file's values become the workflow's arguments (defaults a submitter can
    change); only the file counts, not this machine's CONVEYOR_PRM_ variables."""
    from conveyor.executors.argo.render import Files, render
    from conveyor.spec.load import load_parameters, load_pipeline

    loaded = load_pipeline(file)
    argo = _argo_config(config)
    files = Files(
        pipeline=argo.pipeline_file or str(file),
        config=argo.config_file or (str(config) if config else "config.yaml"),
        parameters=argo.parameters_file,
    )
    values = load_parameters(params, environ={}) if params else {}
    return render(loaded, argo, files, kind, values, str(params) if params else None)


def dump(doc: Manifest) -> str:
    """YAML in the order the manifest was built (golden files diff well)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False, width=1000)


@friendly
def render_argo(
    file: Path,
    config: Path | None,
    params: Path | None,
    output: Path | None,
    template: bool,
    validate: bool = False,
) -> int:
    """``conveyor render argo``: write the manifest to stdout or a file. With ``validate``, a
    manifest Argo's schemas refuse is not written: its problems are shown, located in it (exit 2)."""
    doc = manifest(file, config, params, "WorkflowTemplate" if template else "Workflow")
    if validate:
        from conveyor.executors.argo.validate import check_manifest

        check_manifest(doc, f"{file} as a {doc['kind']}")
    text = dump(doc)
    if output is None:
        sys.stdout.write(text)
    else:
        try:
            output.write_text(text)
        except OSError as exc:
            raise ConveyorError(f"--output: cannot write {str(output)[:200]!r}: {exc.strerror}") from None
        print(f"wrote {doc['kind']} to {output}", file=sys.stderr)
    return 0


def namespace_of(config: ArgoConfig, namespace: str | None) -> str:
    """Where a run's workflow lives: --namespace, else the config's namespace if it names
    one, else $ARGO_NAMESPACE (the argo CLI's variable), else "default"."""
    import os

    if namespace:
        return namespace
    if "namespace" in config.model_fields_set:
        return config.namespace
    return os.environ.get("ARGO_NAMESPACE") or config.namespace


def _server(
    config: ArgoConfig, server: str | None, token: str | None, namespace: str | None, insecure: bool
) -> ArgoServer:
    from conveyor.executors.argo.client import ArgoServer

    return ArgoServer(server, token, namespace_of(config, namespace), insecure or None)


@friendly
def submit(
    file: Path,
    config: Path | None,
    params: Path | None,
    run_id: str | None,
    server: str | None,
    token: str | None,
    namespace: str | None,
    insecure: bool,
    wait: bool = False,
) -> int:
    """``conveyor submit --to argo``: render, submit to the Argo Server, optionally follow."""
    from conveyor.executors.argo.client import ArgoError
    from conveyor.runlog.records import check_run_id, new_run_id

    run_id = run_id or new_run_id()
    try:
        check_run_id(run_id)
    except ValueError as exc:
        raise ConveyorError(str(exc)) from None
    doc = manifest(file, config, params, "Workflow")
    if doc["kind"] == "CronWorkflow":
        # Argo starts a CronWorkflow's runs itself, each with a name of its own: not one run.
        raise ConveyorError(
            "the config sets executor.config.schedule, which makes a CronWorkflow, not one run: "
            "write it with 'conveyor render argo' and create it with 'argo cron create', "
            "or remove the schedule to submit one run"
        )
    # The workflow is named after the run, so that run ids find workflows.
    name = run_id.lower().replace("_", "-").replace(".", "-")
    doc["metadata"].pop("generateName", None)
    doc["metadata"] = {"name": name, **doc["metadata"]}
    for argument in doc["spec"]["arguments"]["parameters"]:
        if argument["name"] == "run_id":  # the parameters' arguments keep their values
            argument["value"] = run_id
    argo_config = _argo_config(config)
    doc["metadata"]["namespace"] = namespace_of(argo_config, namespace)
    argo = _server(argo_config, server, token, namespace, insecure)
    try:
        created = argo.submit(doc)
    except ArgoError as exc:
        if not (wait and " 409 " in str(exc)):
            raise
        created = {"metadata": {"name": name}}  # submitted before (a reclaimed run): follow it
        print(f"workflow {name} exists already: following it")
    meta = created.get("metadata", {})
    where = f"{meta.get('namespace', argo.namespace)}/{meta.get('name', name)}"
    print(f"submitted run {run_id} as workflow {where}")
    return follow(argo, name) if wait else 0


def follow(argo: ArgoServer, name: str, poll: float = 2.0) -> int:
    """Wait for a workflow to end; exit 0 only if it succeeded."""
    import time

    while True:
        phase = argo.get(name).get("status", {}).get("phase") or "Pending"
        if phase in ("Succeeded", "Failed", "Error"):
            print(f"workflow {name}: {phase}")
            return 0 if phase == "Succeeded" else 1
        time.sleep(poll)


def workflow_name(run_id: str) -> str:
    """The workflow a run id names (Argo's names are lower-case DNS labels)."""
    return run_id.lower().replace("_", "-").replace(".", "-")


def status_table(workflow: WorkflowObject, run: RunRecord | None) -> Table:
    """A workflow's pods and phases, with the run log's own status in the title."""
    from rich.table import Table

    status = workflow.get("status", {})
    title = f"workflow {workflow.get('metadata', {}).get('name')}: {status.get('phase', 'Pending')}"
    if run is not None:
        title += f"; run log: {run.status}"
    table = Table(title=title, title_justify="left")
    for column in ("step", "type", "phase", "started", "finished", "message"):
        table.add_column(column)
    nodes = sorted((status.get("nodes") or {}).values(), key=lambda n: n.get("startedAt") or "")
    for node in nodes:
        if node.get("type") not in {"Pod", "Retry", "Suspend"}:
            continue
        table.add_row(
            str(node.get("displayName", node.get("name", ""))),
            str(node.get("type", "")),
            str(node.get("phase", "")),
            str(node.get("startedAt", "") or ""),
            str(node.get("finishedAt", "") or ""),
            str(node.get("message", "") or ""),
        )
    return table

"""The work behind ``conveyor execute|validate|graph|retry|schema``."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.cli.errors import EXIT_FAILED, friendly
from conveyor.cli.style import escape
from conveyor.errors import ConveyorError

if TYPE_CHECKING:
    from conveyor.cli.progress import ConsoleProgress
    from conveyor.executors.run import RunResult
    from conveyor.runlog.records import StepRecord
    from conveyor.spec.config import RunConfig
    from conveyor.spec.load import LoadedPipeline


def _finish(
    result: RunResult,
    progress: ConsoleProgress,
    config: Path | None,
    steps: dict[tuple[str, ...], StepRecord] | None = None,
) -> int:
    """The summary table and the exit code. ``steps``: the run's whole record, for a resumed
    run (this process saw only its own attempts; the table must agree with ``runs show``)."""
    from conveyor.cli.progress import print_summary

    run = result.run
    print_summary(run, steps if steps is not None else progress.records)
    if result.ok:
        return 0
    where = f" -c {config}" if config else ""
    progress.console.print(
        f"[red]run {run.run_id} {run.status}[/]; inspect it with: conveyor runs show {run.run_id}{where}",
        soft_wrap=True,
    )
    return EXIT_FAILED


def load_inputs(
    file: Path, config: Path | None, params: Path | None, param: list[str] | None = None
) -> tuple[LoadedPipeline, RunConfig, dict[str, object]]:
    """The pipeline, config and parameters (``param``: ``--param`` options, which win over
    the file's); every problem of every file reported at once."""
    from conveyor.spec.errors import SpecError, sort_issues
    from conveyor.spec.load import load_config, load_parameters, load_pipeline, parse_params

    errors: list[SpecError] = []

    def attempt(load: Callable[[], Any]) -> Any:
        try:
            return load()
        except SpecError as exc:
            errors.append(exc)
            return None

    loaded = attempt(lambda: load_pipeline(file))
    run_config = attempt(lambda: load_config(config))
    parameters = attempt(lambda: load_parameters(params, overrides=parse_params(param or [])))
    if loaded is not None and run_config is not None and run_config.executor.type == "mocked":
        attempt(lambda: _check_patches(loaded, run_config))
    if len(errors) == 1:
        raise errors[0]
    if errors:
        titles = "; ".join(dict.fromkeys(e.title for e in errors))
        raise SpecError(sort_issues([i for e in errors for i in e.issues]), titles)
    return loaded, run_config, parameters


def check_backends(run_config: RunConfig, connect: bool = False) -> None:
    """Every backend the config names, checked without building it (``connect``: reached)."""
    from conveyor.executors.registry import build
    from conveyor.spec.errors import SpecError

    for group, backend in (
        ("conveyor.run_log_stores", run_config.run_log_store),
        ("conveyor.executors", run_config.executor),
        ("conveyor.catalogs", run_config.catalog),
        ("conveyor.secrets", run_config.secrets),
    ):
        try:
            build(group, backend, check_only=True, connect=connect)
        except SpecError as exc:
            raise run_config.locate(exc) from None


def check_code(
    loaded: LoadedPipeline, run_config: RunConfig, parameters: dict[str, object], known: bool = True
) -> None:
    """Import the pipeline's functions and check what reaches them (``conveyor.step.preflight``);
    a config resuming another run (runnable's ``retry``) starts from that run's parameters."""
    from conveyor.step.preflight import preflight

    report = preflight(loaded, parameters, known=known and not run_config.retry_of)
    for note in report.notes:
        print(f"conveyor: note: {note}", file=sys.stderr)
    report.raise_errors()


def _check_patches(loaded: LoadedPipeline, run_config: RunConfig) -> None:
    """The mocked executor's patches name tasks of this pipeline (located in the config)."""
    from conveyor.executors.mocked import check_patches
    from conveyor.spec.errors import SpecError

    patches = run_config.executor.config.get("patches") or {}
    try:
        check_patches(patches if isinstance(patches, dict) else {}, loaded.pipeline.dag)
    except SpecError as exc:
        raise run_config.locate(exc) from None


@friendly
def execute(
    file: Path,
    config: Path | None,
    params: Path | None,
    run_id: str | None,
    quiet: bool,
    cache: str = "use",
    imports: bool = True,
    param: list[str] | None = None,
    tag: str | None = None,
) -> int:
    """``conveyor execute``: run a pipeline with live progress; exit 0 only if it succeeded;
    ``tag`` is kept in the run's record (``runs list --tag`` and the UI filter by it)."""
    from conveyor.cli.startup import startup

    with startup():  # conveyor's own start-up; the user's modules are imported after it
        from conveyor.cli.progress import ConsoleProgress
        from conveyor.executors.run import execute as run_pipeline
        from conveyor.executors.run import open_store
        from conveyor.step.cache import CacheMode
        from conveyor.step.commands import running

        loaded, run_config, parameters = load_inputs(file, config, params, param)
        # Before anything is recorded: a typo must not show only after earlier steps ran.
        # Mocked runs call no commands; argo runs none here (and refuses below).
        checked = imports and run_config.executor.type not in ("mocked", "argo")
        if checked:
            check_backends(run_config)  # a config mistake first: it is the first a run would meet
    if checked:
        check_code(loaded, run_config, parameters)
    _check_command_modules(loaded, run_config)
    store = open_store(run_config)
    progress = ConsoleProgress(quiet=quiet)  # its console made when something is said
    with running():  # an SDK script imported by its steps does not run its pipeline again
        result = run_pipeline(
            loaded,
            run_config,
            parameters,
            run_id=run_id,
            subscribers=[progress],
            store=store,
            config_file=str(config) if config else None,
            capture_fds=True,
            cache=CacheMode(cache),
            tag=tag,
        )
    return _finish(result, progress, config)


#: The modules a command type needs where the run is (each brought by an extra).
COMMAND_TYPE_MODULES = {"notebook": ("nbformat", "nbclient")}


def _check_command_modules(loaded: LoadedPipeline, run_config: RunConfig) -> None:
    """Refuse a local run whose tasks need a module that is not installed, before any step
    runs (the error names the extra): not a run that fails halfway with a step error."""
    from importlib.util import find_spec

    from conveyor.spec.models import walk_nodes

    if run_config.executor.type != "local":  # other executors run commands elsewhere
        return
    types = {getattr(node, "command_type", None) for node in walk_nodes(loaded.pipeline.dag)}
    for command_type, modules in COMMAND_TYPE_MODULES.items():
        for module in modules if command_type in types else ():
            try:
                found = find_spec(module) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                missing = ModuleNotFoundError(f"No module named '{module}'", name=module)
                raise ConveyorError(
                    f"pipeline '{loaded.name}' has {command_type} tasks; they need '{module}'"
                ) from missing


@friendly
def retry(run_id: str, config: Path | None, file: Path | None, quiet: bool, force: bool = False) -> int:
    """``conveyor retry``: resume a run, reusing every succeeded step."""
    from conveyor.cli.progress import ConsoleProgress
    from conveyor.executors.run import open_store, resume
    from conveyor.spec.load import load_config

    run_config = load_config(config)
    store = open_store(run_config)
    progress = ConsoleProgress(quiet=quiet)
    _say_recorded_definition(store, run_id, file, progress)
    result = resume(
        run_id,
        run_config,
        str(file) if file else None,
        subscribers=[progress],
        store=store,
        force=force,
        capture_fds=True,
    )
    from conveyor.runlog.endings import settle

    return _finish(result, progress, config, settle(store.load(run_id)).steps)


def _say_recorded_definition(store: Any, run_id: str, file: Path | None, progress: ConsoleProgress) -> None:
    """A run built with the SDK has no file to compare with: say that it resumes from the
    definition its run log keeps, so that an edit of the script's pipeline is not taken
    for one that counts (the step functions' code is the script's as it is now)."""
    from conveyor.runlog.base import RunNotFoundError

    if file is not None:
        return
    try:
        recorded = store.load_record(run_id).pipeline_file or ""
    except (RunNotFoundError, OSError, ValueError):
        return  # resume says why
    if recorded.startswith("<"):
        progress.console.print(
            f"[dim]run {escape(run_id)} was built in Python: it resumes from the pipeline its run log "
            "keeps; an edit of the pipeline in the script needs a new run (its functions' code is "
            "used as it is now)[/]"
        )


@friendly
def validate(
    file: Path,
    config: Path | None,
    connect: bool = False,
    params: Path | None = None,
    imports: bool = True,
    param: list[str] | None = None,
) -> int:
    """``conveyor validate``: every problem of a pipeline (and config) at once; unless not
    ``imports``, its functions imported and their arguments checked (against ``params``
    when given, else missing ones are notes)."""
    from conveyor.cli.startup import startup

    with startup():  # not the backend checks: ``--check`` may start clients that use threads
        from conveyor.spec.models import walk_nodes

        loaded, run_config, parameters = load_inputs(file, config, params, param)
    if config is not None:
        check_backends(run_config, connect)
    if run_config.executor.type == "argo":
        from conveyor.executors.argo.config import ArgoConfig
        from conveyor.executors.argo.rules import check_pipeline

        # What Argo would rewrite (`{{` in names) or Kubernetes refuse; named overrides the
        # config must define.
        try:
            argo: ArgoConfig | None = ArgoConfig.model_validate(run_config.executor.config)
        except ValueError:
            argo = None  # the config's own problems are reported by check_backends
        check_pipeline(loaded, argo)
    if imports and run_config.executor.type != "mocked":
        check_code(loaded, run_config, parameters, known=params is not None)
    for note in run_config.notes:
        print(f"conveyor: note: {note}", file=sys.stderr)
    steps = sum(1 for _ in walk_nodes(loaded.pipeline.dag))
    print(
        f"{file}: valid pipeline '{loaded.name}' ({steps} steps)"
        + (f", config {config} valid" if config else "")
    )
    return 0


@friendly
def graph(file: Path, fmt: str) -> int:
    """``conveyor graph``: the pipeline as a Mermaid or dot diagram."""
    from conveyor.graph.diagram import dot, mermaid
    from conveyor.spec.errors import Issue, SpecError
    from conveyor.spec.load import load_pipeline

    renderers = {"mermaid": mermaid, "dot": dot}
    if fmt not in renderers:
        raise SpecError(
            [Issue("unknown format", path=("--format",), expected="mermaid or dot", found=repr(fmt))],
            "invalid option",
        )
    sys.stdout.write(renderers[fmt](load_pipeline(file).pipeline.dag))
    return 0


def schema(plugins: bool = True) -> int:
    """``conveyor schema``: the JSON Schema of the pipeline format, for editors: with the
    kinds of the installed plugins (what this installation accepts), or built-in only."""
    from conveyor.spec.schema import pipeline_schema

    print(json.dumps(pipeline_schema(plugins=plugins), indent=2))
    return 0


@friendly
def partitions(file: Path, step: str, params: Path | None, show: int) -> int:
    """Preview a partitioned map: list and group its source without running anything."""
    from rich.table import Table

    from conveyor.graph.replay import node_at
    from conveyor.spec.errors import Issue, SpecError
    from conveyor.spec.load import load_parameters, load_pipeline
    from conveyor.spec.models import MapNode
    from conveyor.step.partitions import group, list_source

    loaded = load_pipeline(file)
    node = node_at(loaded.pipeline, [p for p in step.split("/") if p])
    if not isinstance(node, MapNode) or node.partition is None:
        raise SpecError(
            [
                Issue(
                    f"'{step}' is not a partitioned map",
                    file=str(file),
                    path=("dag", "steps", step),
                    expected="a map with a 'partition' spec",
                    found=str(getattr(node, "type", "?")),
                )
            ],
            "nothing to preview",
        )
    spec = node.partition
    values = load_parameters(params).get(spec.parameter) if spec.parameter else None
    started = time.perf_counter()
    groups = group(list_source(spec, values), spec)
    took = time.perf_counter() - started
    sizes = sorted(len(g) for g in groups)
    total = sum(sizes)
    from conveyor.cli.richconsole import Console

    console = Console()
    console.print(
        f"[bold]{step}[/]: {total} items in {len(groups)} partitions ({spec.strategy}) "
        f"from {spec.source or 'parameter ' + str(spec.parameter)}, listed in {took:.2f}s"
    )
    if sizes:
        console.print(f"  partition sizes: min {sizes[0]}, median {sizes[len(sizes) // 2]}, max {sizes[-1]}")
    table = Table()
    for column in ("partition", "items", "bytes", "first items"):
        table.add_column(column)
    for index, members in enumerate(groups[:show]):
        size = sum(m.size or 0 for m in members)
        table.add_row(str(index), str(len(members)), f"{size:,}", "\n".join(m.url for m in members[:3]))
    console.print(table)
    return 0

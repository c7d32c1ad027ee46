"""Options and arguments shared by the command modules (one definition, one help text)."""

from pathlib import Path
from typing import Annotated

import typer

from conveyor.cli import params as check

DbOpt = Annotated[str | None, typer.Option("--db", help="Database URL (default: SQLite in the data dir).")]

PipelineOpt = Annotated[Path, typer.Option("--file", "-f", help="The pipeline YAML file.")]
ConfigOpt = Annotated[
    Path | None, typer.Option("--config-file", "--config", "-c", help="The run config YAML.")
]
ParamsOpt = Annotated[
    Path | None, typer.Option("--parameters-file", "--params", "-p", help="Initial parameters YAML.")
]
RunIdArg = Annotated[str, typer.Argument(help="The run id.", callback=check.run_id)]
RunIdOpt = Annotated[
    str | None, typer.Option("--run-id", help="Name the run (default: generated).", callback=check.new_run_id)
]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A parameter as NAME=VALUE, the value read as YAML (3 a number, [1, 2] a list); "
        "repeatable; wins over -p and CONVEYOR_PRM_ values.",
    ),
]

ServerOpt = Annotated[
    str | None, typer.Option("--server", help="Argo Server (default: $ARGO_SERVER).", callback=check.url)
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="Bearer token (default: $ARGO_TOKEN).", callback=check.token)
]
NamespaceOpt = Annotated[
    str | None, typer.Option("--namespace", "-n", help="Kubernetes namespace.", callback=check.namespace)
]

StepArg = Annotated[str, typer.Argument(help="The step path, parts joined by '/' (map items by index).")]

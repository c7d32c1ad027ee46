"""Notebook tasks (extra ``conveyor[notebook]``): parameters cell in, namespace values out."""

from __future__ import annotations

import os
import pickle
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from conveyor.step.request import CommandResult, StepRequest

MISSING = "__conveyor_missing__"


def _literal(value: Any) -> str | None:
    """Python source for a JSON-like value, or None if it needs pickling."""
    if value is None or isinstance(value, bool | int | float | str):
        return repr(value)
    if isinstance(value, list):
        parts = [_literal(v) for v in value]
        return None if None in parts else "[" + ", ".join(p for p in parts if p) + "]"
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = [(repr(k), _literal(v)) for k, v in value.items()]
        if any(v is None for _, v in items):
            return None
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    return None


#: The kernel's own start-up chatter (ipykernel's "running over TCP without encryption",
#: debugpy's "frozen modules" warning) is about Jupyter, not the user's notebook: said once
#: per kernel, it came three times per map item. Errors of the kernel still show.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=ERROR"]
KERNEL_ENV = {"PYDEVD_DISABLE_FILE_VALIDATION": "1"}


ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _cell_error(exc: Exception) -> str:
    """One line saying what failed in the notebook: the error, its value, and the cell line
    it was raised at (IPython's ``Cell In[N], line M`` and ``---->`` marks), without the
    terminal colours the kernel's traceback carries."""
    text = ANSI.sub("", str(exc)).strip()
    ename, evalue = getattr(exc, "ename", None), getattr(exc, "evalue", None)
    if not isinstance(ename, str):
        return f"{type(exc).__name__}: {text.splitlines()[-1] if text else ''}".strip()
    message = ANSI.sub("", f"{ename}: {evalue}" if evalue else ename).strip()
    cells = re.findall(r"Cell In\[(\d+)\], line (\d+)", text)
    marks = re.findall(r"^\s*-+>\s*\d+\s+(.*\S)", text, re.M)
    if cells:
        message += f" (at Cell In[{cells[-1][0]}], line {cells[-1][1]}"
        message += f": {marks[-1].strip()[:200]})" if marks else ")"
    return message


def _import_nb() -> tuple[Any, Any]:
    try:
        import nbclient
        import nbformat
    except ImportError:
        raise ImportError(
            "notebook tasks need the notebook extra: pip install 'conveyor[notebook]'"
        ) from None
    return nbformat, nbclient


def run_notebook(request: StepRequest, timeout: float | None = None) -> CommandResult:
    """Execute the notebook with a parameters cell; returns are variables left in it."""
    try:
        nbformat, nbclient = _import_nb()
    except ImportError as exc:
        print(f"conveyor: {exc}", file=sys.stderr)
        return CommandResult(error=str(exc))
    source = (request.workdir / request.node.command).resolve()
    if not source.exists():
        return CommandResult(error=f"notebook not found: {source}")
    nb = nbformat.read(str(source), as_version=4)
    with tempfile.TemporaryDirectory(prefix="conveyor-nb-") as tmp:
        pickled = Path(tmp) / "params.pickle"
        out = Path(tmp) / "returns.pickle"
        lines = ["# Parameters injected by conveyor"]
        rest = {}
        for name, value in request.params.items():
            if not name.isidentifier():
                continue
            literal = _literal(value)
            if literal is None:
                rest[name] = value
            else:
                lines.append(f"{name} = {literal}")
        if rest:
            pickled.write_bytes(pickle.dumps(rest))
            lines.append(
                f"import pickle as _p; globals().update(_p.loads(open({str(pickled)!r}, 'rb').read()))"
            )
        cell = nbformat.v4.new_code_cell("\n".join(lines))
        cell.metadata["tags"] = ["injected-parameters"]
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
        nb.cells.insert(tagged[0] + 1 if tagged else 0, cell)
        names = [r.name for r in request.node.returns]
        collect = (
            "import pickle as _p\n"
            f"with open({str(out)!r}, 'wb') as _f: _p.dump("
            f"{{_n: globals().get(_n, {MISSING!r}) for _n in {names!r}}}, _f)"
        )
        nb.cells.append(nbformat.v4.new_code_cell(collect))
        client = nbclient.NotebookClient(
            nb,
            timeout=timeout,
            kernel_name="python3",
            resources={"metadata": {"path": str(request.workdir)}},
            extra_arguments=list(KERNEL_ARGUMENTS),
        )
        error = None
        try:
            client.execute(env={**os.environ, **KERNEL_ENV})
        except Exception as exc:
            error = _cell_error(exc)
        for c in nb.cells:
            for output in c.get("outputs", []):
                if output.get("output_type") == "stream":
                    sys.stdout.write(output.get("text", ""))
        nb.cells.pop()  # the collecting cell is ours, not the user's
        artifacts = {f"{source.stem}.executed.ipynb": nbformat.writes(nb).encode()}
        if error:
            return CommandResult(error=error, artifacts=artifacts)
        values = pickle.loads(out.read_bytes()) if out.exists() else {}
    # `is`-free on purpose: a numpy array or DataFrame must never be compared with `==`.
    missing = [n for n in names if isinstance(values.get(n), str) and values[n] == MISSING]
    if missing:
        return CommandResult(error=f"the notebook did not define {', '.join(missing)}", artifacts=artifacts)
    return CommandResult(values=values, artifacts=artifacts)

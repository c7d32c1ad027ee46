"""Start-up cost side by side: conveyor against Kedro 1.7, in one run, whole processes.

Usage: python benchmarks/startup.py [--runs 9] [--kedro-venv DIR]

Measures, interleaved so that machine noise hits every command alike:
- the venv's own ``python -c pass`` (the floor);
- ``conveyor --help``;
- a chain of 50 no-op tasks: ``conveyor execute`` with a file run log store, and Kedro's
  ``SequentialRunner`` over 50 no-op nodes (Kedro keeps results in memory and logs each node).
Both pipelines run with a pseudo-terminal as their console, so each shows its live progress
as a user sees it. Kedro 1.7 is installed into its own venv on first use. Prints medians and
the ratios the start-up issue sets (chain: at most 0.75 of Kedro; help: at most 4 x python).
"""

from __future__ import annotations

import argparse
import os
import pty
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
KEDRO = "kedro==1.7.0"
KEDRO_CHAIN = """
import sys
from kedro.io import DataCatalog
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner


def noop(x=None):
    return 1


nodes = [node(noop, inputs=None, outputs="d0", name="s0")]
nodes += [node(noop, inputs=f"d{i - 1}", outputs=f"d{i}", name=f"s{i}") for i in range(1, int(sys.argv[1]))]
SequentialRunner().run(Pipeline(nodes), DataCatalog())
"""


def kedro_python(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        print(f"installing {KEDRO} into {venv} (once)", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", KEDRO], check=True)
    return python


def on_terminal(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Wall-clock seconds of one run whose stdout and stderr are a pseudo-terminal."""
    master, slave = pty.openpty()
    drained = threading.Thread(target=_drain, args=(master,), daemon=True)
    drained.start()
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, stdout=slave, stderr=slave, stdin=subprocess.DEVNULL)
    took = time.perf_counter() - started
    os.close(slave)
    drained.join(timeout=5)
    os.close(master)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited with {proc.returncode}")
    return took


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument(
        "--kedro-venv", type=Path, default=Path.home() / ".cache" / "conveyor-bench" / "kedro-1.7"
    )
    parser.add_argument(
        "--src", type=Path, help="Measure the conveyor in this source tree (an older checkout)."
    )
    parser.add_argument(
        "--entry", default="conveyor.cli:main", help="Its command's entry point, MODULE:FUNCTION."
    )
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from core import chain

    kedro = kedro_python(args.kedro_venv)
    conveyor = shutil.which("conveyor", path=str(Path(sys.executable).parent)) or "conveyor"
    command = [conveyor]
    if args.src is not None:
        module, _, function = args.entry.partition(":")
        code = "\n".join(
            [
                f"import sys; sys.path.insert(0, {str(args.src)!r})",
                f"from {module} import {function}",
                f"{function}()",
            ]
        )
        command = [sys.executable, "-c", code]
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        (work / "chain.yaml").write_text(chain(50))
        (work / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
        (work / "kedro_chain.py").write_text(KEDRO_CHAIN)
        env = dict(os.environ, PYTHONPATH=str(HERE), COLUMNS="120")
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "conveyor --help": [*command, "--help"],
            "conveyor chain50": [*command, "execute", "-f", "chain.yaml", "-c", "config.yaml"],
            "kedro chain50": [str(kedro), "kedro_chain.py", "50"],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        for argv in commands.values():  # warm the file cache once
            on_terminal(argv, work, env)
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(on_terminal(argv, work, env))
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.runs} interleaved runs, medians")
    for name, value in med.items():
        print(f"  {name:18s} {value:.3f}s  (min {min(times[name]):.3f}s)")
    print(f"chain50: conveyor / kedro = {med['conveyor chain50'] / med['kedro chain50']:.2f} (at most 0.75)")
    help_ratio = med["conveyor --help"] / med["python -c pass"]
    print(f"--help:  conveyor / python -c pass = {help_ratio:.1f} (at most 4)")


if __name__ == "__main__":
    main()

"""Argo figures: rendering a 5,000-step pipeline, a map over 100,000 items, and the start-up
of execute-single-node for a no-op step (paid once per pod).

Usage: python benchmarks/argo.py [--runs 5]
Each figure is the median wall-clock time of several runs of the real command in a fresh
process.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = (
    "executor: {type: argo, config: {image: conveyor:bench}}\n"
    "run_log_store: {type: file, config: {path: runs}}\n"
)


def conveyor(*args: str) -> list[str]:
    return [str(Path(sys.executable).parent / "conveyor"), *args]


def timed(argv: list[str], cwd: Path, runs: int) -> tuple[float, str]:
    times, out = [], ""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed: {proc.stderr[-1000:]}")
        out = proc.stdout
    return statistics.median(times), out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "argo.yaml").write_text(CONFIG)
        lines = ["dag:", "  start_at: s0", "  steps:"]
        for i in range(5000):
            nxt = f"s{i + 1}" if i < 4999 else "success"
            lines.append(f"    s{i}: {{command: bench_tasks.noop, next: {nxt}}}")
        (work / "chain.yaml").write_text("\n".join(lines) + "\n")
        took, out = timed(conveyor("render", "argo", "-f", "chain.yaml", "-c", "argo.yaml"), work, runs)
        size = len(out) / 1024
        print(f"render 5,000-step chain: median {took:.3f}s over {runs} runs; manifest {size:.0f} KiB")

        (work / "map.yaml").write_text(
            "dag:\n  start_at: fan\n  steps:\n    fan:\n      type: map\n      iterate_on: xs\n"
            "      iterate_as: x\n"
            "      branch: {start_at: t, steps: {t: {command: bench_tasks.touch, next: success}}}\n"
            "      next: success\n"
        )
        (work / "params.yaml").write_text("xs: [" + ", ".join(str(i) for i in range(100_000)) + "]\n")
        # 100,000 items are too large for the workflow's arguments: the pods read them from a file.
        (work / "pods.yaml").write_text(
            CONFIG.replace("image: conveyor:bench", "image: conveyor:bench, parameters_file: params.yaml")
        )
        took, out = timed(conveyor("render", "argo", "-f", "map.yaml", "-c", "pods.yaml"), work, runs)
        print(f"render map over 100,000 items: median {took:.3f}s; manifest {len(out) / 1024:.1f} KiB")

        (work / "one.yaml").write_text(
            "dag:\n  start_at: a\n  steps:\n    a: {command: bench_tasks.noop, next: success}\n"
        )
        subprocess.run(
            conveyor("run-start", "bench", "-f", "one.yaml", "-c", "argo.yaml"),
            cwd=work,
            check=True,
            capture_output=True,
        )
        took, _ = timed(
            conveyor("execute-single-node", "bench", "a", "-f", "one.yaml", "-c", "argo.yaml"), work, runs
        )
        print(f"execute-single-node, no-op step: median {took:.3f}s over {runs} runs (whole process)")


if __name__ == "__main__":
    main()

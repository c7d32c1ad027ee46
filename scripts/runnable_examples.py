"""Run runnable's SDK examples with conveyor, the import being the only change.

What a team moving from runnable is told (docs/how-to/from-runnable.md) is that its SDK
scripts run once ``from runnable import`` reads ``from conveyor import`` (and
``from runnable.sdk import`` reads ``from conveyor.sdk import``). This checks it on
runnable's own examples: it extracts ``examples/`` from a git copy of runnable, rewrites
those two import forms and nothing else, and runs every SDK example (a ``.py`` file that
imports runnable and has a ``main()`` or calls ``.execute(``) as a user would, ``python
examples/GROUP/NAME.py``, each in a fresh copy of the tree as working directory, with a
timeout. The environment is what runnable's own test harness
(``tests/test_pipeline_examples.py``) sets: ``RUNNABLE_PRM_envvar`` and ``FIX_RANDOM_TOSS``;
the tree's root is on ``PYTHONPATH`` as pytest puts it there, so ``examples.common.functions``
imports.

An example runnable's tests expect to fail (its ``fails`` flag there) must exit non-zero;
every other one must exit 0. A retry example (``09-retry/``) is run as runnable's
``tests/test_retries.py`` runs it: once with ``should_pass=false`` and ``RUNNABLE_RUN_ID``
(it must fail), then in the same folder with ``should_pass=true`` and
``RUNNABLE_RETRY_RUN_ID`` (the run is resumed: it must exit 0, and no second run may have
been recorded). It prints a table (example,
exit code, expected, first error line) and the count, and exits 1 if any example did not do
what was expected. An example that needs a package not installed here (torch, sklearn...)
is marked ``n/a`` and counted apart.

    python scripts/runnable_examples.py [--repo GIT_DIR] [--only SUBSTRING] [--timeout S]
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REPO = Path("/work/.mirror/AstraZeneca+runnable/repo")
#: The only rewrite: runnable's two SDK import forms, as users are told to change them.
IMPORTS = [
    (re.compile(r"^(\s*)from runnable\.sdk import ", re.M), r"\1from conveyor.sdk import "),
    (re.compile(r"^(\s*)from runnable import ", re.M), r"\1from conveyor import "),
]
#: What runnable's test harness puts in the environment of every example.
HARNESS_ENV = {"RUNNABLE_PRM_envvar": "from env", "FIX_RANDOM_TOSS": "heads"}
HARNESS_TESTS = ("tests/test_pipeline_examples.py", "tests/test_job_examples.py")
#: runnable's retry scenarios: each example fails once, then is retried in place and passes.
RETRY_TESTS = "tests/test_retries.py"
RETRY_FOLDER = "09-retry/"
#: Where runs are recorded with no config (conveyor's default): one folder per run.
RUNS = Path(".conveyor/runs")


@dataclass
class Phase:
    """One run of an example: what its environment adds, and whether it should fail."""

    env: dict[str, str]
    should_fail: bool


@dataclass
class Outcome:
    """How one example ended, against what runnable's tests expect of it."""

    example: str
    code: int | None
    expected: str
    ok: bool
    error: str
    seconds: float

    @property
    def missing(self) -> str | None:
        """A third-party module the example needs and this machine lacks (torch...)."""
        found = re.search(r"ModuleNotFoundError: No module named '([\w.]+)'", self.error)
        if found and found.group(1).split(".")[0] not in ("conveyor", "examples"):
            return found.group(1).split(".")[0]
        return None


def extract(repo: Path, rev: str, into: Path) -> None:
    """``examples/`` and runnable's example tests at ``rev``, written under ``into``."""
    archive = subprocess.run(
        ["git", f"--git-dir={repo}", "archive", "--format=tar", rev, "examples", *HARNESS_TESTS, RETRY_TESTS],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")


def rewrite_imports(tree: Path) -> int:
    """Rewrite runnable's SDK imports in every ``.py`` under ``tree``; the files changed."""
    changed = 0
    for path in sorted(tree.rglob("*.py")):
        text = path.read_text()
        new = text
        for pattern, replacement in IMPORTS:
            new = pattern.sub(replacement, new)
        if new != text:
            path.write_text(new)
            changed += 1
    return changed


def sdk_examples(tree: Path) -> list[str]:
    """The SDK examples: files that import runnable and define ``main()`` or call ``.execute(``
    (names relative to ``examples/``, without ``.py``)."""
    found = []
    for path in sorted((tree / "examples").rglob("*.py")):
        text = path.read_text()
        if re.search(r"^\s*from runnable(\.sdk)? import ", text, re.M) and (
            re.search(r"^def main\(|^async def main\(", text, re.M) or ".execute(" in text
        ):
            found.append(str(path.relative_to(tree / "examples").with_suffix("")))
    return found


def expected_failures(tree: Path) -> set[str]:
    """Examples runnable's own tests expect to raise: the ``fails`` flag of their tables,
    ``(file, no_yaml, fails, ...)`` for pipelines and ``(file, should_fail)`` for async ones."""
    failing: set[str] = set()
    for name in HARNESS_TESTS:
        path = tree / name
        if not path.exists():
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Tuple) or len(node.elts) < 2:
                continue
            values = [e.value if isinstance(e, ast.Constant) else None for e in node.elts]
            if not (isinstance(values[0], str) and "/" in values[0]):
                continue
            if len(values) >= 3 and isinstance(values[1], bool) and isinstance(values[2], bool):
                fails = values[2]
            elif len(values) == 2 and isinstance(values[1], bool):
                fails = values[1]
            else:
                continue
            if fails:
                failing.add(values[0])
    return failing


def retry_scenarios(tree: Path) -> dict[str, tuple[dict[str, str], dict[str, str]]]:
    """runnable's retry tests, by example: the environment of the first run and of the retry
    (the first row of each example in ``tests/test_retries.py``)."""
    path = tree / RETRY_TESTS
    found: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
    if not path.exists():
        return found
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Tuple) and len(node.elts) == 4:
            try:
                module, _step, first, retry = ast.literal_eval(node)
            except ValueError:
                continue
            if isinstance(module, str) and module.startswith("examples/"):
                found.setdefault(module.removeprefix("examples/"), (first, retry))
    return found


def phases(
    example: str, failing: set[str], retries: dict[str, tuple[dict[str, str], dict[str, str]]]
) -> list[Phase]:
    """How to run ``example``: once, or (a retry example) a failing run then its retry, with
    the variables runnable's retry tests set (``should_pass``, the run ids)."""
    if not example.startswith(RETRY_FOLDER):
        return [Phase({}, example in failing)]
    first, retry = retries.get(example, ({}, {}))
    run_id = "retry-" + re.sub(r"[^A-Za-z0-9]+", "-", example).strip("-")
    return [
        Phase({"should_pass": "false", "RUNNABLE_RUN_ID": run_id, **first}, True),
        Phase({"should_pass": "true", "RUNNABLE_RETRY_RUN_ID": run_id, **retry}, False),
    ]


def first_error(stderr: str, stdout: str) -> str:
    """The line that says what went wrong: conveyor's own message, else a traceback's last line."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    for line in lines:
        if line.startswith("conveyor:") and not line.startswith("conveyor: note:"):
            return line
    for line in reversed(lines):
        if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line):
            return line
    return lines[-1] if lines else (stdout.strip().splitlines() or [""])[-1]


def run_one(
    tree: Path, example: str, steps: list[Phase], timeout: float, keep: Path | None, src: Path = ROOT / "src"
) -> Outcome:
    """Run one example's phases in its own copy of the tree; the first phase that does not
    end as expected decides the outcome."""
    work = Path(tempfile.mkdtemp(prefix="runnable-example-", dir=keep))
    expected = " then ".join("fail" if p.should_fail else "0" for p in steps)
    started = time.monotonic()
    try:
        shutil.copytree(tree / "examples", work / "examples")
        base = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNABLE_", "CONVEYOR_"))}
        code: int | None = None
        error = ""
        for phase in steps:
            env = {**base, **HARNESS_ENV, **phase.env}
            env["PYTHONPATH"] = os.pathsep.join([str(src), str(work)])
            try:
                done = subprocess.run(
                    [sys.executable, f"examples/{example}.py"],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                return Outcome(example, None, expected, False, f"timed out after {timeout:g} s", timeout)
            code = done.returncode
            error = first_error(done.stderr, done.stdout) if code != 0 else ""
            if (code != 0) != phase.should_fail:
                return Outcome(example, code, expected, False, error, time.monotonic() - started)
        if len(steps) > 1:  # a retry resumes the failed run in place: no second run
            made = sorted(p.name for p in (work / RUNS).glob("*"))
            if len(made) != 1:
                error = f"the retry did not resume the failed run in place: runs {made}"
                return Outcome(example, code, expected, False, error, time.monotonic() - started)
        return Outcome(example, code, expected, True, error, time.monotonic() - started)
    finally:
        if keep is None:
            shutil.rmtree(work, ignore_errors=True)


def table(outcomes: list[Outcome]) -> str:
    """The results, one line per example."""
    width = max(len(o.example) for o in outcomes)
    lines = [f"{'example':<{width}}  exit  {'expected':<10}  ok    secs  first error line"]
    for o in outcomes:
        code = "T/O" if o.code is None else str(o.code)
        mark = "yes" if o.ok else ("n/a" if o.missing else "NO")
        lines.append(
            f"{o.example:<{width}}  {code:>4}  {o.expected:<10}  {mark:<3} {o.seconds:6.1f}  {o.error[:160]}"
        )
    return "\n".join(lines)


def summary(outcomes: list[Outcome]) -> str:
    """The count: examples that behave as expected, of those that can run here."""
    passed = sum(o.ok for o in outcomes)
    missing = sorted({m for o in outcomes if not o.ok and (m := o.missing)})
    unable = sum(1 for o in outcomes if not o.ok and o.missing)
    text = f"{passed} of {len(outcomes)} examples behave as runnable's tests expect"
    if unable:
        text += (
            f"; {unable} need packages not installed here ({', '.join(missing)}): "
            f"{passed} of {len(outcomes) - unable} that can run here"
        )
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=DEFAULT_REPO, help="runnable's git directory")
    parser.add_argument("--rev", default="HEAD")
    parser.add_argument("--only", action="append", default=[], help="run examples containing this")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds per example")
    parser.add_argument("--keep", type=Path, help="keep each example's working folder under this one")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the conveyor source folder to run")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="runnable-examples-") as tmp:
        tree = Path(tmp)
        extract(args.repo, args.rev, tree)
        examples = sdk_examples(tree)
        failing = expected_failures(tree)
        retries = retry_scenarios(tree)
        changed = rewrite_imports(tree / "examples")
        if args.only:
            examples = [e for e in examples if any(part in e for part in args.only)]
        print(f"{len(examples)} SDK examples; imports rewritten in {changed} files", file=sys.stderr)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        outcomes = []
        for example in examples:
            steps = phases(example, failing, retries)
            outcome = run_one(tree, example, steps, args.timeout, args.keep, args.src.resolve())
            print(
                f"  {example}: {'ok' if outcome.ok else 'NOT OK'} ({outcome.seconds:.1f} s)", file=sys.stderr
            )
            outcomes.append(outcome)
    print(table(outcomes))
    print("\n" + summary(outcomes))
    return 0 if all(o.ok for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())

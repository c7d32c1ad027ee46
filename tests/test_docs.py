"""Every snippet in the docs (docs/**/*.md) is checked, page by page, in order, in an empty
folder of its own, as a reader would follow it:

- a fence with a title (```` ```python title="tiles.py" ````) is a file: it is written there;
- YAML is a pipeline (validated; run when untitled, else some later snippet must run it),
  a run config (parsed as one) or parameters (a ``params*.yaml`` title; parsed as such);
- Python is executed (a titled file with ``python FILE``);
- bash is run with ``bash -euo pipefail``; ``conveyor`` and ``python`` on its PATH are this
  checkout's; ``$HOME`` and the XDG folders are the page's own.

A snippet can be preceded by one marker, an HTML comment that the rendered page hides:
``<!-- docs-test skip: REASON -->`` (not run; the reason is required),
``<!-- docs-test exit: N -->`` (expected exit code), ``<!-- docs-test background: URL -->``
(a server started in the background, waited for until URL answers 200, stopped at the end
of the page; its port is replaced by a free one on the whole page), and
``<!-- docs-test outline: MODULE -->`` (a Python outline of classes: each must exist in
MODULE with the attributes and methods shown).
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from support import ROOT, conveyor_traceback, need_service

DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)(?P<attrs>.*)$")
MARKER = re.compile(r"^\s*<!--\s*docs-test\s+(?P<kind>[\w-]+)\s*:\s*(?P<value>.*?)\s*-->\s*$")
TITLE = re.compile(r'title="(?P<title>[^"]+)"')
CONFIG_KEYS = {"executor", "pipeline-executor", "pipeline_executor", "run_log_store", "run-log-store"}
CONFIG_KEYS |= {"catalog", "secrets"}
#: Languages shown but not run: program output and diagrams.
SHOWN = {"text", "mermaid"}
RUN = {"bash", "python", "yaml"}
MARKER_KINDS = {"skip", "exit", "background", "outline"}


@dataclass
class Snippet:
    """One fenced block of a page, with what the docs' tests need to know about it."""

    page: str
    line: int
    lang: str
    body: str
    title: str | None = None
    marker: str | None = None
    value: str = ""

    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def snippets(page: str) -> list[Snippet]:
    """The page's fenced blocks in order, each with its title and marker."""
    lines = (DOCS / page).read_text(encoding="utf-8").splitlines()
    found: list[Snippet] = []
    pending: tuple[str, str, int] | None = None
    i = 0
    while i < len(lines):
        marker, fence = MARKER.match(lines[i]), FENCE.match(lines[i])
        if marker:
            assert pending is None, f"docs/{page}:{i + 1}: two markers in a row"
            pending = (marker["kind"], marker["value"], i + 1)
        elif fence:
            indent, close = len(fence["indent"]), fence["fence"]
            body: list[str] = []
            j = i + 1
            while j < len(lines) and lines[j].strip() != close:
                body.append(lines[j][indent:])
                j += 1
            assert j < len(lines), f"docs/{page}:{i + 1}: fence never closed"
            title = TITLE.search(fence["attrs"])
            snippet = Snippet(page, i + 1, fence["lang"], "\n".join(body) + "\n", title and title["title"])
            if pending:
                snippet.marker, snippet.value = pending[0], pending[1]
                pending = None
            found.append(snippet)
            i = j
        elif pending and lines[i].strip():
            raise AssertionError(f"docs/{page}:{pending[2]}: a marker must be followed by a fenced snippet")
        i += 1
    assert pending is None, f"docs/{page}:{pending[2]}: a marker must be followed by a fenced snippet"
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Reader:
    """Follows one page in its own folder: writes its files, runs its commands."""

    def __init__(self, page: str, root: Path) -> None:
        self.page = page
        self.work = root / "work"
        self.work.mkdir()
        bin_dir = root / "bin"
        bin_dir.mkdir()
        for name, args in (("conveyor", "-m conveyor.cli"), ("python", ""), ("python3", "")):
            shim = bin_dir / name
            shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {args} "$@"\n')
            shim.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTEST_"))}
        home = root / "home"
        env.update(
            PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
            PYTHONPATH=str(ROOT / "src"),
            HOME=str(home),
            XDG_CONFIG_HOME=str(home / ".config"),
            XDG_DATA_HOME=str(home / ".local/share"),
            COLUMNS="200",
        )
        self.env = env
        self.background: list[subprocess.Popen[bytes]] = []
        self.count = 0

    def file_for(self, snippet: Snippet, suffix: str) -> Path:
        self.count += 1
        path = self.work / (snippet.title or f"snippet-{self.count}{suffix}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(snippet.body, encoding="utf-8")
        return path

    def run(self, snippet: Snippet, argv: list[str], expect: int = 0, timeout: float = 300) -> str:
        done = subprocess.run(
            argv, cwd=self.work, env=self.env, capture_output=True, text=True, timeout=timeout
        )
        out = done.stdout + done.stderr
        assert done.returncode == expect, (
            f"{snippet.where()}: exit {done.returncode}, expected {expect}\n{snippet.body}\n{out}"
        )
        assert not conveyor_traceback(out), f"{snippet.where()}: a traceback through conveyor\n{out}"
        return out

    def bash(self, snippet: Snippet) -> None:
        expect = int(snippet.value) if snippet.marker == "exit" else 0
        self.run(snippet, ["bash", "-euo", "pipefail", "-c", snippet.body], expect)

    def start(self, snippet: Snippet) -> None:
        log = open(self.work.parent / f"background-{len(self.background)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            ["bash", "-euo", "pipefail", "-c", "exec " + snippet.body.strip()],
            cwd=self.work,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.background.append(proc)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            assert proc.poll() is None, (
                f"{snippet.where()}: exited {proc.returncode}:\n{Path(log.name).read_text()}"
            )
            try:
                with urllib.request.urlopen(snippet.value, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.5)
        raise AssertionError(f"{snippet.where()}: {snippet.value} never answered 200")

    def stop(self) -> None:
        for proc in self.background:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()

    def yaml(self, snippet: Snippet, later: list[Snippet]) -> None:
        from conveyor.spec.errors import SpecError
        from conveyor.spec.load import load_config, load_parameters, load_pipeline

        data = yaml.safe_load(snippet.body)
        path = self.file_for(snippet, ".yaml")
        try:
            if isinstance(data, dict) and "dag" in data:
                load_pipeline(path)
                if snippet.title is None:
                    code = "import sys; from conveyor.testing import run_pipeline as r; r(sys.argv[1]).assert_succeeded()"
                    self.run(snippet, [sys.executable, "-c", code, str(path)])
                else:
                    runs = [s for s in later if s.lang in {"bash", "python"} and snippet.title in s.body]
                    assert runs, f"{snippet.where()}: pipeline {snippet.title} is never run on the page"
            elif isinstance(data, dict) and set(data) <= CONFIG_KEYS:
                load_config(path)
            elif snippet.title and Path(snippet.title).name.startswith("params"):
                load_parameters(path, environ={})
            else:
                raise AssertionError(
                    f"{snippet.where()}: YAML that is neither a pipeline (a `dag`), a run config "
                    f"({', '.join(sorted(CONFIG_KEYS))}) nor a params*.yaml file"
                )
        except SpecError as exc:
            raise AssertionError(f"{snippet.where()}: {exc}") from None

    def python(self, snippet: Snippet) -> None:
        if snippet.marker == "outline":
            return check_outline(snippet)
        path = self.file_for(snippet, ".py")
        self.run(snippet, [sys.executable, path.name])
        return None


def check_outline(snippet: Snippet) -> None:
    """Each class of the outline exists in the module, with the members shown."""
    module = importlib.import_module(snippet.value)
    classes = [n for n in ast.parse(snippet.body).body if isinstance(n, ast.ClassDef)]
    assert classes, f"{snippet.where()}: an outline without classes"
    for cls in classes:
        real = getattr(module, cls.name, None)
        assert real is not None, f"{snippet.where()}: {snippet.value} has no {cls.name}"
        for item in cls.body:
            if isinstance(item, ast.FunctionDef):
                member = getattr(real, item.name, None)
                assert member is not None, f"{snippet.where()}: {cls.name} has no method {item.name}"
                shown = [a.arg for a in item.args.args]
                actual = list(member.__code__.co_varnames[: member.__code__.co_argcount])
                assert shown == actual, f"{snippet.where()}: {cls.name}.{item.name}{actual}, shown {shown}"
            elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                assert item.target.id in getattr(real, "__annotations__", {}), (
                    f"{snippet.where()}: {cls.name} has no attribute {item.target.id}"
                )


def check_markers(items: list[Snippet]) -> None:
    for s in items:
        assert s.lang in RUN | SHOWN, (
            f"{s.where()}: fence language {s.lang!r} (use one of {sorted(RUN | SHOWN)})"
        )
        if s.marker is None:
            continue
        assert s.marker in MARKER_KINDS, f"{s.where()}: unknown marker {s.marker!r}"
        if s.marker == "skip":
            assert len(s.value.split()) >= 3, f"{s.where()}: a skipped snippet must say why it cannot run"
        elif s.marker == "exit":
            assert s.value.isdigit() and s.lang == "bash", f"{s.where()}: exit: N on a bash snippet"
        elif s.marker == "background":
            assert s.value.startswith("http://127.0.0.1:") and s.lang == "bash", s.where()
        elif s.marker == "outline":
            assert s.lang == "python", s.where()


@pytest.mark.parametrize("page", PAGES)
def test_every_snippet_of_the_page_runs(page: str, tmp_path: Path) -> None:
    items = snippets(page)
    check_markers(items)
    ports = {s.value.split(":")[2].split("/")[0] for s in items if s.marker == "background"}
    if ports:
        if not Path("/usr/bin/bwrap").exists() and not any(
            (Path(d) / "bwrap").exists() for d in os.environ.get("PATH", "").split(os.pathsep)
        ):
            need_service("sandbox", "the page starts a conveyor server, which needs bubblewrap (bwrap)")
        for port in ports:
            new = str(free_port())
            for s in items:
                s.body, s.value = s.body.replace(port, new), s.value.replace(port, new)
    reader = Reader(page, tmp_path)
    try:
        for index, snippet in enumerate(items):
            if snippet.marker == "skip" or snippet.lang in SHOWN:
                continue
            if snippet.marker == "background":
                reader.start(snippet)
            elif snippet.lang == "bash":
                reader.bash(snippet)
            elif snippet.lang == "yaml":
                reader.yaml(snippet, items[index + 1 :])
            else:
                reader.python(snippet)
    finally:
        reader.stop()


def test_markers_are_checked(tmp_path: Path) -> None:
    """A skip marker without a reason, an unknown marker and a fence without a language fail."""
    bad = [
        Snippet("x.md", 1, "bash", "true\n", marker="skip", value="later"),
        Snippet("x.md", 2, "bash", "true\n", marker="maybe", value="x"),
        Snippet("x.md", 3, "", "true\n"),
        Snippet("x.md", 4, "yaml", "a: 1\n", marker="exit", value="1"),
    ]
    for snippet in bad:
        with pytest.raises(AssertionError):
            check_markers([snippet])
    check_markers([Snippet("x.md", 5, "bash", "true\n", marker="skip", value="needs a live cluster")])


def test_an_outline_that_drifted_from_the_code_fails() -> None:
    good = "class RunLogStore:\n    def load(self, run_id): ...\n"
    check_outline(Snippet("x.md", 1, "python", good, marker="outline", value="conveyor.runlog.base"))
    for body in (
        "class RunLogStore:\n    def load(self, run, extra): ...\n",
        "class RunLogStore:\n    def fetch(self, run_id): ...\n",
        "class NoSuchStore:\n    pass\n",
    ):
        with pytest.raises(AssertionError):
            check_outline(Snippet("x.md", 1, "python", body, marker="outline", value="conveyor.runlog.base"))


def load_hook() -> object:
    spec = importlib.util.spec_from_file_location("docs_reference_hook", ROOT / "hooks" / "reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_pipeline_reference_has_every_definition_and_key_of_the_schema() -> None:
    from conveyor.spec.schema import pipeline_schema

    schema = pipeline_schema()
    page = load_hook().pipeline_reference(schema)  # type: ignore[attr-defined]
    for name, definition in schema["$defs"].items():
        section = page.split(f"\n## {name}\n", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n## ", 1)[0]
        for key in definition.get("properties", {}):
            assert f"| `{key}` |" in body, f"{name}.{key} missing"
    assert "[Graph](#graph)" in page and "| `dag` | [Graph](#graph) | yes |" in page


def test_the_cli_reference_has_the_help_of_every_command() -> None:
    import typer.main

    from conveyor.cli.main import app

    page = load_hook().cli_reference()  # type: ignore[attr-defined]
    root = typer.main.get_command(app)
    names = [["conveyor"]]
    for name, command in root.commands.items():  # type: ignore[attr-defined]
        names.append(["conveyor", name])
        names += [["conveyor", name, sub] for sub in getattr(command, "commands", {})]
    for path in names:
        assert f"\n## {' '.join(path)}\n" in page, path
        assert f"Usage: {' '.join(path)} " in page, path
    assert "conveyor server tokens create" in page and "--refresh-cache" in page

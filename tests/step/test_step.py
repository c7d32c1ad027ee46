"""Shell tasks, secrets and notebooks inside the step context."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conveyor.spec.load import config_from_data, load_parameters
from conveyor.step.capture import Redactor, Sink
from conveyor.step.secrets import parse_dotenv
from support.runs import file_config, run_yaml, runlog, step


def test_shell_gets_parameters_and_returns_exports(workdir: Path) -> None:
    text = """
dag:
  start_at: s
  steps:
    s:
      command_type: shell
      command: |
        echo "n=$n name=$name cfg=$cfg"
        export doubled=$((n * 2)) label="hello $name" plain=text
      returns: [doubled, label, plain]
      next: success
"""
    result = run_yaml(workdir, text, {"n": 21, "name": "ann", "cfg": {"k": 1}})
    assert result.ok
    assert result.parameters["doubled"] == 42 and result.parameters["label"] == "hello ann"
    assert result.parameters["plain"] == "text"
    log = Path(step(runlog(workdir, result.run_id), "s").attempts[0].log).read_text()
    assert log == 'n=21 name=ann cfg={"k": 1}\n'


def test_shell_missing_export_and_exit_code(workdir: Path) -> None:
    text = "dag:\n  start_at: s\n  steps:\n    s: {command_type: shell, command: 'true', returns: [x], next: success}\n"
    result = run_yaml(workdir, text)
    attempt = step(runlog(workdir, result.run_id), "s").attempts[0]
    assert "did not export 'x'" in attempt.error
    text = "dag:\n  start_at: s\n  steps:\n    s: {command_type: shell, command: 'exit 3', next: success}\n"
    result = run_yaml(workdir, text)
    attempt = step(runlog(workdir, result.run_id), "s").attempts[0]
    assert attempt.exit_code == 3 and attempt.error == "shell command exited with code 3"


SECRET = "s3cr3t-value-123"
PEM = "-----BEGIN KEY-----\nMIIBOgIBAAJBAKj34GkxFhD9\n0oV3uLXkO8n3\n-----END KEY-----"


def secret_config(workdir: Path, monkeypatch: pytest.MonkeyPatch, kind: str, **values: str) -> object:
    if kind == "env":
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        secrets: dict[str, object] = {"type": "env"}
    else:
        for name in values:
            monkeypatch.delenv(name, raising=False)
        lines = "".join(f"{name}={json.dumps(value)}\n" for name, value in values.items())
        (workdir / "my.env").write_text("# comment\n" + lines)
        secrets = {"type": "dotenv", "config": {"location": str(workdir / "my.env")}}
    return config_from_data(
        {"run_log_store": {"type": "file", "config": {"path": str(workdir / "runs")}}, "secrets": secrets}
    )


def everything(workdir: Path) -> str:
    return "".join(p.read_text() for p in (workdir / "runs").rglob("*") if p.is_file())


@pytest.mark.parametrize("kind", ["env", "dotenv"])
def test_secrets_reach_only_their_steps_and_never_the_records(
    workdir: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    config = secret_config(workdir, monkeypatch, kind, API_KEY=SECRET)
    text = """
dag:
  start_at: py
  steps:
    py: {command: ctasks.uses_secret, secrets: [API_KEY], returns: [length], next: sh}
    sh: {command_type: shell, command: 'echo "shell has $API_KEY"', secrets: [API_KEY], next: other}
    other: {command: ctasks.peek_environment, returns: [seen], next: other_sh}
    other_sh: {command_type: shell, command: 'export seen2="[$API_KEY]"', returns: [seen2], next: success}
"""
    result = run_yaml(workdir, text, config=config)  # type: ignore[arg-type]
    assert result.ok, everything(workdir)
    assert result.parameters["length"] == len(SECRET)  # data passes between steps unaltered
    assert result.parameters["seen"] is None and result.parameters["seen2"] == []  # others never see it
    kept = everything(workdir)
    assert SECRET not in kept
    assert "the key is ***" in kept and "shell has ***" in kept
    assert "child says ***" in kept  # a subprocess of the python step: captured at the fds, masked
    if kind == "env":
        import os

        assert os.environ["API_KEY"] == SECRET  # given back when the run ends


def test_a_multi_line_secret_split_across_writes_is_masked(
    workdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = secret_config(workdir, monkeypatch, "dotenv", PEM_KEY=PEM)
    text = "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.print_in_pieces, secrets: [PEM_KEY], next: success}\n"
    result = run_yaml(workdir, text, config=config)  # type: ignore[arg-type]
    assert result.ok
    kept = everything(workdir)
    assert "MIIBOgIBAAJBAKj34GkxFhD9" not in kept and "BEGIN KEY" not in kept
    assert "before *** after" in kept


def test_a_return_holding_a_secret_fails_its_step(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = secret_config(workdir, monkeypatch, "env", API_KEY=SECRET)
    text = "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.leak_secret, secrets: [API_KEY], returns: [token], next: success}\n"
    result = run_yaml(workdir, text, config=config)  # type: ignore[arg-type]
    assert result.status == "failed"
    attempt = step(runlog(workdir, result.run_id), "a").attempts[0]
    assert "return 'token' holds the value of a declared secret" in (attempt.error or "")
    assert attempt.returns == {} and SECRET not in everything(workdir)


def test_a_secret_too_short_to_mask_is_refused(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = secret_config(workdir, monkeypatch, "env", PIN="123")
    text = "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.noop, secrets: [PIN], next: success}\n"
    result = run_yaml(workdir, text, config=config)  # type: ignore[arg-type]
    attempt = step(runlog(workdir, result.run_id), "a").attempts[0]
    assert result.status == "failed" and "secret PIN is shorter than 4 characters" in (attempt.error or "")


def test_the_sink_masks_secrets_however_the_stream_is_cut() -> None:
    for cut in range(1, len(PEM) + 10):
        sink = Sink(Redactor([PEM]), None)
        text = f"start {PEM} middle {PEM} end"
        for i in range(0, len(text), cut):
            sink.write(text[i : i + cut])
        assert sink.getvalue() == "start *** middle *** end", cut


def test_missing_secret_fails_the_step(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOPE_KEY", raising=False)
    text = (
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.noop, secrets: [NOPE_KEY], next: success}\n"
    )
    result = run_yaml(workdir, text)
    attempt = step(runlog(workdir, result.run_id), "a").attempts[0]
    assert attempt.error == "secret NOPE_KEY not found in the environment"


def test_dotenv_parsing() -> None:
    assert parse_dotenv("A=1\n# c\nexport B='two words'\nC=x # trailing\nbad line\n") == {
        "A": "1",
        "B": "two words",
        "C": "x",
    }


def test_parameters_file_and_environment(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("a: 1\nb: [1, 2]\nc: keep\n")
    env = {"CONVEYOR_PRM_a": "5", "CONVEYOR_PRM_b": '{"x": 1}', "CONVEYOR_PRM_d": "plain text", "OTHER": "1"}
    assert load_parameters(path, env) == {"a": 5, "b": {"x": 1}, "c": "keep", "d": "plain text"}


def test_runnables_parameter_variables_are_read_and_conveyors_win(tmp_path: Path) -> None:
    env = {
        "RUNNABLE_PRM_envvar": "from env",
        "RUNNABLE_PRM_a": "7",
        "CONVEYOR_PRM_a": "5",
        "RUNNABLE_PRM_": "x",
    }
    assert load_parameters(None, env) == {"envvar": "from env", "a": 5}


def _notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell("x = 1\nlabel = 'default'")
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("y = x * 10\nprint('computed', y, label)\nrows = [x, y]")]
    nbformat.write(nb, str(path))


def test_notebook_gets_parameters_and_returns_variables(workdir: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    _notebook(workdir / "analysis.ipynb")
    text = """
dag:
  start_at: nb
  steps:
    nb: {command_type: notebook, command: analysis.ipynb, returns: [y, rows], next: success}
"""
    result = run_yaml(workdir, text, {"x": 4, "label": "given"}, config=file_config(workdir))
    assert result.ok, step(runlog(workdir, result.run_id), "nb").attempts[0].error
    assert result.parameters["y"] == 40 and result.parameters["rows"] == [4, 40]
    attempt = step(runlog(workdir, result.run_id), "nb").attempts[0]
    (entry,) = attempt.catalog
    executed = json.loads(Path(entry["location"].removeprefix("file://")).read_text())
    sources = ["".join(c["source"]) for c in executed["cells"]]
    assert "x = 4" in sources[1] and "label = 'given'" in sources[1]  # injected after the tagged cell
    assert "computed 40 given" in Path(attempt.log).read_text()


def test_notebook_missing_variable_fails(workdir: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    _notebook(workdir / "analysis.ipynb")
    text = "dag:\n  start_at: nb\n  steps:\n    nb: {command_type: notebook, command: analysis.ipynb, returns: [zzz], next: success}\n"
    result = run_yaml(workdir, text, config=file_config(workdir))
    attempt = step(runlog(workdir, result.run_id), "nb").attempts[0]
    assert attempt.error == "the notebook did not define zzz"


def test_a_failing_cell_is_one_line_with_the_error_and_the_line(workdir: Path) -> None:
    pytest.importorskip("nbclient", reason="the notebook extra is not installed")
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\nassert x == 2")]
    nbformat.write(nb, str(workdir / "check.ipynb"))
    text = "dag:\n  start_at: nb\n  steps:\n    nb: {command_type: notebook, command: check.ipynb, next: success}\n"
    result = run_yaml(workdir, text, config=file_config(workdir))
    error = step(runlog(workdir, result.run_id), "nb").attempts[0].error
    assert not result.ok and error is not None
    assert error.startswith("AssertionError (at Cell In[") and error.endswith(", line 2: assert x == 2)")
    assert "\x1b" not in error


def test_what_a_threaded_steps_subprocesses_print_is_kept_in_its_log(tmp_path: Path) -> None:
    """In thread isolation, conveyor execute captures fds 1 and 2: os.system and raw writes
    land in the step's log, not only on the console."""
    from support import TASKS, run_cli

    (tmp_path / "p.yaml").write_text(
        "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.print_at_fds, next: success}\n"
    )
    (tmp_path / "c.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    out = run_cli(
        "execute",
        "-f",
        "p.yaml",
        "-c",
        "c.yaml",
        "--run-id",
        "fds",
        cwd=tmp_path,
        env={"PYTHONPATH": str(TASKS)},
    )
    assert out.returncode == 0, out.stderr
    (log,) = (tmp_path / "runs" / "fds" / "logs").rglob("attempt-1.log")
    kept = log.read_text()
    for line in ("from python", "from a child", "from a child's stderr", "from the raw fd"):
        assert line in kept, kept
    assert "from a child" in out.stdout + out.stderr  # and still shown as it happens

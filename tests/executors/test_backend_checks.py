"""Unusable backend configs are found by `validate -c` (and `--check` connects), and
`execute` refuses them with the same located message, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from support import run_cli

PIPELINE = "dag:\n  start_at: a\n  steps:\n    a: {type: stub, next: success}\n"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("run_log_store: {type: sqlite, config: {path: adir}}", "adir is a directory where a file should be"),
        ("run_log_store: {type: file, config: {path: afile}}", "afile is a file where a directory should be"),
        ("run_log_store: {type: file, config: {path: afile/runs}}", "is a file, so"),
        ("catalog: {type: file, config: {location: afile}}", "afile is a file where a directory should be"),
        ("secrets: {type: dotenv, config: {location: adir}}", "adir is not a file"),
        ("executor: {type: dask, config: {address: 'not an address'}}", "is not a Dask scheduler address"),
        ("run_log_store: {type: postgres, config: {url: 'garbage://'}}", "is not a database URL"),
    ],
)
def test_unusable_locations_are_refused_by_validate_and_execute(
    tmp_path: Path, config: str, message: str
) -> None:
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("x")
    (tmp_path / "p.yaml").write_text(PIPELINE)
    (tmp_path / "c.yaml").write_text(config + "\n")
    for command in ("validate", "execute"):
        out = run_cli(command, "-f", "p.yaml", "-c", "c.yaml", cwd=tmp_path)
        assert out.returncode == 2, (command, out.stdout, out.stderr)
        assert message in out.stderr and "c.yaml:1" in out.stderr, (command, out.stderr)


def test_check_connects_to_what_the_config_names(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    (tmp_path / "c.yaml").write_text(
        "run_log_store: {type: postgres, config: {url: 'postgresql+psycopg://u:pw@127.0.0.1:9/db'}}\n"
    )
    quick = run_cli("validate", "-f", "p.yaml", "-c", "c.yaml", cwd=tmp_path)
    assert quick.returncode == 0, quick.stderr  # well-formed: no connection without --check
    checked = run_cli("validate", "-f", "p.yaml", "-c", "c.yaml", "--check", cwd=tmp_path)
    assert (
        checked.returncode == 2
        and "cannot connect to postgresql+psycopg://u:***@127.0.0.1:9/db" in checked.stderr
    )
    assert "pw@" not in checked.stderr


def test_check_reaches_a_real_database(tmp_path: Path, postgres_url: str) -> None:
    (tmp_path / "p.yaml").write_text(PIPELINE)
    (tmp_path / "c.yaml").write_text(
        f"run_log_store: {{type: postgres, config: {{url: '{postgres_url}'}}}}\n"
    )
    out = run_cli("validate", "-f", "p.yaml", "-c", "c.yaml", "--check", cwd=tmp_path)
    assert out.returncode == 0, out.stderr


test_check_reaches_a_real_database = pytest.mark.postgres(test_check_reaches_a_real_database)

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conveyor.catalog.store import FsspecCatalog, InProcessCatalog, PathEscapeError


def test_put_then_get_with_hashes(tmp_path: Path) -> None:
    work, other = tmp_path / "work", tmp_path / "other"
    (work / "data").mkdir(parents=True)
    (work / "data" / "a.csv").write_text("1,2\n")
    (work / "data" / "b.csv").write_text("3,4\n")
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    entries = catalog.put("run1", ["data/*.csv"], work)
    assert [e.name for e in entries] == ["data/a.csv", "data/b.csv"]
    assert entries[0].sha256 == hashlib.sha256(b"1,2\n").hexdigest() and entries[0].size == 4
    assert Path(str(entries[0].location).removeprefix("file://")).read_text() == "1,2\n"
    other.mkdir()
    got = catalog.get("run1", ["data/b.csv"], other)
    assert [e.name for e in got] == ["data/b.csv"]
    assert (other / "data" / "b.csv").read_text() == "3,4\n"
    assert not (other / "data" / "a.csv").exists()
    assert catalog.get("run2", ["data/*.csv"], other) == []  # runs do not see each other


@pytest.mark.parametrize("pattern", ["../x", "/etc/passwd", "a/../../b", "~/x"])
def test_patterns_escaping_workdir_are_refused(tmp_path: Path, pattern: str) -> None:
    for catalog in (FsspecCatalog(str(tmp_path / "c")), InProcessCatalog()):
        with pytest.raises(PathEscapeError):
            catalog.put("r", [pattern], tmp_path)
        with pytest.raises(PathEscapeError):
            catalog.get("r", [pattern], tmp_path)


def test_symlink_out_of_workdir_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "secret.txt").write_text("s")
    (work / "link.txt").symlink_to(tmp_path / "secret.txt")
    with pytest.raises(PathEscapeError):
        InProcessCatalog().put("r", ["*.txt"], work)


def test_none_catalog_records_hash_without_copy(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    (entry,) = InProcessCatalog().put("r", ["f.txt"], tmp_path)
    assert entry.location is None and entry.sha256 == hashlib.sha256(b"x").hexdigest()


def test_blobs_round_trip(tmp_path: Path) -> None:
    catalog = FsspecCatalog(str(tmp_path / "c"))
    entry = catalog.put_bytes("r", "step/obj.pickle", b"\x00\x01")
    assert catalog.get_bytes(str(entry.location)) == b"\x00\x01"
    none = InProcessCatalog()
    assert none.get_bytes(str(none.put_bytes("r", "o", b"z").location)) == b"z"


def test_get_and_put_refuse_symlinked_directories_leading_out(tmp_path: Path) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    (work / "data").mkdir(parents=True)
    outside.mkdir()
    (work / "data" / "a.csv").write_text("1\n")
    catalog = FsspecCatalog(str(tmp_path / "catalog"))
    catalog.put("r", ["data/*.csv"], work)
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "data").symlink_to(outside, target_is_directory=True)  # data/ leads out of the workdir
    with pytest.raises(PathEscapeError, match="through a link that leaves"):
        catalog.get("r", ["data/*.csv"], fresh)
    assert list(outside.iterdir()) == []  # nothing was written there
    (outside / "b.csv").write_text("2\n")
    with pytest.raises(PathEscapeError):
        catalog.put("r", ["data/*.csv"], fresh)
    inside = tmp_path / "inside"
    (inside / "real").mkdir(parents=True)
    (inside / "data").symlink_to(inside / "real", target_is_directory=True)  # a link that stays inside
    assert [e.name for e in catalog.get("r", ["data/*.csv"], inside)] == ["data/a.csv"]
    assert (inside / "real" / "a.csv").read_text() == "1\n"


def test_a_pattern_matching_nothing_warns_or_with_strict_fails_the_step(tmp_path: Path) -> None:
    from support.runs import file_config, run_yaml, runlog, step, steps_of, variant

    text = "dag:\n  start_at: a\n  steps:\n    a: {command: ctasks.noop, next: success}\n"
    config = file_config(tmp_path)

    def with_catalog(catalog: dict[str, object]) -> str:
        return variant(text, lambda d: steps_of(d)["a"].update(catalog=catalog))

    warned = run_yaml(tmp_path, with_catalog({"put": ["reprot.html"]}), config=config)
    assert warned.ok
    log = Path(step(runlog(tmp_path, warned.run_id), "a").attempts[0].log or "").read_text()
    assert "warning: catalog put pattern 'reprot.html' matched no file" in log
    strict = run_yaml(tmp_path, with_catalog({"get": ["missing.csv"], "strict": True}), config=config)
    assert strict.status == "failed"
    error = step(runlog(tmp_path, strict.run_id), "a").attempts[0].error
    assert error == "catalog get pattern 'missing.csv' matched no file (catalog: {strict: true})"

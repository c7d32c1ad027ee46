"""The run page's artifacts (issue 24, point 3) over a real run with a file catalog: the list
per step, downloads as attachments nothing runs, bounded previews (text, CSV, JSON,
notebooks, images by their bytes), and no path from a request, a record or a planted link
reaching a file outside the run's catalog folder."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conveyor.testing import PipelineRun, run_pipeline
from conveyor.ui.artifacts import Refused, open_artifact
from conveyor.ui.local import local_app
from conveyor.ui.preview import PREVIEW_BYTES, TABLE_ROWS, preview
from support.images import png

PIPELINE = """
dag:
  start_at: make
  steps:
    make:
      command_type: shell
      command: "true"
      catalog: {put: ["out/*"]}
      next: success
"""
CONFIG = {"catalog": {"type": "file", "config": {"location": "catalog"}}}
SECRET = "the secret outside the catalog"


NOTEBOOK = {
    "cells": [
        {"cell_type": "markdown", "source": ["# Title\n", "<script>window.pwned=1</script>"]},
        {
            "cell_type": "code",
            "source": "print('hi')",
            "outputs": [
                {"output_type": "stream", "name": "stdout", "text": ["hi\n"]},
                {"output_type": "display_data", "data": {"text/html": "<img src=x onerror=alert(1)>"}},
                {"output_type": "execute_result", "data": {"text/plain": "42", "text/html": "<b>42</b>"}},
                {
                    "output_type": "error",
                    "ename": "E",
                    "evalue": "v",
                    "traceback": ["\x1b[31mTraceback\x1b[0m"],
                },
            ],
        },
    ],
    "metadata": {},
    "nbformat": 4,
    "nbformat_minor": 5,
}


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[PipelineRun, Path]:
    where = tmp_path_factory.mktemp("artifacts")
    out = where / "out"
    out.mkdir()
    rows = "".join(f"{i},<b>{i}</b>\n" for i in range(200))
    (out / "table.csv").write_text("n,html\n" + rows)
    (out / "data.json").write_text('{"k": [1, 2], "s": "<script>"}')
    (out / "note.txt").write_text("line one\nline two\n")
    (out / "pic.png").write_bytes(png())
    (out / "fake.png").write_text("<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>")
    (out / "page.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>")
    (out / "nb.ipynb").write_text(json.dumps(NOTEBOOK))
    (out / "blob.bin").write_bytes(b"\x00\x01\x02" * 10)
    (out / "big.txt").write_text("x" * 100 + "\n" + "y" * (PREVIEW_BYTES * 2))
    (out / "later.txt").write_text("replaced by a link after the run")
    (where / "secret.txt").write_text(SECRET)
    (where / "p.yaml").write_text(PIPELINE)
    run = run_pipeline(where / "p.yaml", config=CONFIG, run_id="art", cwd=where)
    run.assert_succeeded()
    return run, where


@pytest.fixture(scope="module")
def client(ran: tuple[PipelineRun, Path]) -> TestClient:
    return TestClient(local_app(ran[0].store, ran[1] / "catalog"))


def ask(client: TestClient, what: str, name: str, step: str = "make", attempt: int = 1) -> Any:
    return client.get(
        f"/ui/api/runs/art/artifacts/{what}", params={"step": step, "attempt": attempt, "name": name}
    )


def test_the_list_names_each_attempts_files(client: TestClient) -> None:
    every = client.get("/ui/api/runs/art/artifacts").json()
    one = client.get("/ui/api/runs/art/artifacts", params={"step": "make"}).json()
    assert every == one and every["more"] == 0
    names = {a["name"]: a for a in every["artifacts"]}
    assert "out/table.csv" in names and "out/pic.png" in names
    assert names["out/note.txt"] == {
        "step": "make", "attempt": 1, "name": "out/note.txt", "size": 18,
        "sha256": names["out/note.txt"]["sha256"], "kept": True,
    }  # fmt: skip
    assert client.get("/ui/api/runs/art/artifacts", params={"step": "nope"}).json()["artifacts"] == []
    assert client.get("/ui/api/runs/other/artifacts").status_code == 404


def test_a_download_is_an_attachment_nothing_runs(client: TestClient, ran: tuple[PipelineRun, Path]) -> None:
    got = ask(client, "download", "out/page.svg")
    assert got.status_code == 200
    assert got.content == (ran[1] / "out" / "page.svg").read_bytes()
    assert got.headers["content-type"] == "application/octet-stream"
    assert (
        got.headers["content-disposition"] == "attachment; filename=\"page.svg\"; filename*=UTF-8''page.svg"
    )
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]


def test_previews_are_bounded_text_for_the_page(client: TestClient) -> None:
    table = ask(client, "preview", "out/table.csv").json()
    assert table["kind"] == "table" and table["columns"] == ["n", "html"]
    assert len(table["rows"]) == TABLE_ROWS and table["rows"][3] == ["3", "<b>3</b>"] and table["truncated"]
    pretty = ask(client, "preview", "out/data.json").json()
    assert (
        pretty["kind"] == "json"
        and pretty["text"] == '{\n  "k": [\n    1,\n    2\n  ],\n  "s": "<script>"\n}'
    )
    note = ask(client, "preview", "out/note.txt").json()
    assert (note["kind"], note["text"], note["truncated"]) == ("text", "line one\nline two", False)
    big = ask(client, "preview", "out/big.txt").json()
    assert big["truncated"] and big["size"] > PREVIEW_BYTES and len(big["text"]) <= PREVIEW_BYTES
    binary = ask(client, "preview", "out/blob.bin").json()
    assert binary["kind"] == "none" and "binary" in binary["reason"]


def test_a_notebook_is_its_cells_as_text_never_html(client: TestClient) -> None:
    nb = ask(client, "preview", "out/nb.ipynb").json()
    assert nb["kind"] == "notebook"
    markdown, code = nb["cells"]
    assert markdown == {
        "type": "markdown",
        "source": "# Title\n<script>window.pwned=1</script>",
        "outputs": [],
    }
    assert code["outputs"] == ["hi\n", "(text/html output, not shown)", "42", "Traceback"]
    assert "<img" not in json.dumps(nb)


def test_images_are_served_by_their_bytes_never_by_their_name(client: TestClient) -> None:
    pic = ask(client, "preview", "out/pic.png").json()
    assert (pic["kind"], pic["media_type"]) == ("image", "image/png")
    got = ask(client, "image", "out/pic.png")
    assert got.status_code == 200 and got.content == png()
    assert got.headers["content-type"] == "image/png" and got.headers["x-content-type-options"] == "nosniff"
    # an SVG named .png, and an SVG: text to the preview, refused as an image
    for name in ("out/fake.png", "out/page.svg"):
        assert ask(client, "preview", name).json()["kind"] == "text"
        refused = ask(client, "image", name)
        assert refused.status_code == 415 and "svg" not in refused.headers["content-type"]


@pytest.mark.parametrize(
    "name", ["../secret.txt", "/etc/passwd", "out/../../secret.txt", "out/table.csv/../../../secret.txt"]
)
def test_only_names_the_run_recorded_are_read(client: TestClient, name: str) -> None:
    for what in ("download", "preview", "image"):
        got = ask(client, what, name)
        assert got.status_code == 404 and SECRET not in got.text
    assert ask(client, "download", "out/note.txt", attempt=2).status_code == 404
    assert ask(client, "download", "out/note.txt", step="../make").status_code == 404


@pytest.mark.parametrize("name", ["../../secret.txt", "/etc/passwd", "out/./x", "a\\..\\b", "x\x00y"])
def test_a_recorded_name_that_leaves_the_run_folder_is_refused(
    ran: tuple[PipelineRun, Path], name: str
) -> None:
    where = ran[1]
    with pytest.raises(Refused) as refused:
        open_artifact(
            where / "catalog", "art", {"name": name, "location": f"file://{where}/catalog/art/{name}"}
        )
    assert refused.value.status == 403


def test_links_planted_in_the_catalog_are_not_followed(ran: tuple[PipelineRun, Path], tmp_path: Path) -> None:
    where = ran[1]
    planted = where / "catalog" / "art" / "out" / "later.txt"
    planted.unlink()
    planted.symlink_to(where / "secret.txt")
    client = TestClient(local_app(ran[0].store, ran[1] / "catalog"))
    for what in ("download", "preview"):
        got = ask(client, what, "out/later.txt")
        assert got.status_code == 403 and SECRET not in got.text
    # the run's folder itself a link to another folder holding the same names
    other = tmp_path / "elsewhere"
    (other / "out").mkdir(parents=True)
    (other / "out" / "note.txt").write_text(SECRET)
    folder = where / "catalog" / "art"
    folder.rename(where / "catalog" / "art-moved")
    try:
        folder.symlink_to(other)
        got = ask(client, "download", "out/note.txt")
        assert got.status_code == 403 and SECRET not in got.text  # the link is not followed
    finally:
        folder.unlink()
        (where / "catalog" / "art-moved").rename(folder)


def test_a_folder_swapped_for_a_link_and_a_fifo_are_refused(
    ran: tuple[PipelineRun, Path], tmp_path: Path
) -> None:
    """A step racing the reader swaps a folder on the way for a link (a resolve-then-open
    check would pass and then follow it), or puts a FIFO where a file was (an open would
    block the server): the file is opened one folder at a time, never through a link, and
    only if it is a regular file."""
    where = ran[1]
    client = TestClient(local_app(ran[0].store, ran[1] / "catalog"))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "note.txt").write_text(SECRET)
    out = where / "catalog" / "art" / "out"
    out.rename(where / "catalog" / "art" / "out-kept")
    try:
        out.symlink_to(outside)
        for what in ("download", "preview"):
            got = ask(client, what, "out/note.txt")
            assert got.status_code == 403 and SECRET not in got.text
    finally:
        out.unlink()
        (where / "catalog" / "art" / "out-kept").rename(out)
    fifo = out / "data.json"
    fifo.rename(out / "data.json.kept")
    os.mkfifo(fifo)
    try:
        for what in ("download", "preview"):
            got = ask(client, what, "out/data.json")  # answers at once: no reader blocks on it
            assert got.status_code == 403, got.text
    finally:
        fifo.unlink()
        (out / "data.json.kept").rename(fifo)


def test_the_preview_reads_no_more_than_its_limit() -> None:
    head = b"a,b\n" + b"1,2\n" * (PREVIEW_BYTES // 4)
    shown = preview("x.csv", len(head) * 10, head)
    assert shown["truncated"] and len(shown["rows"]) == TABLE_ROWS
    deep = b"[" * 100_000 + b"]" * 100_000
    assert preview("deep.json", len(deep), deep)["kind"] == "text"  # over the limit: not parsed
    nested = b"[" * 50_000 + b"]" * 50_000
    assert preview("nested.json", len(nested), nested)["kind"] == "text"  # too deep: text


def test_an_executed_notebook_is_read_from_the_runs_blobs(tmp_path: Path) -> None:
    # put_bytes keeps it under <catalog>/<run>/.objects/<name>; the same name outside is another file
    blob = tmp_path / "catalog" / "nb-run" / ".objects" / "step-1" / "nb.executed.ipynb"
    blob.parent.mkdir(parents=True)
    blob.write_text(json.dumps(NOTEBOOK))
    item = {"name": "step-1/nb.executed.ipynb", "location": f"file://{blob}"}
    fd, size = open_artifact(tmp_path / "catalog", "nb-run", item)
    try:
        assert size == blob.stat().st_size and os.pread(fd, 10, 0) == blob.read_bytes()[:10]
    finally:
        os.close(fd)
    with pytest.raises(Refused) as missing:
        open_artifact(
            tmp_path / "catalog", "nb-run", {**item, "location": "file:///elsewhere/nb.executed.ipynb"}
        )
    assert missing.value.status == 404


MAPPED = """
dag:
  start_at: fan
  steps:
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      branch: {start_at: keep, steps: {keep: {command_type: shell, command: "true", catalog: {put: [a.txt]},
               next: success}}}
      next: success
"""


def test_a_map_items_files_are_listed_and_read_from_its_step(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("from an item")
    (tmp_path / "m.yaml").write_text(MAPPED)
    run = run_pipeline(tmp_path / "m.yaml", {"xs": [1, 2, 3]}, config=CONFIG, run_id="mapped", cwd=tmp_path)
    run.assert_succeeded()
    client = TestClient(local_app(run.store, tmp_path / "catalog"))
    listed = client.get("/ui/api/runs/mapped/artifacts", params={"step": "fan/2/keep"}).json()["artifacts"]
    assert [(a["step"], a["name"]) for a in listed] == [("fan/2/keep", "a.txt")]
    got = client.get(
        "/ui/api/runs/mapped/artifacts/download", params={"step": "fan/2/keep", "attempt": 1, "name": "a.txt"}
    )
    assert got.status_code == 200 and got.content == b"from an item"

"""Screenshots of the run page for issue 24's closing note: a failed map run, a parallel and a
loop, each run with the conveyor of a given source tree and shown by that tree's ``conveyor
ui``, taken with Playwright in Debian's Chromium at 1280x800.

Usage:
    python scripts/ui_screenshots.py --prefix after
    python scripts/ui_screenshots.py --prefix before --src /tmp/before24/src

``--src`` is the ``src`` folder of the tree to show (default: this checkout's); "before" is
the tree of the commit before issue 24's first (``git worktree add --detach /tmp/before24
a1e11c4``). The pictures are written as ``PREFIX-map.png``, ``PREFIX-parallel.png`` and
``PREFIX-loop.png`` to ``--out`` (default docs/screenshots), and ``PREFIX-map-dag.png``, the
failed map run's DAG. Each is the browser's window (the top of the page for the failed run as
a user first sees it, else the DAG panel scrolled into view);
where the page has expand toggles (after issue 24) the loop is expanded in place. A picture
over 200 KB is an error (the docs keep small ones).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TASKS = ROOT / "tests" / "tasks"
LIMIT = 200 * 1024

MAP_PIPELINE = """dag:
  start_at: prepare
  steps:
    prepare: {command: ctasks.noop, next: fan}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {start_at: check, steps: {check: {command: ctasks.fail_if, returns: [y], next: success}}}
      next: report
    report: {command: ctasks.fail_always, next: success}
"""
MAP_PARAMS = "xs: [" + ", ".join(str(i) for i in range(60)) + "]\nbad: 7\nmessage: disk is full\n"

#: name -> (folder to copy the pipeline from, or None for MAP_PIPELINE; whether it fails)
SCENES: dict[str, tuple[Path | None, bool]] = {
    "map": (None, True),
    "parallel": (ROOT / "examples" / "parallel", False),
    "loop": (ROOT / "examples" / "loop", False),
}

#: What is taken: (scene, picture's name, whether the DAG panel is scrolled into view).
SHOTS = [
    ("map", "map", False),
    ("map", "map-dag", True),
    ("parallel", "parallel", True),
    ("loop", "loop", True),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run(src: Path, where: Path, name: str) -> None:
    """Run scene ``name`` in ``where`` with the conveyor of ``src`` (run id: the name)."""
    folder, fails = SCENES[name]
    scene = where / name
    if folder is None:
        scene.mkdir()
        (scene / "pipeline.yaml").write_text(MAP_PIPELINE)
        (scene / "params.yaml").write_text(MAP_PARAMS)
    else:
        shutil.copytree(folder, scene)
    command = [
        sys.executable,
        "-m",
        "conveyor.cli",
        "execute",
        "-f",
        "pipeline.yaml",
        "-c",
        str(where / "config.yaml"),
    ]
    if (scene / "params.yaml").exists():
        command += ["-p", "params.yaml"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(src), str(scene), str(TASKS)])}
    done = subprocess.run([*command, "--run-id", name], cwd=scene, env=env, capture_output=True, text=True)
    if (done.returncode != 0) != fails:
        raise SystemExit(f"scene {name}: exit {done.returncode}\n{done.stderr[-2000:]}")


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    raise SystemExit("Chromium is not installed (apt-get install chromium)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", required=True, help="before or after: the pictures' names start with it")
    parser.add_argument("--src", type=Path, default=ROOT / "src", help="the src folder of the tree to show")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        (where / "config.yaml").write_text(
            f"run_log_store: {{type: file, config: {{path: {where / 'runs'}}}}}\n"
        )
        for name in SCENES:
            _run(args.src.resolve(), where, name)
        port = _free_port()
        env = {**os.environ, "PYTHONPATH": str(args.src.resolve())}
        command = [
            sys.executable,
            "-m",
            "conveyor.cli",
            "ui",
            "-c",
            str(where / "config.yaml"),
            "--port",
            str(port),
        ]
        ui = subprocess.Popen(
            command, cwd=where, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(150):
                try:
                    urllib.request.urlopen(url + "/", timeout=1)  # our own loopback server
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as play:
                browser = play.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                for name, shot, to_dag in SHOTS:
                    page.goto(f"{url}/runs/{name}")
                    page.wait_for_selector("#dag svg")
                    page.wait_for_load_state("networkidle")
                    if name == "loop" and page.locator('g.toggle[data-toggles="wait"]').count():
                        page.click('g.toggle[data-toggles="wait"]')
                        page.wait_for_selector('g.toggle[data-toggles="wait"][aria-expanded="true"]')
                    if to_dag:
                        page.evaluate("document.getElementById('dag').scrollIntoView({block: 'start'})")
                        page.evaluate("window.scrollBy(0, -60)")
                    time.sleep(0.3)
                    target = args.out / f"{args.prefix}-{shot}.png"
                    page.screenshot(path=str(target))
                    size = target.stat().st_size
                    print(f"{target} {size // 1024} KB")
                    if size > LIMIT:
                        raise SystemExit(f"{target} is {size} bytes, over {LIMIT}")
                browser.close()
        finally:
            ui.terminate()
            ui.wait(timeout=10)


if __name__ == "__main__":
    main()

"""Debian's Chromium driven by Playwright, and the UI processes the browser tests start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from support import ROOT
from support.services import free_port

#: Screenshots of every page the browser tests visit; CI keeps this folder.
SHOTS = ROOT / "ci-artifacts" / "screenshots"


def chromium() -> str | None:
    """The Chromium to drive: CONVEYOR_CHROMIUM, else Debian's package."""
    for candidate in (
        os.environ.get("CONVEYOR_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and os.path.exists(candidate):
            return candidate
    return None


def shot(page: object, name: str) -> Path:
    """Save a full-page screenshot as ``SHOTS/name.png``."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


def serious(page: object) -> list[str]:
    """The ``serious`` and ``critical`` violations axe-core finds on the page, one line each
    (rule, impact, the first few offending elements), so a failure says what to fix."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    found = []
    for violation in results.response["violations"]:
        if violation["impact"] in ("serious", "critical"):
            targets = [str(node["target"]) for node in violation["nodes"][:4]]
            found.append(f"{violation['id']} ({violation['impact']}): {violation['help']} at {targets}")
    return found


class LocalUi:
    """``conveyor ui -c CONFIG`` in a subprocess on a free loopback port."""

    def __init__(self, config: Path, cwd: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(cwd / "ui.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor.cli", "ui", "-c", str(config), "--port", str(self.port)],
            cwd=cwd,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/ui/api/session", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError("conveyor ui did not start: " + (cwd / "ui.log").read_text()[-2000:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

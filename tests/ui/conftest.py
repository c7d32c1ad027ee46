"""A browser for the UI tests: Debian's Chromium under Playwright (CI installs both)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import need_service
from support.browser import chromium


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    executable = chromium()
    if executable is None:
        need_service("browser", "Chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        need_service("browser", f"Playwright is not installed: {exc}")
    with sync_playwright() as play:
        try:
            launched = play.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        except Exception as exc:  # a Chromium that cannot start here
            need_service("browser", f"Chromium could not start: {exc}")
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    # The pages' Content-Security-Policy would also block injected scripts; the tests
    # bypass it, so that escaping is shown to hold by itself (and Playwright can evaluate).
    context = browser.new_context(viewport={"width": 1300, "height": 900}, bypass_csp=True)
    opened = context.new_page()
    opened.set_default_timeout(15_000)
    yield opened
    context.close()

"""Progress bars in a real browser: a failed run's and a failing map's bars show their
failed part in red beside the succeeded part in green, never a full green bar."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.browser import LocalUi
from support.runs import run_yaml
from ui.test_progress import CONDITIONAL, FAILING, MAPPED

pytestmark = pytest.mark.browser

RED, GREEN = "rgb(197, 48, 48)", "rgb(47, 133, 90)"


@pytest.fixture
def ui(workdir: Path) -> Iterator[LocalUi]:
    run_yaml(workdir, FAILING, run_id="failed")
    run_yaml(workdir, MAPPED, {"xs": [1, 2, 3, 4], "bad": 3}, run_id="mapped")
    run_yaml(workdir, CONDITIONAL, {"mode": "fast"}, run_id="chosen")
    (workdir / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    started = LocalUi(workdir / "config.yaml", workdir)
    yield started
    started.stop()


def _segments(page: Any, bar: str) -> dict[str, tuple[str, float]]:
    """Each segment of a progress bar: its colour and its share of the bar's width."""
    found: dict[str, tuple[str, float]] = page.eval_on_selector(
        bar,
        """bar => Object.fromEntries([...bar.children].map(s => [s.className.replace('seg-', ''),
            [getComputedStyle(s).backgroundColor, s.getBoundingClientRect().width / bar.getBoundingClientRect().width]]))""",
    )
    return found


def test_failures_are_red_in_progress_bars(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/")
    page.wait_for_selector("#runs tbody tr[data-run='chosen'] .bar")
    failed = _segments(page, "#runs tbody tr[data-run='failed'] .bar")
    assert failed["failed"][0] == RED and failed["succeeded"][0] == GREEN
    assert failed["failed"][1] == pytest.approx(1 / 3, abs=0.02)
    assert failed["succeeded"][1] == pytest.approx(1 / 3, abs=0.02)  # `last` never ran
    row = page.inner_text("#runs tbody tr[data-run='failed']")
    assert "2/3 steps (1 failed)" in row
    mapped = _segments(page, "#runs tbody tr[data-run='mapped'] .bar")
    assert mapped["failed"][0] == RED and mapped["failed"][1] == pytest.approx(1 / 4, abs=0.02)
    assert mapped["succeeded"][1] == pytest.approx(3 / 4, abs=0.02)
    assert "4/4 items (1 failed)" in page.inner_text("#runs tbody tr[data-run='mapped']")
    chosen = _segments(page, "#runs tbody tr[data-run='chosen'] .bar")
    assert list(chosen) == ["succeeded"] and chosen["succeeded"][1] == pytest.approx(1, abs=0.02)
    assert "3/3 steps" in page.inner_text("#runs tbody tr[data-run='chosen']")  # top-level steps
    page.goto(ui.url + "/runs/failed")
    page.wait_for_selector("#header .bar")
    assert _segments(page, "#header .bar")["failed"][0] == RED

"""Every status colour is readable (issue 24): the ink each status class writes on its
background, the muted and link colours on the page, all at WCAG AA contrast (4.5:1 for
text), computed from app.css itself, so a colour changed there is checked here."""

from __future__ import annotations

import re
from importlib import resources

import pytest

CSS = (resources.files("conveyor.ui") / "static" / "app.css").read_text(encoding="utf-8")
AA = 4.5
STATUSES = ["succeeded", "failed", "running", "queued", "reused", "cached", "cancelled", "interrupted",
            "pending", "unknown"]  # fmt: skip


def variables() -> dict[str, str]:
    root = re.search(r":root\s*\{([^}]*)\}", CSS)
    assert root, "app.css has no :root block"
    return dict(re.findall(r"(--[\w-]+)\s*:\s*(#[0-9a-fA-F]{6})", root.group(1)))


def colour(value: str) -> str:
    value = value.strip()
    found = re.fullmatch(r"var\((--[\w-]+)\)", value)
    return variables()[found.group(1)] if found else value


def luminance(hex_colour: str) -> float:
    """Relative luminance, as WCAG 2 defines it."""
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def ratio(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def rule(selector: str, prop: str) -> str:
    """The value of ``prop`` in the first rule whose selector list holds ``selector``."""
    for selectors, body in re.findall(r"([^{}]+)\{([^}]*)\}", CSS):
        if selector in [s.strip() for s in selectors.split(",")]:
            found = re.search(rf"(?:^|;)\s*{re.escape(prop)}\s*:\s*([^;]+)", body)
            if found:
                return colour(found.group(1))
    raise AssertionError(f"no {prop} for {selector} in app.css")


def test_the_ratio_is_wcag_s() -> None:
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the known AA grey


@pytest.mark.parametrize("status", STATUSES)
def test_badges_are_readable(status: str) -> None:
    background, ink = rule(f".s-{status}", "background"), rule(f".s-{status}", "color")
    assert ratio(background, ink) >= AA, (status, background, ink, ratio(background, ink))


@pytest.mark.parametrize("status", STATUSES)
def test_dag_nodes_are_readable(status: str) -> None:
    fill, ink = rule(f".node.s-{status} rect.box", "fill"), rule(f".node.s-{status} text", "fill")
    assert ratio(fill, ink) >= AA, (status, fill, ink, ratio(fill, ink))


@pytest.mark.parametrize("name", ["--ink", "--muted", "--link", "--bad"])
def test_text_colours_are_readable_on_the_page(name: str) -> None:
    for ground in ("--paper", "--bg"):
        assert ratio(variables()[name], variables()[ground]) >= AA, (name, ground)


@pytest.mark.parametrize("name", ["--diff-ink", "--muted", "--link"])
def test_what_differs_between_two_runs_is_readable(name: str) -> None:
    """The compare page's highlight (issue 24): its ink, muted text ("absent") and links on it."""
    background = rule("td.differs", "background")
    assert background == variables()["--diff"] and rule("td.differs", "color") == variables()["--diff-ink"]
    assert ratio(variables()[name], background) >= AA, (name, background)

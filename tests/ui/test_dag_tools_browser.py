"""The DAG's tools for big graphs (issue 24, point 1) in a real browser: a graph over 50
nodes has a minimap whose outline follows pan and zoom and whose click moves the view; a
composite expands and collapses in place by its toggle, with the mouse or the keyboard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from support import TASKS, run_cli
from support.browser import LocalUi, serious, shot

pytestmark = pytest.mark.browser

STEPS = 60
CHAIN = "\n".join(
    f"    s{i}: {{command: ctasks.noop, next: {f's{i + 1}' if i + 1 < STEPS else 'both'}}}"
    for i in range(STEPS)
)
PIPELINE = f"""dag:
  start_at: s0
  steps:
{CHAIN}
    both:
      type: parallel
      next: success
      branches:
        left: {{start_at: l1, steps: {{l1: {{command: ctasks.noop, next: success}}}}}}
        right: {{start_at: r1, steps: {{r1: {{command: ctasks.noop, next: success}}}}}}
"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUi]:
    where = tmp_path_factory.mktemp("dagtools")
    (where / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (where / "pipeline.yaml").write_text(PIPELINE)
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "--run-id", "big",
        cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    started = LocalUi(where / "config.yaml", where)
    yield started
    started.stop()


def _outline(page: Any) -> tuple[float, float, float, float]:
    got = page.locator("#minimap-view").evaluate(
        "r => ['x', 'y', 'width', 'height'].map(k => parseFloat(r.getAttribute(k)))"
    )
    return got[0], got[1], got[2], got[3]


def _view_box(page: Any) -> list[float]:
    value = page.locator("#dag-svg").get_attribute("viewBox") or ""
    return [float(v) for v in value.split()]


def test_a_big_graph_has_a_minimap_that_follows_pan_and_zoom(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/big")
    page.wait_for_selector("#dag-minimap #minimap-view")
    total = page.locator("#dag-svg g.node").count()
    assert total > 50, total
    assert page.locator("#dag-minimap rect.mini").count() == total - 1  # all but the join's dot
    page.wait_for_function("parseFloat(document.getElementById('minimap-view').getAttribute('height')) > 0")
    _, y, w, h = _outline(page)
    graph_height = float(page.locator("#dag-svg").get_attribute("height") or 0)
    assert y == pytest.approx(0, abs=1) and 0 < h < graph_height / 2  # the panel shows the top part
    shot(page, "dag-minimap")
    assert serious(page) == []  # axe-core: the minimap and the toggles are named
    # zoom in: the outline shrinks about the same centre
    page.click("#zoom-in")
    _, y2, w2, h2 = _outline(page)
    assert w2 < w * 0.9 and h2 < h * 0.9
    # pan by dragging the graph up: the outline moves down the graph
    page.locator("#dag").evaluate("d => d.scrollIntoView()")
    svg = page.locator("#dag-svg").bounding_box()
    panel = page.locator("#dag").bounding_box()
    start_x, start_y = svg["x"] + 10, panel["y"] + panel["height"] * 0.8
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x, start_y - 200, steps=5)
    page.mouse.up()
    _, y3, _, h3 = _outline(page)
    assert y3 > y2 + 50 and h3 == pytest.approx(h2, rel=0.01)
    # a click near the minimap's bottom brings the graph's end into view
    mini = page.locator("#dag-minimap").bounding_box()
    page.mouse.click(mini["x"] + 3, mini["y"] + mini["height"] - 3)  # its left edge: off centre
    x4, y4, w4, h4 = _outline(page)
    assert y4 + h4 / 2 == pytest.approx(graph_height, rel=0.1), (y4, h4, graph_height)
    # ... and keeps the view inside the graph: no band beside it where boxes are cut off
    graph_width = float(page.locator("#dag-svg").get_attribute("width") or 0)
    assert x4 >= -0.5 and x4 + w4 <= graph_width + 0.5 and y4 + h4 <= graph_height + 0.5, (
        x4,
        w4,
        graph_width,
    )
    box = _view_box(page)
    assert box[1] > graph_height / 2  # the view itself moved, not just the outline
    end = page.locator('#dag-svg g.node[data-name="both"]').bounding_box()
    assert panel["y"] <= end["y"] <= panel["y"] + panel["height"], (end, panel)  # and shows the end


def test_a_small_graph_has_no_minimap(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/big?path=both/left")
    page.wait_for_selector("#dag-svg g.node")
    assert page.locator("#dag-minimap").count() == 0


def test_a_parallel_collapses_and_expands_in_place(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/big")
    toggle = page.locator('#dag-svg g.toggle[data-toggles="both"]')
    toggle.wait_for()
    branches = page.locator('#dag-svg g.node[data-name^="both/"]')
    assert toggle.get_attribute("aria-expanded") == "true" and branches.count() == 2
    left, right = (page.locator(f'#dag-svg g.node[data-name="both/{k}/{k[0]}1"]').bounding_box() for k in ("left", "right"))  # fmt: skip
    assert (
        left["y"] == pytest.approx(right["y"]) and abs(left["x"] - right["x"]) >= left["width"]
    )  # side by side
    toggle.click()
    page.wait_for_selector('#dag-svg g.toggle[data-toggles="both"][aria-expanded="false"]')
    assert branches.count() == 0 and page.locator("#dag-svg g.node.join").count() == 0
    assert page.locator('#dag-svg g.toggle[data-toggles="both"] text').text_content() == "+"
    # by the keyboard: the toggle keeps the focus across the redraw, Enter expands again
    page.locator('#dag-svg g.toggle[data-toggles="both"]').focus()
    page.keyboard.press("Enter")
    page.wait_for_selector('#dag-svg g.toggle[data-toggles="both"][aria-expanded="true"]')
    assert branches.count() == 2
    assert page.evaluate("document.activeElement.dataset.toggles") == "both"
    page.keyboard.press("Space")
    page.wait_for_selector('#dag-svg g.toggle[data-toggles="both"][aria-expanded="false"]')

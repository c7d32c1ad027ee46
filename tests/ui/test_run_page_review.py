"""The run page after a new user's review (in Debian's Chromium under Playwright), over a
run whose composites fail by themselves: a conditional given a parameter naming no branch,
a loop whose iteration fails, a map with a failed item and a parallel with a long branch
name. Composites have no attempt log: neither the summary nor the timeline links to one."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support import TASKS, run_cli
from support.browser import LocalUi

pytestmark = pytest.mark.browser

BRANCH = "a_branch_with_a_rather_long_name"
PIPELINE = f"""dag:
  start_at: work
  steps:
    work:
      type: parallel
      next: spin
      branches:
        {BRANCH}: {{start_at: first_step_of_a_branch_x, steps: {{first_step_of_a_branch_x: {{command: ctasks.noop, next: success}}}}}}
        b: {{start_at: b1, steps: {{b1: {{command: ctasks.noop, next: success}}}}}}
    spin:
      type: loop
      max_iterations: 5
      break_on: done
      index_as: i
      next: fan
      on_failure: fan
      branch:
        start_at: body
        steps:
          body: {{command: ctasks.loop_body, returns: [total, done], next: check}}
          check: {{command: ctasks.fail_once_at, next: success}}
    fan:
      type: map
      iterate_on: xs
      iterate_as: x
      on_item_failure: continue
      branch: {{start_at: check, steps: {{check: {{command: ctasks.fail_if, returns: [y], next: success}}}}}}
      next: pick
    pick:
      type: conditional
      parameter: mode
      next: success
      branches:
        fast: {{start_at: f1, steps: {{f1: {{command: ctasks.noop, next: success}}}}}}
        slow: {{start_at: s1, steps: {{s1: {{command: ctasks.noop, next: success}}}}}}
"""


@pytest.fixture(scope="module")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalUi]:
    where = tmp_path_factory.mktemp("review")
    (where / "config.yaml").write_text("run_log_store: {type: file, config: {path: runs}}\n")
    (where / "pipeline.yaml").write_text(PIPELINE)
    (where / "params.yaml").write_text(
        f"xs: [0, 1, 2, 3]\nbad: 3\ntotal: 0\nstop_at: 4\nfail_at: 2\nmarker: {where / 'marker'}\n"
    )
    out = run_cli(
        "execute", "-f", "pipeline.yaml", "-c", "config.yaml", "-p", "params.yaml", "--param", "mode=medium",
        "--run-id", "r", cwd=where, env={"PYTHONPATH": str(TASKS)},
    )  # fmt: skip
    assert out.returncode == 1, out.stderr  # pick names no branch
    started = LocalUi(where / "config.yaml", where)
    yield started
    started.stop()


def test_a_composite_that_failed_by_itself_has_no_log_link(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    pick = page.locator('#failures .failure[data-path="pick"]')
    pick.wait_for()
    assert "matches no branch" in pick.locator(".error").inner_text()
    assert pick.locator("a.log-link").count() == 0  # no "attempt 0 log" leading to a 404
    assert pick.locator("a.dag-link").get_attribute("href") == "/runs/r?path=pick"
    # the loop's failed iteration step keeps its log link, and it opens a log
    check = page.locator('#failures .failure[data-path="spin/2/check"] a.log-link')
    assert check.inner_text() == "attempt 1 log"
    check.click()
    # the log's text comes after the page is drawn: waited for, not read at once
    page.wait_for_function("document.getElementById('log')?.textContent.includes('iteration 2 fails once')")


def test_timeline_rows_of_composites_do_not_link_to_logs(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    page.wait_for_selector("#gantt-svg a.gantt-link")
    hrefs = dict(
        page.locator("#gantt-svg a.gantt-link").evaluate_all(
            "els => els.map(e => [e.dataset.path, e.getAttribute('href')])"
        )
    )
    for composite in ("work", "spin", "fan", "pick"):
        assert hrefs[composite] == f"/runs/r?path={composite}", hrefs
    assert hrefs["spin/2/check"] == "/runs/r/logs?step=spin%2F2%2Fcheck"
    assert hrefs["work/b/b1"] == "/runs/r/logs?step=work%2Fb%2Fb1"
    page.locator('#gantt-svg a.gantt-link[data-path="spin"]').click()
    page.wait_for_selector('#dag-svg g.node[data-name="check"]')  # the loop's level opened
    assert page.locator("#page-error").count() == 0


def test_an_item_link_scrolls_to_the_item_and_focuses_it(ui: LocalUi, page: Any) -> None:
    page.set_viewport_size({"width": 1300, "height": 700})
    page.goto(ui.url + "/runs/r")
    page.locator('#failures .failure[data-path="fan/3/check"] a.item-link').click()
    page.wait_for_selector("#item-card")
    page.wait_for_function("document.activeElement && document.activeElement.id === 'item-card'")
    box = page.locator("#item-card").bounding_box()
    assert 0 <= box["y"] < 700, box  # in view, not ~900 px below
    assert page.evaluate("window.scrollY") > 0
    # the item's parameter and its value read apart: "x 3", not "x3"
    row = page.locator("#item-card .params").inner_text().split()
    assert row[:2] == ["x", "3"], row


def test_progress_counts_top_level_steps_once(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    progress = page.locator("#header .progress")
    progress.wait_for()
    # work, spin, fan, pick: the loop and the conditional failed; a branch's step is not a step more
    assert "4/4 steps (2 failed)" in progress.inner_text()
    assert "4/4 items (1 failed)" in progress.inner_text()
    assert "top-level" in (progress.get_attribute("title") or "")


def test_the_readme_names_every_script_the_ui_ships() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    paragraph = readme[readme.index("Everything ships in the package (`conveyor/ui/static`") :].split("\n- ")[
        0
    ]
    scripts = sorted(p.name for p in (root / "src" / "conveyor" / "ui" / "static").glob("*.js"))
    assert scripts == ["app.js", "charts.js", "compare.js", "dag.js", "rerun.js"]
    assert all(f"`{name}`" in paragraph for name in scripts), paragraph
    assert "one script" not in paragraph


def _node(page: Any, name: str) -> dict[str, float]:
    return page.locator(f'#dag-svg g.node[data-name="{name}"]').evaluate(
        "g => { const r = g.getBoundingClientRect(); const m = g.transform.baseVal.consolidate().matrix;"
        " return {x: m.e, y: m.f, left: r.left, right: r.right, top: r.top}; }"
    )


def test_labels_fit_and_text_keeps_its_size(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    node = page.locator(f'#dag-svg g.node[data-name="work/{BRANCH}/first_step_of_a_branch_x"]')
    node.wait_for()
    assert node.locator("text.name").text_content() == "first_step_of_a_branch_x"  # 24 characters, whole
    assert node.locator("text.sub").text_content() == f"task · {BRANCH}"  # the branch name, whole
    # drawn at its own size: one SVG unit is one pixel, so text is never scaled down
    svg = page.locator("#dag-svg")
    box = svg.bounding_box()
    assert box["width"] == pytest.approx(float(svg.get_attribute("width") or 0), abs=1)
    assert box["height"] == pytest.approx(float(svg.get_attribute("height") or 0), abs=1)


def test_edges_into_a_map_chains_straight_and_the_graph_centred(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    page.wait_for_selector('#dag-svg g.node[data-name="fan"]')
    work, spin, fan, pick = (_node(page, n) for n in ("work\u2009\u25c6", "spin", "fan", "pick"))
    join_w = page.locator('#dag-svg g.node[data-name="spin"] rect.box').get_attribute("width")
    # one column: spin, fan and pick straight below each other (and below the join's centre)
    assert spin["x"] == fan["x"] == pick["x"], (spin, fan, pick)
    assert work["x"] == spin["x"], (work, spin, join_w)
    # the edge into the map ends above its stack of cards (8 px above the front card)
    into = page.locator("#dag-svg path.edge").evaluate_all(
        "ps => ps.map(p => { const n = p.getTotalLength(); const e = p.getPointAtLength(n); return [e.x, e.y]; })"
    )
    assert any(abs(y - (fan["y"] - 8)) < 0.5 for _, y in into), (into, fan)
    # centred in its box
    dag, svg = page.locator("#dag").bounding_box(), page.locator("#dag-svg").bounding_box()
    assert abs((svg["x"] - dag["x"]) - (dag["x"] + dag["width"] - svg["x"] - svg["width"])) < 4, (dag, svg)


def test_the_run_page_fits_800_pixels(ui: LocalUi, page: Any) -> None:
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(ui.url + "/runs/r")
    page.wait_for_selector("#gantt-svg")
    wide = page.evaluate(
        "() => [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 801"
        " && !e.closest('.dag')).slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)"
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 800, wide


def test_every_branch_and_iteration_is_reachable(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r?path=work")
    tabs = page.locator("#level-tabs a")
    tabs.first.wait_for()
    assert tabs.all_text_contents() == [BRANCH, "b"]
    assert page.locator("#level-tabs a[aria-current=page]").text_content() == BRANCH
    page.locator('#level-tabs a[data-path="work/b"]').click()
    page.wait_for_selector('#dag-svg g.node[data-name="b1"]')
    assert "path=work%2Fb" in page.url
    assert page.locator("#level-tabs a[aria-current=page]").text_content() == "b"
    # a loop: all its iterations at once, or one at a time
    page.goto(ui.url + "/runs/r?path=spin")
    page.wait_for_selector('#level-tabs a[data-path="spin/2"]')
    assert tabs.all_text_contents() == ["all", "iteration 0", "iteration 1", "iteration 2"]
    page.locator('#level-tabs a[data-path="spin/2"]').click()
    page.wait_for_function(
        "document.querySelector('#dag-svg g.node[data-name=check]')?.dataset.status === 'failed'"
    )
    # the failed iteration's step, in what failed, links to its iteration
    page.goto(ui.url + "/runs/r")
    link = page.locator('#failures .failure[data-path="spin/2/check"] a.level-link')
    assert link.get_attribute("href") == "/runs/r?path=spin%2F2"
    link.click()
    page.wait_for_selector('#level-tabs a[aria-current=page][data-path="spin/2"]')


def test_edges_meet_the_join_dot(ui: LocalUi, page: Any) -> None:
    page.goto(ui.url + "/runs/r")
    dot = page.locator('#dag-svg g.node[data-name="work\u2009\u25c6"] circle')
    dot.wait_for()
    cy, r = (float(dot.get_attribute(a) or 0) for a in ("cy", "r"))
    top = _node(page, "work\u2009\u25c6")["y"] + cy - r
    ends = page.locator("#dag-svg path.edge").evaluate_all(
        "ps => ps.map(p => p.getPointAtLength(p.getTotalLength()).y)"
    )
    assert sum(abs(y - top) < 0.5 for y in ends) == 2, (ends, top)  # both branches end on the dot

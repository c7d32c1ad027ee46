// Two runs side by side (issue 24): the server says what differs (ui/compare.py); this page
// only draws it, every value as text. Uses app.js's helpers (el, badge, folded, at, took...).
"use strict";

// A cell marked when its values differ: a colour and a sign, so that it is not colour alone.
function diffCell(differs, ...children) {
  const cell = el("td", differs ? { class: "differs", title: "differs between the runs" } : {}, ...children);
  return cell;
}
function absent(text) { return el("span", { class: "muted", text: text || "absent" }); }

// A mapping of values (returns, metrics), the keys whose values differ marked.
function valuesOf(values, changed) {
  const box = el("div", { class: "params" });
  const entries = Object.entries(values || {});
  if (!entries.length) box.append(absent("none"));
  for (const [k, v] of entries) {
    const mark = changed.includes(k) ? { class: "pname differs-key", title: "differs between the runs" } : { class: "pname" };
    box.append(el("span", mark, k), folded(v));
  }
  return box;
}

function paramTable(id, diff) {
  const body = el("tbody");
  for (const r of diff.rows) {
    const changed = r.change !== "same";
    body.append(el("tr", { "data-param": r.name, "data-change": r.change, class: changed ? "change" : "same" },
      el("td", { class: "pname", text: r.name }), el("td", { class: "muted", text: r.change }),
      diffCell(changed, r.has_a ? folded(r.a) : absent()), diffCell(changed, r.has_b ? folded(r.b) : absent())));
  }
  if (!diff.rows.length) body.append(el("tr", {}, el("td", { colspan: 4, class: "muted", text: "no parameters" })));
  return el("table", { id }, el("thead", {}, el("tr", {}, ...["parameter", "change", "run A", "run B"].map(h => el("th", { text: h })))), body);
}

function stepRows(steps, runA, runB) {
  const body = el("tbody");
  for (const s of steps) {
    const d = s.differs, a = s.a, b = s.b;
    const any = Object.values(d).some(Boolean);
    const side = (x, runId, what) => {
      if (!x) return absent("did not run");
      if (what === "status") {
        const cell = el("span", {}, badge(x.status));
        if (Object.keys(x.items).length) cell.append(" ", el("span", { class: "muted", text: Object.entries(x.items).map(([k, v]) => `${v} ${k}`).join(", ") }));
        cell.append(" ", el("a", { class: "level-link", href: itemHref(runId, s.path.split("/").slice(0, -1).join("/")),
          text: "open", title: `this step in run ${runId}` }));
        return cell;
      }
      if (what === "duration") return took(x.duration);
      if (what === "attempts") return String(x.attempts);
      return valuesOf(x[what], s[what === "returns" ? "changed_returns" : "changed_metrics"]);
    };
    const cells = [];
    for (const what of ["status", "duration", "attempts", "returns", "metrics"]) {
      const differs = d.presence || d[what] || (what === "status" && d.items);
      // returns and metrics: each differing key carries the sign, not the whole cell again
      const pair = [diffCell(differs, side(a, runA, what)), diffCell(differs, side(b, runB, what))];
      if (["returns", "metrics"].includes(what) && a && b) pair.forEach(c => c.classList.add("values"));
      cells.push(...pair);
    }
    body.append(el("tr", { "data-step": s.path, class: any ? "change" : "same" }, el("td", {}, clipped("span", s.path, 50)), ...cells));
  }
  const head = el("tr", {}, el("th", { text: "step" }), ...["status", "duration", "attempts", "returns", "metrics"].flatMap(h => [el("th", { text: h + " A" }), el("th", { text: h + " B" })]));
  return el("table", { id: "compare-steps" }, el("thead", {}, head), body);
}

async function comparePage(runA, runB) {
  const url = `/ui/api/compare/${encodeURIComponent(runA)}/${encodeURIComponent(runB)}`;
  const only = el("input", { type: "checkbox", id: "only-differences" });
  const box = el("div", { id: "comparison" });
  only.onchange = () => box.classList.toggle("only-differences", only.checked);
  show(el("h1", {}, "Compare ", el("span", { text: runA }), " and ", el("span", { text: runB })),
    el("div", { class: "filters" }, el("label", {}, only, " only what differs"),
      el("a", { id: "swap", href: `/compare/${encodeURIComponent(runB)}/${encodeURIComponent(runA)}`, text: "swap A and B" })), box);
  async function load() {
    const c = await get(url);
    const said = [`${c.steps_differing} of ${c.steps.length} steps differ`];
    for (const [what, diff] of [["initial parameters", c.initial_parameters], ["final parameters", c.final_parameters]]) {
      const parts = ["changed", "added", "removed"].filter(k => diff[k].length).map(k => `${diff[k].length} ${k}`);
      said.push(`${what}: ${parts.length ? parts.join(", ") : "the same"}`);
    }
    const runs = el("div", { class: "grid compare-runs", id: "compare-runs" });
    const rows = [["", ["A", "B"].map(x => el("strong", { text: "run " + x }))],
      ["run", [c.a, c.b].map(r => el("a", { href: "/runs/" + encodeURIComponent(r.run_id), text: r.run_id }))],
      ["status", [c.a, c.b].map(r => badge(r.status))], ["pipeline", [c.a.pipeline || "", c.b.pipeline || ""]],
      ["started", [at(c.a.started_at), at(c.b.started_at)]], ["duration", [took(c.a.duration), took(c.b.duration)]]];
    if (c.a.tag != null || c.b.tag != null) rows.push(["tag", [c.a.tag ?? "", c.b.tag ?? ""].map(t => typeof t === "string" ? t : JSON.stringify(t))]);
    if (c.a.user || c.b.user) rows.push(["user", [c.a.user || "", c.b.user || ""]]);
    const differ = { status: c.a.status !== c.b.status, pipeline: !c.same_pipeline };
    for (const [k, [a, b]] of rows) {
      const mark = differ[k] ? { class: "differs", title: "differs between the runs" } : {};
      runs.append(el("span", { class: "muted", text: k }), el("span", mark, a), el("span", mark, b));
    }
    const warn = c.same_pipeline ? null : el("p", { class: "error", id: "other-pipeline", text: "These runs are of different pipelines: steps are compared by their paths." });
    const cut = c.truncated ? el("p", { class: "muted", text: `Only the first ${c.steps.length} steps are compared.` }) : null;
    box.replaceChildren(el("div", { class: "card" }, runs, el("p", { id: "compare-summary", text: said.join("; ") }), warn),
      el("h2", { text: "Initial parameters" }), paramTable("compare-initial", c.initial_parameters),
      el("h2", { text: "Final parameters" }), paramTable("compare-final", c.final_parameters),
      el("h2", { text: "Steps" }), cut || "", stepRows(c.steps, c.a.run_id, c.b.run_id));
    mark("conveyor:compare-drawn");
    if ([c.a.status, c.b.status].some(s => s === "running" || s === "queued")) poll(load, 3000);
  }
  await load();
}

// conveyor's web UI. Everything from the run log is put into the page as text
// (textContent, SVG text nodes), never as markup. No libraries, nothing from elsewhere.
"use strict";

// Status colours live in app.css (classes s-<status>), where a test checks their contrast.
function statusClass(status) { return "s-" + String(status).replace(/[^a-z]/g, ""); }
const SVG = "http://www.w3.org/2000/svg";
let timer = null;
let session = { mode: "local", actions: false };

// Text as it is shown: bidirectional overrides and isolates (which reorder what follows, so
// "exe.txt" can read as "txt.exe") and control characters other than newline and tab are
// written out as ⟨U+202E⟩, so the page shows what is recorded; the data itself is unchanged.
const HIDDEN = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
function readable(text) {
  return String(text).replace(/\r\n/g, "\n").replace(HIDDEN, c => "⟨U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "⟩");
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "onclick" || k === "onchange" || k === "onsubmit" || k === "oninput") node[k] = v;
    else if (k === "text") node.textContent = readable(v);
    else node.setAttribute(k, k === "title" ? readable(v) : String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(readable(child)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = readable(text);
  return node;
}

function badge(status) {
  return el("span", { class: "badge " + statusClass(status), text: status });
}

// A label cut to `max` characters with an ellipsis; the whole text is the hover title.
function clip(text, max) {
  text = String(text);
  return text.length > max ? text.slice(0, max - 1) + "…" : text;
}
function clipped(tag, text, max, attrs) {
  const node = el(tag, { ...(attrs || {}), text: clip(text, max) });
  if (String(text).length > max) node.title = readable(text);
  return node;
}

// A value folded when long: one line of it, the whole on demand (compact, not a line per element).
function folded(value, id) {
  const line = JSON.stringify(value);
  if (line === undefined || line.length <= 100) return el("code", { class: "value", id, text: line === undefined ? "" : line });
  const scalars = Array.isArray(value) && value.every(v => v === null || typeof v !== "object");
  const what = Array.isArray(value) ? `list of ${value.length}` : (value && typeof value === "object" ? `${Object.keys(value).length} keys` : "text");
  return el("details", { class: "value", id }, el("summary", {}, el("span", { class: "muted", text: what + " " }), clip(line, 90)),
    el("pre", { class: "small", text: scalars ? line : JSON.stringify(value, null, 1) }));
}
function params(values, id) {
  const box = el("div", { class: "params", id });
  const entries = Object.entries(values || {});
  if (!entries.length) box.append(el("span", { class: "muted", text: "none" }));
  for (const [k, v] of entries) box.append(el("div", { class: "param" }, el("span", { class: "pname", text: k }), folded(v)));
  return box;
}

function logHref(runId, step, attempt) {
  return `/runs/${encodeURIComponent(runId)}/logs?step=${encodeURIComponent(step)}` + (attempt ? `&attempt=${attempt}` : "");
}
function itemHref(runId, item) { return `/runs/${encodeURIComponent(runId)}?path=${encodeURIComponent(item)}`; }

function when(t) { return t ? new Date(t * 1000).toLocaleString() : "-"; }
// A time as people say it ("3 min ago"), the absolute ISO time in its title (and datetime).
function ago(t, now) {
  const s = (now ?? Date.now()) / 1000 - t;
  if (s < 10) return s < -60 ? new Date(t * 1000).toLocaleString() : "just now";
  if (s < 60) return `${Math.floor(s)} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  if (s < 30 * 86400) { const d = Math.floor(s / 86400); return d === 1 ? "yesterday" : `${d} days ago`; }
  return new Date(t * 1000).toLocaleDateString();
}
function at(t) {
  if (!t) return el("span", { text: "-" });
  const iso = new Date(t * 1000).toISOString();
  return el("time", { datetime: iso, title: iso, text: ago(t) });
}
// A date input's day (YYYY-MM-DD) as epoch seconds at its local midnight (`next`: the day after's).
function midnight(day, next) {
  const [y, m, d] = day.split("-").map(Number);
  return new Date(y, m - 1, d + (next ? 1 : 0)).getTime() / 1000;
}
function took(s) {
  if (s === null || s === undefined) return "-";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 120) return s.toFixed(1) + " s";
  return (s / 60).toFixed(1) + " min";
}
function json(v) { return JSON.stringify(v, null, 1); }

function csrf() {
  const m = document.cookie.match(/(?:^|; )conveyor_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function problem(body, fallback) {
  const e = body && body.error;
  const text = (e && (e.message || e)) || (body && body.detail) || fallback;
  return typeof text === "string" ? text : JSON.stringify(text);
}

async function get(url) {
  const r = await fetch(url, { credentials: "same-origin" });
  if (r.status === 401) { location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
  if (!r.ok) throw new Error(problem(await r.json().catch(() => ({})), r.statusText));
  return r.json();
}

async function post(url, body) {
  const r = await fetch(url, { method: "POST", credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify(body || {}) });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(problem(data, r.statusText));
  return data;
}

function show(...nodes) {
  const main = document.getElementById("main");
  main.replaceChildren(...nodes);
}

// When a page has drawn (read by benchmarks/ui.py): the first time only.
function mark(name) {
  if (!performance.getEntriesByName(name).length) performance.mark(name);
}

function poll(fn, ms) { clearTimeout(timer); timer = setTimeout(fn, ms); }

// --- runs ------------------------------------------------------------------------------------

async function runsPage() {
  const params = new URLSearchParams(location.search);
  const state = { status: params.get("status") || "", pipeline: params.get("pipeline") || "",
    user: params.get("user") || "", q: params.get("q") || "", tag: params.get("tag") || "",
    since: params.get("since") || "", until: params.get("until") || "", offset: +(params.get("offset") || 0) };
  const table = el("tbody");
  const pager = el("div", { class: "pager" });
  const status = el("select", { id: "f-status", "aria-label": "status", onchange: () => go({ status: status.value, offset: 0 }) },
    ...["", "queued", "running", "succeeded", "failed", "cancelled", "interrupted"].map(s => el("option", { value: s, text: s || "any status" })));
  status.value = state.status;
  const pipeline = el("select", { id: "f-pipeline", "aria-label": "pipeline", onchange: () => go({ pipeline: pipeline.value, offset: 0 }) });
  const user = el("select", { id: "f-user", "aria-label": "user", onchange: () => go({ user: user.value, offset: 0 }) });
  const search = el("input", { id: "f-q", placeholder: "run id", "aria-label": "run id contains", value: state.q });
  search.onchange = () => go({ q: search.value, offset: 0 });
  const tag = el("select", { id: "f-tag", "aria-label": "tag", onchange: () => go({ tag: tag.value, offset: 0 }) });
  const since = el("input", { id: "f-since", type: "date", value: state.since, "aria-label": "started on or after" });
  const until = el("input", { id: "f-until", type: "date", value: state.until, "aria-label": "started on or before" });
  since.onchange = () => go({ since: since.value, offset: 0 });
  until.onchange = () => go({ until: until.value, offset: 0 });
  const picked = new Map();  // run id -> when it started: the two to compare
  const compare = el("button", { id: "compare", type: "button", disabled: "" });
  compare.onclick = () => {
    if (picked.size !== 2) return;
    const [a, b] = [...picked.entries()].sort((x, y) => (x[1] || 0) - (y[1] || 0)).map(e => e[0]);  // older first
    location.href = `/compare/${encodeURIComponent(a)}/${encodeURIComponent(b)}`;
  };
  function pickedChanged() {
    compare.disabled = picked.size !== 2;
    compare.textContent = picked.size === 2 ? "Compare the two runs" : `Compare (choose two: ${picked.size} chosen)`;
  }
  pickedChanged();
  // The local UI has no users: that column only on the server. A local run has one tag (its
  // record's), a server run a list (submitted with it).
  const columns = [["", r => el("input", { type: "checkbox", class: "pick", "data-run": r.id, "aria-label": "choose run " + r.id,
      checked: picked.has(r.id) ? "" : null, onchange: (e) => { if (e.target.checked) picked.set(r.id, r.started_at); else picked.delete(r.id); pickedChanged(); } })],
    ["run", r => el("a", { href: "/runs/" + encodeURIComponent(r.id), text: r.id })], ["status", r => badge(r.status)],
    ["pipeline", r => r.pipeline || ""], ["tag", r => Array.isArray(r.tags) ? r.tags.join(", ") : r.tag == null ? "" : typeof r.tag === "string" ? r.tag : JSON.stringify(r.tag)], ["user", r => r.user || ""], ["started", r => at(r.started_at)],
    ["duration", r => took(r.duration)], ["progress", r => progress(r.progress)]]
    .filter(([h]) => !(h === "user" && session.mode === "local"));
  function go(change) {
    Object.assign(state, change);
    const q = new URLSearchParams(Object.entries(state).filter(([, v]) => v !== "" && v !== 0));
    history.replaceState(null, "", "/" + (q.toString() ? "?" + q : ""));
    load();
  }
  show(el("h1", { text: "Runs" }), el("div", { class: "filters" }, status, pipeline, user, tag, search,
    el("label", {}, "from ", since), el("label", {}, "to ", until), compare),
    el("table", { id: "runs" }, el("thead", {}, el("tr", {}, ...columns.map(([h]) => el("th", { text: h })))), table),
    pager);
  async function load() {
    // the days chosen, as the local midnights they start at (the server cannot know this zone)
    const q = new URLSearchParams({ ...state, limit: 50, since: state.since ? midnight(state.since) : "",
      until: state.until ? midnight(state.until, true) : "" });
    const data = await get("/ui/api/runs?" + q);
    fill(pipeline, data.pipelines, state.pipeline, "any pipeline");
    fill(user, data.users, state.user, "any user");
    fill(tag, data.tags || [], state.tag, "any tag");
    user.hidden = !data.users.length;
    tag.hidden = !(data.tags || []).length;
    table.replaceChildren(...data.runs.map(r => el("tr", { "data-run": r.id },
      ...columns.map(([, cell]) => { const v = cell(r); return v instanceof Node ? el("td", {}, v) : el("td", { text: v }); }))));
    const end = Math.min(state.offset + data.runs.length, data.total);
    pager.replaceChildren(
      el("button", { id: "runs-prev", text: "previous", disabled: state.offset > 0 ? null : "", onclick: () => go({ offset: Math.max(0, state.offset - 50) }) }),
      el("span", { id: "count", text: data.total ? `${state.offset + 1}–${end} of ${data.total}` : "no runs" }),
      el("button", { id: "runs-next", text: "next", disabled: end < data.total ? null : "", onclick: () => { if (end < data.total) go({ offset: state.offset + 50 }); } }));
    mark("conveyor:runs-drawn");
    // Active runs change by the second; otherwise new runs still appear, less often.
    poll(load, data.runs.some(r => r.status === "running" || r.status === "queued") ? 2000 : 10000);
  }
  await load();
}

function fill(select, values, current, none) {
  const wanted = ["", ...values];
  if (select.options.length === wanted.length) return;
  select.replaceChildren(...wanted.map(v => el("option", { value: v, text: v || none })));
  select.value = current;
}

// Progress: one bar segment per outcome (succeeded green, failed red, stopped purple,
// running amber), over the map items when the run has any, else over its steps.
const OUTCOMES = ["succeeded", "failed", "stopped", "running"];
function progress(p) {
  if (!p) return "";
  const said = (what) => OUTCOMES.slice(1).filter(k => p[`${what}_${k}`]).map(k => `${p[`${what}_${k}`]} ${k}`);
  const line = (what, n) => `${p[what + "_done"]}/${n} ${what}` + (said(what).length ? ` (${said(what).join(", ")})` : "");
  const parts = [line("steps", p.steps)];
  if (p.items) parts.push(line("items", p.items));
  const of = p.items ? "items" : "steps", n = p[of];
  const bar = el("span", { class: "bar", "data-of": of });
  for (const k of OUTCOMES) {
    const v = p[`${of}_${k}`] ?? (k === "succeeded" ? p[`${of}_done`] : 0);
    if (!v || !n) continue;
    const part = el("span", { class: "seg-" + k, title: `${v} ${k}` });
    part.style.width = (100 * v / n).toFixed(2) + "%";
    bar.append(part);
  }
  return el("span", { class: "progress", title: "steps: the pipeline's top-level steps (a parallel, loop or conditional is one); items: every map's items" },
    bar, " " + parts.join(", "));
}

// --- one run ---------------------------------------------------------------------------------

async function runPage(runId) {
  const params = new URLSearchParams(location.search);
  let level = params.get("path") || "";
  let mapPath = params.get("map") || "";
  let mapPage = 0;
  // Opened on an item (a link from what failed, the map or the timeline): its card is drawn
  // below the DAG, so it is scrolled to and focused once, when first drawn.
  let toItem = /\/\d+$/.test(level);
  const summary = el("div", { id: "failures" });
  const head = el("div", { class: "card", id: "header" });
  const crumbs = el("div", { class: "crumbs" });
  const tabs = el("nav", { class: "tabs", id: "level-tabs", "aria-label": "branches or iterations" });
  const dag = el("div", { class: "dag", id: "dag" });
  const item = el("div", { id: "item" });
  const mapPanel = el("div", { id: "map" });
  const steps = el("div", { id: "steps" });
  const gantt = el("div", { id: "gantt" });
  const files = el("div", { id: "artifacts" });
  show(el("h1", {}, "Run ", el("span", { text: runId })), summary, head, el("h2", { text: "DAG" }), crumbs, tabs, dag, item, mapPanel,
    el("h2", { text: "Steps" }), steps, el("h2", { text: "Artifacts" }), files, el("h2", { text: "Timeline" }), gantt);
  function setUrl() {
    const q = new URLSearchParams();
    if (level) q.set("path", level);
    if (mapPath) q.set("map", mapPath);
    history.replaceState(null, "", "/runs/" + encodeURIComponent(runId) + (q.toString() ? "?" + q : ""));
  }
  // The composites of the level shown whose toggles were pressed (kept while it is shown)
  let toggled = { level, expand: new Set(), fold: new Set() };
  async function load() {
    if (toggled.level !== level) toggled = { level, expand: new Set(), fold: new Set() };
    const q = new URLSearchParams({ path: level });
    for (const n of toggled.expand) q.append("expand", n);
    for (const n of toggled.fold) q.append("fold", n);
    const data = await get(`/ui/api/runs/${encodeURIComponent(runId)}?${q}`);
    failures(summary, data, runId, load);
    header(head, data, runId, load);
    // crumbs and tabs are redrawn by what they open: the keyboard stays on them
    const inNav = crumbs.contains(document.activeElement) || tabs.contains(document.activeElement);
    crumbs.replaceChildren(...data.crumbs.map(c => el("a", { href: "#", text: c.label + " ›", onclick: (e) => { e.preventDefault(); level = c.path; setUrl(); load(); } })));
    // every branch of a parallel or conditional, every iteration of a loop, one click away
    const here = data.crumbs.length ? data.crumbs[data.crumbs.length - 1].path : "";
    tabs.replaceChildren(...(data.choices || []).map(c => el("a", { href: itemHref(runId, c.path), text: c.label, "data-path": c.path,
      "aria-current": c.path === here ? "page" : null, onclick: (e) => { e.preventDefault(); level = c.path; setUrl(); load(); } })));
    if (inNav) (tabs.querySelector("a[aria-current='page']") || crumbs.lastElementChild || tabs.firstElementChild)?.focus();
    drawDag(dag, data.dag, (node) => {
      // a map opens its items' panel and its level (its branch, counted over all items)
      if (node.entry === "item") { mapPath = node.path.replace(/\/\*\//g, "/"); mapPage = 0; setUrl(); loadMap(); }
      if (node.composite) { level = node.path; setUrl(); load(); }
      else if (node.runs_command && !node.path.includes("*")) location.href = logHref(runId, node.path);
    }, (node) => {
      // a composite's toggle: expanded in place, or folded back into its one node
      const [add, drop] = node.expanded ? [toggled.fold, toggled.expand] : [toggled.expand, toggled.fold];
      add.add(node.name); drop.delete(node.name);
      load();
    });
    mark("conveyor:dag-drawn");
    itemPanel(item, data.dag.item, runId);
    if (toItem && data.dag.item) {
      toItem = false;
      const card = document.getElementById("item-card");
      card.scrollIntoView({ block: "start" });
      card.focus({ preventScroll: true });
    }
    stepTable(steps, data.tree, runId);
    artifactsPanel(files, runId, data.header.version);
    drawGantt(gantt, data.gantt, runId);
    mark("conveyor:run-drawn");
    if (mapPath) loadMap();
    if (["running", "queued"].includes(data.header.status)) poll(load, 1500);
  }
  async function loadMap() {
    const m = await get(`/ui/api/runs/${encodeURIComponent(runId)}/map?path=${encodeURIComponent(mapPath)}&page=${mapPage}`);
    const pages = Math.max(1, Math.ceil(m.failed_total / 50));
    mapPanel.replaceChildren(el("h2", {}, "Map ", el("span", { text: m.path })),
      el("p", { id: "map-counts", text: `${m.items} items: ` + Object.entries(m.counts).map(([k, v]) => `${v} ${k}`).join(", ") }),
      histogram(m.histogram),
      el("h2", { text: `Failed items (${m.failed_total})` }),
      el("table", { id: "failed-items" }, el("thead", {}, el("tr", {}, el("th", { text: "item" }), el("th", { text: "error" }), el("th", { text: "log" }))),
        el("tbody", {}, ...m.failed.map(f => el("tr", { "data-item": f.item },
          el("td", {}, el("a", { class: "item-link", href: itemHref(runId, `${m.path}/${f.item}`), text: f.item })),
          el("td", { class: "error", text: f.error }),
          el("td", {}, el("a", { class: "log-link", href: logHref(runId, f.step, f.attempt), text: `attempt ${f.attempt} log` })))))),
      el("div", { class: "pager" },
        el("button", { id: "map-prev", text: "previous", disabled: mapPage > 0 ? null : "", onclick: () => { if (mapPage > 0) { mapPage--; loadMap(); } } }),
        el("span", { text: `page ${m.page + 1} of ${pages}` }),
        el("button", { id: "map-next", text: "next", disabled: mapPage + 1 < pages ? null : "", onclick: () => { if ((mapPage + 1) * 50 < m.failed_total) { mapPage++; loadMap(); } } })));
  }
  await load();
}

// A failed run opens on what failed: each failing step or item, its error, the first lines
// of its log, a link to the attempt's log (and to the item's page), and Retry when offered.
function failures(box, data, runId, reload) {
  const found = data.header.failures || [];
  if (!found.length && data.header.status !== "failed") { box.replaceChildren(); return; }
  const card = el("div", { class: "card failed-card" }, el("h2", { text: found.length ? `What failed (${found.length})` : "The run failed" }));
  if (data.header.error) card.append(el("p", { class: "error", text: data.header.error }));
  for (const f of found) {
    const title = el("div", { class: "failure-title" },
      // a step inside a composite (a branch, a loop's iteration) links to its level of the DAG
      f.item ? el("a", { class: "item-link", href: itemHref(runId, f.item), text: f.path })
        : f.path.includes("/") ? el("a", { class: "level-link", href: itemHref(runId, f.path.split("/").slice(0, -1).join("/")), text: f.path })
        : el("strong", { text: f.path }),
      // a composite that failed by itself has no attempt (0) and no log: its error says why
      f.attempt > 0 ? el("a", { class: "log-link", href: logHref(runId, f.path, f.attempt), text: `attempt ${f.attempt} log` })
        : el("a", { class: "dag-link", href: itemHref(runId, f.path), text: "open in the DAG" }));
    const entry = el("div", { class: "failure", "data-path": f.path }, title);
    if (f.error) entry.append(el("div", { class: "error", text: f.error }));
    if (f.log) entry.append(el("pre", { class: "small log-head", text: f.log }));
    card.append(entry);
  }
  if (data.can_act && ["failed", "cancelled"].includes(data.header.status)) {
    const said = el("span", { class: "error" });
    card.append(el("div", { class: "row-actions" }, el("button", { id: "retry-top", text: "Retry the run", onclick: async () => {
      try { await post(`/ui/api/runs/${encodeURIComponent(runId)}/retry`); reload(); } catch (e) { said.textContent = String(e.message); }
    } }), said));
  }
  box.replaceChildren(card);
}

// A map item's page: the value it was given and each of its steps, whole.
function itemPanel(box, item, runId) {
  if (!item) { box.replaceChildren(); return; }
  const value = item.value_known ? folded(item.value, "item-value") : el("span", { class: "muted", text: "not recorded for this map" });
  const steps = el("div");
  stepTable(steps, item.steps, runId);
  box.replaceChildren(el("div", { class: "card", id: "item-card", tabindex: "-1" }, el("h2", {}, "Item ", el("span", { text: item.path })),
    el("div", { class: "params" }, el("div", { class: "param" }, el("span", { class: "pname", text: item.parameter || "item" }), value)), steps));
}

function header(card, data, runId, reload) {
  const h = data.header;
  const rows = [["status", badge(h.status)], ["pipeline", h.pipeline || ""], ["file", h.pipeline_file || (session.mode === "server" ? "not given" : "built in Python")],
    ["started", at(h.started_at)], ["ended", at(h.ended_at)], ["duration", took(h.duration)],
    ["host", h.host || ""], ["config", Object.entries(h.config).map(([k, v]) => `${k}: ${v}`).join(", ")],
    ["progress", progress(h.progress)]];
  if (h.user) rows.splice(1, 0, ["user", h.user]);
  if (h.tag) rows.push(["tag", h.tag]);
  if (h.error) rows.push(["error", el("span", { class: "error", text: h.error })]);
  if (h.resumed) rows.push(["resumed", `${h.resumed} time(s)`]);
  const grid = el("div", { class: "grid" });
  for (const [k, v] of rows) grid.append(el("span", { class: "muted", text: k }), v instanceof Node ? v : el("span", { text: v }));
  const values = el("div", {}, el("h2", { text: "Initial parameters" }), params(h.initial_parameters, "initial"),
    el("h2", { text: "Final parameters" }), params(h.final_parameters, "final"));
  const actions = el("div", { class: "row-actions" });
  if (data.can_act) {
    const act = (what) => async () => {
      try { await post(`/ui/api/runs/${encodeURIComponent(runId)}/${what}`); reload(); }
      catch (e) { actions.append(el("span", { class: "error", text: String(e.message) })); }
    };
    if (["failed", "cancelled"].includes(h.status)) actions.append(el("button", { id: "retry", text: "Retry", onclick: act("retry") }));
    if (["running", "queued"].includes(h.status)) actions.append(el("button", { id: "cancel", class: "danger", text: "Cancel", onclick: act("cancel") }));
  }
  if (session.mode === "server" && session.actions) {
    actions.append(el("button", { id: "rerun-open", type: "button", "aria-haspopup": "dialog", text: "Re-run with parameters…", onclick: () => rerunDialog(runId) }));
    lineageRows(grid, runId);
  }
  card.replaceChildren(grid, actions, values);
}

function stepTable(box, tree, runId) {
  const body = el("tbody");
  for (const s of tree) {
    const path = s.path.join("/");
    const attempts = el("div");
    for (const a of s.attempts) {
      const line = el("div", { class: "attempt" }, `#${a.attempt} `, badge(a.status), ` ${took(a.duration)}`);
      if (a.exit_code !== null && a.exit_code !== undefined) line.append(` exit ${a.exit_code}`);
      if (a.error) line.append(" ", el("span", { class: "error", text: a.error }));
      if (a.has_log || a.status === "failed") line.append(" ", el("a", { class: "log-link", href: logHref(runId, path, a.attempt), text: "log" }));
      if (a.returns && Object.keys(a.returns).length) line.append(el("div", { class: "returns" }, el("span", { class: "muted", text: "returns" }), params(a.returns)));
      if (a.metrics && Object.keys(a.metrics).length) line.append(el("div", { class: "metrics" }, el("span", { class: "muted", text: "metrics" }), params(a.metrics)));
      for (const c of a.catalog) line.append(artifactLine(runId, path, a.attempt, c));
      attempts.append(line);
    }
    const info = Object.keys(s.info).length ? el("pre", { class: "small", text: json(s.info) }) : "";
    if (s.summary && !s.attempts.length) attempts.prepend(el("div", { class: "summary", text: s.summary }));
    if (s.info.cached) attempts.prepend(el("div", { class: "cached" }, badge("cached"), ` from run ${s.info.cached.run}`));
    else if (s.info.mocked) attempts.prepend(el("div", {}, badge("mocked"), " not run"));
    else if (s.info.patched) attempts.prepend(el("div", {}, badge("patched"), ` ${s.info.patched}`));
    body.append(el("tr", { "data-step": path }, el("td", {}, clipped("span", path, 60)), el("td", { text: s.type || "" }), el("td", {}, badge(s.status)),
      el("td", { text: took(s.duration) }), el("td", {}, attempts, info)));
  }
  box.replaceChildren(el("table", { id: "step-table" }, el("thead", {}, el("tr", {}, ...["step", "type", "status", "duration", "attempts"].map(h => el("th", { text: h })))), body));
}

// --- artifacts -------------------------------------------------------------------------------
// The run's catalog files: a panel listing them (per step in the step table too), download
// links, and a preview dialog built from the server's JSON with textContent only.

function artifactUrl(runId, what, step, attempt, name) {
  const q = new URLSearchParams({ step, attempt: String(attempt), name });
  return `/ui/api/runs/${encodeURIComponent(runId)}/artifacts/${what}?${q}`;
}

function artifactActions(runId, step, attempt, a) {
  if (a.kept === false) return [el("span", { class: "muted", text: "not kept (hash only)" })];
  return [
    el("button", { class: "preview-button", text: "preview", onclick: () => previewArtifact(runId, step, attempt, a.name) }),
    el("a", { class: "download-link", href: artifactUrl(runId, "download", step, attempt, a.name), download: "", text: "download" }),
  ];
}

// One file in the step table: its name, size and digest, with preview and download.
function artifactLine(runId, step, attempt, c) {
  const line = el("div", { class: "artifact", "data-name": c.name }, el("span", { class: "muted", text: "catalog: " }), clipped("code", c.name, 80),
    el("span", { class: "muted", text: ` ${c.size ?? "?"} bytes, sha256 ${String(c.sha256 || "").slice(0, 16)}… ` }));
  if (c.name !== null) line.append(...artifactActions(runId, step, attempt, c));
  return line;
}

async function artifactsPanel(box, runId, version) {
  if (box.dataset.version === String(version)) return;  // a polled run that did not change
  box.dataset.version = String(version);
  let data;
  try { data = await get(`/ui/api/runs/${encodeURIComponent(runId)}/artifacts`); }
  catch (err) { box.replaceChildren(el("p", { class: "error", text: String(err.message) })); return; }
  if (!data.artifacts.length) { box.replaceChildren(el("p", { class: "muted", text: "No files in the catalog (map items' files are on each item's steps)." })); return; }
  const rows = data.artifacts.map(a => el("tr", { "data-step": a.step, "data-name": a.name },
    el("td", {}, clipped("span", a.step, 50)), el("td", { text: a.attempt }), el("td", {}, clipped("code", a.name, 70)),
    el("td", { text: a.size ?? "?" }), el("td", { class: "row-actions" }, ...artifactActions(runId, a.step, a.attempt, a))));
  box.replaceChildren(el("table", { id: "artifact-table" },
    el("thead", {}, el("tr", {}, ...["step", "attempt", "file", "bytes", ""].map(h => el("th", { text: h })))), el("tbody", {}, ...rows)),
    data.more ? el("p", { class: "muted", text: `and ${data.more} more` }) : "");
}

function previewBody(p, runId, step, attempt) {
  if (p.kind === "table") {
    return el("table", { id: "preview-table" }, el("thead", {}, el("tr", {}, ...p.columns.map(c => el("th", { text: c })))),
      el("tbody", {}, ...p.rows.map(r => el("tr", {}, ...r.map(c => el("td", { text: c }))))));
  }
  if (p.kind === "image") return el("img", { id: "preview-image", alt: p.name, src: artifactUrl(runId, "image", step, attempt, p.name) });
  if (p.kind === "notebook") {
    return el("div", { id: "preview-cells" }, ...p.cells.map(c => el("div", { class: "nb-cell nb-" + c.type.replace(/[^a-z]/g, "") },
      el("div", { class: "muted", text: c.type }), el("pre", { class: "small", text: c.source }),
      ...c.outputs.map(o => el("pre", { class: "small nb-output", text: o })))));
  }
  if (p.kind === "none") return el("p", { class: "muted", id: "preview-reason", text: p.reason || "no preview" });
  return el("pre", { id: "preview-text", text: p.text });
}

// Tab and Shift+Tab go round the dialog's own controls: Chromium's modal dialog lets the
// focus leave for the browser's toolbar, from where the keyboard has no way back in.
function keepFocusIn(dialog, e) {
  const stops = [...dialog.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex='0']")]
    .filter(n => !n.disabled && n.getClientRects().length);
  if (!stops.length) return;
  const first = stops[0], last = stops[stops.length - 1];
  if (e.shiftKey && document.activeElement === first) { e.preventDefault(); last.focus(); }
  else if (!e.shiftKey && document.activeElement === last) { e.preventDefault(); first.focus(); }
}

async function previewArtifact(runId, step, attempt, name) {
  let dialog = document.getElementById("preview-dialog");
  if (!dialog) {
    dialog = el("dialog", { id: "preview-dialog", "aria-label": "file preview" });
    // Escape closes a modal dialog (the browser's own); either way the keyboard goes back
    // to the button that opened it.
    dialog.addEventListener("close", () => { if (dialog.opener && dialog.opener.isConnected) dialog.opener.focus(); });
    dialog.addEventListener("keydown", (e) => { if (e.key === "Tab") keepFocusIn(dialog, e); });
    document.body.append(dialog);
  }
  if (!dialog.open) dialog.opener = document.activeElement;
  const close = el("button", { id: "preview-close", text: "close", onclick: () => dialog.close() });
  dialog.replaceChildren(el("div", { class: "preview-head" }, clipped("h2", name, 80), close), el("p", { class: "muted", text: "loading…" }));
  if (!dialog.open) dialog.showModal();
  try {
    const p = await get(artifactUrl(runId, "preview", step, attempt, name));
    const note = p.truncated ? el("p", { class: "muted", id: "preview-cut", text: `only the start is shown (${p.size} bytes in all)` }) : "";
    dialog.replaceChildren(el("div", { class: "preview-head" }, clipped("h2", name, 80),
      el("a", { href: artifactUrl(runId, "download", step, attempt, name), download: "", text: "download" }), close),
      previewBody(p, runId, step, attempt), note);
    dialog.dataset.kind = p.kind;
  } catch (err) {
    dialog.replaceChildren(el("div", { class: "preview-head" }, clipped("h2", name, 80), close), el("p", { class: "error", text: String(err.message) }));
  }
  if (dialog.open) close.focus();  // its content was replaced: the focus is put back in it
  mark("conveyor:preview-drawn");
}

// --- logs ------------------------------------------------------------------------------------

async function logsPage(runId) {
  const params = new URLSearchParams(location.search);
  const step = params.get("step") || "";
  const attempt = +(params.get("attempt") || 0) || null;
  const pre = el("pre", { id: "log" });
  const status = el("p", { class: "muted", id: "log-status" });
  const base = `/ui/api/runs/${encodeURIComponent(runId)}/log?step=${encodeURIComponent(step)}`;
  let n = attempt;
  if (!n) {
    const run = await get(`/ui/api/runs/${encodeURIComponent(runId)}`);
    const rec = run.tree.find(s => s.path.join("/") === step);
    n = rec && rec.attempts.length ? rec.attempts[rec.attempts.length - 1].attempt : 1;
  }
  const more = el("button", { id: "more", text: "load more", hidden: true });
  show(el("h1", {}, el("a", { href: "/runs/" + encodeURIComponent(runId), text: runId }), " / ", el("span", { text: step }), ` attempt ${n}`),
    el("p", {}, el("a", { id: "download", href: `/ui/api/runs/${encodeURIComponent(runId)}/log/download?step=${encodeURIComponent(step)}&attempt=${n}`, text: "download" })),
    status, pre, more);
  let next = 0;
  async function page() {
    const data = await get(`${base}&attempt=${n}&offset=${next}`);
    pre.append(document.createTextNode(readable(data.text)));
    next = data.next;
    more.hidden = next >= data.size;
    return data;
  }
  more.onclick = page;
  const first = await page();
  if (first.running) {
    status.textContent = "following the running step…";
    const source = new EventSource(`/ui/api/runs/${encodeURIComponent(runId)}/log/stream?step=${encodeURIComponent(step)}&attempt=${n}&offset=${next}`);
    source.onmessage = (e) => { const d = JSON.parse(e.data); pre.append(document.createTextNode(readable(d.text))); next = d.next; };
    source.addEventListener("end", () => { status.textContent = "the step has ended"; source.close(); });
  }
}

// --- metrics ---------------------------------------------------------------------------------

async function metricsPage() {
  const params = new URLSearchParams(location.search);
  const runs = await get("/ui/api/runs?limit=1");
  const select = el("select", { id: "m-pipeline", "aria-label": "pipeline", onchange: () => { location.search = "?pipeline=" + encodeURIComponent(select.value); } },
    ...["", ...runs.pipelines].map(p => el("option", { value: p, text: p || "choose a pipeline" })));
  const pipeline = params.get("pipeline") || "";
  select.value = pipeline;
  const chart = el("div", { id: "chart" }), table = el("div");
  show(el("h1", { text: "Metrics across runs" }), el("div", { class: "filters" }, select), chart, table);
  if (!pipeline) return;
  const data = await get("/ui/api/metrics?pipeline=" + encodeURIComponent(pipeline));
  const names = [...new Set(data.runs.flatMap(r => Object.keys(r.metrics)))];
  const body = el("tbody", {}, ...data.runs.map(r => el("tr", {}, el("td", {}, el("a", { href: "/runs/" + encodeURIComponent(r.run_id), text: r.run_id })),
    el("td", {}, badge(r.status)), el("td", { text: when(r.started_at) }), ...names.map(n => el("td", { text: r.metrics[n] ?? "" })))));
  table.replaceChildren(el("table", { id: "metrics-table" }, el("thead", {}, el("tr", {}, ...["run", "status", "started"].map(h => el("th", { text: h })), ...names.map(n => el("th", { text: n })))), body));
  const W = 720, H = 220, L = 70, top = 10, palette = ["#2b6cb0", "#c53030", "#276749", "#975a16", "#6b46c1", "#9c4221"];
  const root = svg("svg", { width: L + W + 260, height: H + top + 60, id: "metrics-chart" });
  const n = data.runs.length;
  const x = (i) => L + (n > 1 ? (i / (n - 1)) * W : W / 2);
  const series = names.map(name => data.runs.map((r, i) => [i, Number(r.metrics[name])]).filter(([, v]) => Number.isFinite(v))).filter(p => p.length);
  const one = series.length === 1;
  const all = series.flat().map(p => p[1]);
  const glo = Math.min(...all), ghi = Math.max(...all);
  names.forEach((name, k) => {
    const pts = data.runs.map((r, i) => [i, Number(r.metrics[name])]).filter(([, v]) => Number.isFinite(v));
    if (!pts.length) return;
    const lo = Math.min(...pts.map(p => p[1])), hi = Math.max(...pts.map(p => p[1]));
    // one metric: its own values on the axis; several: each scaled to its range (the legend gives it)
    const [a, b] = one ? [glo, ghi] : [lo, hi];
    const y = (v) => top + H - ((v - a) / ((b - a) || 1)) * H;
    const colour = palette[k % palette.length];
    root.append(svg("polyline", { points: pts.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
    for (const [i, v] of pts) { const c = svg("circle", { cx: x(i), cy: y(v), r: 3, fill: colour }); c.append(svg("title", {}, `${data.runs[i].run_id} ${name}: ${v}`)); root.append(c); }
    root.append(svg("text", { x: L + W + 20, y: 20 + k * 16, fill: colour }, `${clip(name, 20)} (${lo} … ${hi})`));
  });
  if (series.length) {
    axisY(root, L, top + H, top, one ? glo : 0, one ? ghi : 100, one ? names.find(m => data.runs.some(r => Number.isFinite(Number(r.metrics[m])))) : "% of each metric's range", v => String(+v.toPrecision(4)));
    axisX(root, L, L + W, top + H, 1, Math.max(n, 1), "run, oldest to newest (number)", v => String(Math.round(v)));
  }
  chart.replaceChildren(root);
}

// --- signing in ------------------------------------------------------------------------------

function loginPage() {
  const token = el("input", { id: "token", type: "password", placeholder: "cvt_…", autocomplete: "off", size: 50 });
  const message = el("p", { class: "error", id: "login-error" });
  const form = el("form", { id: "login" }, el("p", { text: "Sign in with an API token (conveyor server tokens create NAME)." }), token, " ", el("button", { type: "submit", text: "Sign in" }), message);
  form.onsubmit = async (e) => {
    e.preventDefault();
    try {
      const next = new URLSearchParams(location.search).get("next") || "/";
      const signed = await post("/ui/api/login", { token: token.value, next });
      // The server answers with the same-origin path to go to (never "//host" or "/\\host").
      location.href = typeof signed.next === "string" && /^\/(?![\/\\])/.test(signed.next) ? signed.next : "/";
    } catch (err) { message.textContent = String(err.message); }
  };
  show(el("h1", { text: "Sign in" }), form);
}

async function start() {
  session = await fetch("/ui/api/session", { credentials: "same-origin" }).then(r => r.json());
  const who = document.getElementById("who");
  if (session.user) {
    who.replaceChildren(el("span", { text: session.user + (session.admin ? " (admin)" : "") }), " ",
      el("button", { id: "logout", text: "sign out", onclick: async () => { await post("/ui/api/logout"); location.href = "/login"; } }));
  } else if (session.mode === "local") {
    who.textContent = "local runs (read-only)";
  }
  const path = location.pathname;
  try {
    if (path === "/login") return loginPage();
    if (session.mode === "server" && !session.user) { location.href = "/login?next=" + encodeURIComponent(path + location.search); return; }
    let m;
    if ((m = path.match(/^\/runs\/([^/]+)\/logs$/))) return await logsPage(decodeURIComponent(m[1]));
    if ((m = path.match(/^\/runs\/([^/]+)$/))) return await runPage(decodeURIComponent(m[1]));
    if (path === "/metrics") return await metricsPage();
    if ((m = path.match(/^\/compare\/([^/]+)\/([^/]+)$/))) return await comparePage(decodeURIComponent(m[1]), decodeURIComponent(m[2]));
    return await runsPage();
  } catch (err) {
    show(el("p", { class: "error", id: "page-error", text: String(err.message) }));
  }
}

document.addEventListener("DOMContentLoaded", start);

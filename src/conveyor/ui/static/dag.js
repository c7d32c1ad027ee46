// conveyor's web UI: the DAG, drawn as the server laid it out (ui/layout.py). Loaded before
// app.js, whose helpers (el, svg, clip, statusClass) it uses when called. Text from the run
// log goes into SVG text nodes and titles, never markup.
"use strict";

// The DAG as the server laid it out (ui/layout.py): boxes at x, y; edges as splines through
// their route; a map drawn stacked with its counts; pan by dragging, zoom with the wheel.
const NODE_W = 180, NODE_H = 48;
function spline(points) {
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1], [x1, y1] = points[i], dy = (y1 - y0) / 2;
    d += ` C${x0},${y0 + dy} ${x1},${y1 - dy} ${x1},${y1}`;
  }
  return d;
}
function countsText(counts) {
  return Object.entries(counts || {}).map(([k, v]) => `${v} ${k}`).join(" · ");
}
// A graph over this many nodes gets a minimap: the whole graph small, the part in view
// outlined; a click on it brings that part into view.
const MINIMAP_OVER = 50;
function drawDag(box, dag, open, toggle) {
  // Redrawn on every poll and on every level opened or composite toggled: the node (or the
  // toggle) that had the keyboard focus gets it back (or, after a level changed, the first
  // node that opens something).
  const active = box.contains(document.activeElement) ? document.activeElement : null;
  const focused = active ? active.closest("g.node") : null;
  const hadFocus = focused ? focused.dataset.path : null;
  const hadToggle = active && active.closest("g.toggle") ? active.closest("g.toggle").dataset.toggles : null;
  if (dag.error) { box.replaceChildren(el("p", { class: "muted", text: dag.error })); return; }
  const width = Math.max(dag.width || 0, 200), height = Math.max(dag.height || 0, 80);
  // Boxes as wide as the level's longest label (up to a limit the server sets), drawn at
  // their own size: a big graph scrolls in its panel rather than shrinking its text.
  const W = dag.node_width || NODE_W, chars = dag.label_chars || 24;
  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, id: "dag-svg", class: "pannable" });
  const defs = svg("defs");
  for (const [id, cls] of [["arrow", "arrow"], ["arrow-failure", "arrow failure"]]) {
    const marker = svg("marker", { id, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto" });
    marker.append(svg("path", { d: "M0,0 L10,5 L0,10 z", class: cls }));
    defs.append(marker);
  }
  root.append(defs);
  const view = svg("g", { class: "viewport" });
  root.append(view);
  const byName = Object.fromEntries(dag.nodes.map(n => [n.name, n]));
  for (const e of dag.edges) {
    if (!e.points || !byName[e.from] || !byName[e.to]) continue;
    const dim = byName[e.from].dim || byName[e.to].dim;
    view.append(svg("path", { d: spline(e.points), class: `edge ${e.kind === "on_failure" ? "failure" : e.kind}` + (dim ? " dim" : ""),
      "marker-end": e.kind === "on_failure" ? "url(#arrow-failure)" : "url(#arrow)" }));
  }
  for (const n of dag.nodes) {
    const clickable = !n.join && (n.composite || n.runs_command) && n.path;
    const g = svg("g", { class: `node ${statusClass(n.status)}` + (clickable ? " clickable" : "") + (n.dim ? " dim" : "") + (n.join ? " join" : "") + (n.entry === "item" ? " stacked" : ""),
      "data-name": n.name, "data-status": n.status, "data-path": n.path, transform: `translate(${n.x},${n.y})` });
    const full = `${n.name} (${n.type}): ${n.status}` + (n.counts && Object.keys(n.counts).length ? ` — ${countsText(n.counts)}` : "") + (n.label ? ` — ${n.label}` : "");
    g.append(svg("title", {}, full));
    if (n.join) {
      g.append(svg("circle", { cx: W / 2, cy: NODE_H / 2, r: 7 }));
    } else {
      if (n.entry === "item") {  // a map: a stack of items
        g.append(svg("rect", { x: 8, y: -8, width: W, height: NODE_H, class: "under" }));
        g.append(svg("rect", { x: 4, y: -4, width: W, height: NODE_H, class: "under" }));
      }
      g.append(svg("rect", { width: W, height: NODE_H, class: "box" }));
      const shown = n.group ? n.name.split("/").pop() : n.name;
      g.append(svg("text", { x: 8, y: 18, class: "name" }, clip(shown, n.expandable ? chars - 3 : chars)));  // room for the toggle
      // a loop says it repeats (its label gives the iterations); a branch step, its branch
      let sub = (n.shape === "repeat" ? "↻ " : "") + n.type + (n.branch ? ` · ${n.branch}` : "");
      if (n.counts && Object.keys(n.counts).length) sub = countsText(n.counts);
      if (n.label) sub += ` · ${n.label}`;
      g.append(svg("text", { x: 8, y: 36, class: "sub" }, clip(sub, chars + 3)));
    }
    if (clickable) {
      // A node that opens something is a button to the keyboard and to screen readers:
      // reached with Tab, opened with Enter or Space, named by its whole label.
      g.setAttribute("tabindex", "0");
      g.setAttribute("role", "button");
      g.setAttribute("aria-label", full);
      g.addEventListener("click", () => open(n));
      g.addEventListener("keydown", (e) => {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); open(n); }
      });
    }
    view.append(g);
    if (n.expandable && toggle) view.append(toggleButton(n, W, () => toggle(n)));
  }
  const tools = el("div", { class: "dag-tools" });
  const mini = dag.nodes.length > MINIMAP_OVER ? minimap(dag, W, width, height) : null;
  box.replaceChildren(tools, ...(mini ? [mini.holder] : []), root);
  panZoom(root, view, width, height, tools, mini, box);
  const again = hadToggle !== null && [...root.querySelectorAll("g.toggle")].find(g => g.dataset.toggles === hadToggle);
  if (again) again.focus({ preventScroll: true });
  else if (hadFocus !== null) {
    const again = [...root.querySelectorAll("g.node.clickable")].find(g => g.dataset.path === hadFocus)
      || root.querySelector("g.node.clickable");
    if (again) again.focus({ preventScroll: true });
  }
}

// A composite's expand/collapse toggle: a small button on its box's top right corner, beside
// the node rather than inside it (a button inside a button is lost to screen readers),
// reached with Tab and pressed with Enter or Space like the nodes.
function toggleButton(n, W, press) {
  const label = `${n.expanded ? "collapse" : "expand"} ${n.name}`;
  const t = svg("g", { class: "toggle", "data-toggles": n.name, tabindex: 0, role: "button", "aria-label": label,
    "aria-expanded": n.expanded ? "true" : "false", transform: `translate(${n.x + W - 22},${n.y + 4})` });
  t.append(svg("title", {}, label));
  t.append(svg("rect", { width: 18, height: 18, rx: 3 }));
  t.append(svg("text", { x: 9, y: 14 }, n.expanded ? "−" : "+"));
  t.addEventListener("pointerdown", (e) => e.stopPropagation());
  t.addEventListener("click", (e) => { e.stopPropagation(); press(); });
  t.addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); press(); }
  });
  return t;
}

// The minimap: every box as a small rectangle, and the part of the graph in view outlined.
function minimap(dag, W, width, height) {
  const map = svg("svg", { class: "minimap", id: "dag-minimap", viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": "minimap of the graph: click to bring a part into view" });
  for (const n of dag.nodes) {
    if (!n.join) map.append(svg("rect", { x: n.x, y: n.y, width: W, height: NODE_H, class: `mini ${statusClass(n.status)}` }));
  }
  const seen = svg("rect", { class: "minimap-view", id: "minimap-view", x: 0, y: 0, width, height });
  map.append(seen);
  const holder = el("div", { class: "dag-minimap" });
  holder.append(map);
  return { holder, map, seen };
}

// Pan and zoom by the viewBox (no inline style: the page's CSP allows none).
function panZoom(root, view, width, height, tools, mini, panel) {
  let box = { x: 0, y: 0, w: width, h: height };
  // The part of the graph in view, in the graph's units: the viewBox as far as the panel,
  // which scrolls a graph taller than it, shows it.
  const inView = () => {
    const r = root.getBoundingClientRect(), p = panel.getBoundingClientRect();
    if (!r.width || !r.height) return { ...box };
    const left = Math.max(r.left, p.left), right = Math.min(r.right, p.right);
    const top = Math.max(r.top, p.top), bottom = Math.min(r.bottom, p.bottom);
    const sx = box.w / r.width, sy = box.h / r.height;
    return { x: box.x + (left - r.left) * sx, y: box.y + (top - r.top) * sy,
      w: Math.max(0, right - left) * sx, h: Math.max(0, bottom - top) * sy };
  };
  const follow = () => {
    if (!mini) return;
    const v = inView();
    for (const [k, value] of Object.entries({ x: v.x, y: v.y, width: v.w, height: v.h })) mini.seen.setAttribute(k, value.toFixed(1));
  };
  const apply = () => { root.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`); follow(); };
  if (!mini) panel.onscroll = null;
  if (mini) {
    panel.onscroll = follow;  // one listener, replaced on each redraw
    // a click on the minimap centres the view on that point of the graph
    mini.map.addEventListener("click", (e) => {
      const m = mini.map.getScreenCTM();
      if (!m) return;
      const pt = new DOMPoint(e.clientX, e.clientY).matrixTransform(m.inverse()), v = inView();
      // how far to move along one axis: none where the whole graph is in view already, else
      // to centre the point, kept inside the graph (no empty band where boxes are cut off)
      const shift = (p, start, span, total) =>
        span >= total ? 0 : Math.min(Math.max(p - span / 2, 0), total - span) - start;
      box = { ...box, x: box.x + shift(pt.x, v.x, v.w, width), y: box.y + shift(pt.y, v.y, v.h, height) };
      apply();
    });
    requestAnimationFrame(follow);
  }
  const zoom = (factor, cx, cy) => {
    const w = Math.min(Math.max(box.w * factor, 80), width * 4), k = w / box.w;
    box = { x: cx - (cx - box.x) * k, y: cy - (cy - box.y) * k, w, h: box.h * k };
    apply();
  };
  const at = (e) => {
    const r = root.getBoundingClientRect();
    return [box.x + ((e.clientX - r.left) / r.width) * box.w, box.y + ((e.clientY - r.top) / r.height) * box.h];
  };
  root.addEventListener("wheel", (e) => { e.preventDefault(); const [x, y] = at(e); zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, x, y); }, { passive: false });
  let drag = null;
  root.addEventListener("pointerdown", (e) => { if (e.target.closest(".clickable")) return; drag = { x: e.clientX, y: e.clientY, box: { ...box } }; root.classList.add("dragging"); });
  window.addEventListener("pointerup", () => { drag = null; root.classList.remove("dragging"); });
  root.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const r = root.getBoundingClientRect();
    box = { ...drag.box, x: drag.box.x - ((e.clientX - drag.x) / r.width) * box.w, y: drag.box.y - ((e.clientY - drag.y) / r.height) * box.h };
    apply();
  });
  tools.append(el("button", { id: "zoom-in", text: "+", title: "zoom in", onclick: () => zoom(1 / 1.25, box.x + box.w / 2, box.y + box.h / 2) }),
    el("button", { id: "zoom-out", text: "−", title: "zoom out", onclick: () => zoom(1.25, box.x + box.w / 2, box.y + box.h / 2) }),
    el("button", { id: "zoom-fit", text: "fit", title: "the whole graph", onclick: () => { box = { x: 0, y: 0, w: width, h: height }; apply(); } }));
}

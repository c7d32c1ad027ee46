// conveyor's web UI: charts with axes and units (the timeline, item durations; the metrics
// page uses the axes). Loaded before app.js, whose helpers (el, svg, took, statusClass,
// logHref, itemHref) it uses when called.
"use strict";

// Axis ticks: about `count` round values between lo and hi (1, 2 or 5 times a power of ten).
function ticks(lo, hi, count) {
  const span = hi - lo || 1, raw = span / count, p = Math.pow(10, Math.floor(Math.log10(raw)));
  const stepSize = [1, 2, 5, 10].map(m => m * p).find(v => v >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / stepSize) * stepSize; v <= hi + stepSize * 1e-9; v += stepSize) out.push(+v.toFixed(12));
  return out;
}
// Seconds in the unit that suits the whole span (so one axis reads in one unit).
function unitFor(span) { return span < 1 ? ["ms", 1000] : span < 120 ? ["s", 1] : span < 7200 ? ["min", 1 / 60] : ["h", 1 / 3600]; }
function axisX(root, x0, x1, y, lo, hi, label, fmt) {
  root.append(svg("line", { x1: x0, y1: y, x2: x1, y2: y, class: "axis" }));
  for (const v of ticks(lo, hi, 6)) {
    const x = x0 + ((v - lo) / ((hi - lo) || 1)) * (x1 - x0);
    root.append(svg("line", { x1: x, y1: y, x2: x, y2: y + 4, class: "axis" }));
    root.append(svg("text", { x, y: y + 16, class: "tick", "text-anchor": "middle" }, fmt(v)));
  }
  root.append(svg("text", { x: (x0 + x1) / 2, y: y + 32, class: "axis-label", "text-anchor": "middle" }, label));
}
function axisY(root, x, y0, y1, lo, hi, label, fmt) {
  root.append(svg("line", { x1: x, y1: y0, x2: x, y2: y1, class: "axis" }));
  for (const v of ticks(lo, hi, 4)) {
    const y = y0 - ((v - lo) / ((hi - lo) || 1)) * (y0 - y1);
    root.append(svg("line", { x1: x - 4, y1: y, x2: x, y2: y, class: "axis" }));
    root.append(svg("text", { x: x - 6, y: y + 4, class: "tick", "text-anchor": "end" }, fmt(v)));
  }
  root.append(svg("text", { x: x - 44, y: (y0 + y1) / 2, class: "axis-label", "text-anchor": "middle", transform: `rotate(-90 ${x - 44} ${(y0 + y1) / 2})` }, label));
}

// The timeline: one bar per step (and per item step, the first hundred), on an axis of time
// since the run's first start, in one unit; a row's label links to its log or its item
// (a composite's, to its level of the DAG: it has no log).
function drawGantt(box, bars, runId) {
  if (!bars.length) { box.replaceChildren(el("p", { class: "muted", text: "nothing has run yet" })); return; }
  const t0 = Math.min(...bars.map(b => b.start)), t1 = Math.max(...bars.map(b => b.end));
  // as wide as its box allows (the page fits an 800 px window), at most 860 px of time
  const L = 260, R = 16, W = Math.max(200, Math.min(860, (box.clientWidth || 1150) - L - 30)), span = Math.max(t1 - t0, 0.001);
  const [unit, k] = unitFor(span);
  const root = svg("svg", { width: L + W + 30, height: bars.length * R + 50, id: "gantt-svg" });
  bars.forEach((b, i) => {
    // a task's row leads to its log (or its item's page); a composite's, to its level of the DAG
    const href = b.item ? itemHref(runId, b.item) : b.runs_command === false ? itemHref(runId, b.path) : logHref(runId, b.path);
    const link = svg("a", { href, class: "gantt-link", "data-path": b.path });
    const label = svg("text", { x: 0, y: i * R + 12 }, b.path.length > 40 ? "…" + b.path.slice(-39) : b.path);
    label.append(svg("title", {}, `${b.path}: ${b.status}, ${took(b.end - b.start)}`));
    link.append(label);
    root.append(link);
    const x = L + ((b.start - t0) / span) * W, w = Math.max(2, ((b.end - b.start) / span) * W);
    const rect = svg("rect", { x, y: i * R + 3, width: w, height: R - 5, class: "gbar " + statusClass(b.status) });
    rect.append(svg("title", {}, `${b.path}: ${b.status}, ${took(b.end - b.start)}`));
    root.append(rect);
  });
  axisX(root, L, L + W, bars.length * R + 4, 0, span * k, `time since the run's first start (${unit})`, v => `${+v.toPrecision(4)} ${unit}`);
  box.replaceChildren(root);
}

// Item durations: counts per duration bin, both axes labelled with units.
function histogram(bins) {
  if (!bins.length) return el("p", { class: "muted", text: "no item has finished yet" });
  const max = Math.max(...bins.map(b => b.count)), W = 24, H = 110, L = 60, top = 8;
  const lo = bins[0].from, hi = bins[bins.length - 1].to, [unit, k] = unitFor(hi);
  const root = svg("svg", { width: L + bins.length * W + 40, height: H + top + 44, id: "histogram" });
  bins.forEach((b, i) => {
    const h = max ? (b.count / max) * H : 0;
    const r = svg("rect", { x: L + i * W + 1, y: top + H - h, width: W - 3, height: h, class: "hbar" });
    r.append(svg("title", {}, `${took(b.from)}–${took(b.to)}: ${b.count} items`));
    root.append(r);
  });
  axisY(root, L, top + H, top, 0, max, "items", v => String(v));
  axisX(root, L, L + bins.length * W, top + H, lo * k, hi * k, `item duration (${unit})`, v => `${+v.toPrecision(3)}`);
  return root;
}

// Re-run a server run with edited parameters (issue 24): the run page's form and the links
// between a run and its re-runs. The server reads and checks the parameters (server/submission.py);
// this only draws. Uses app.js's helpers (el, get, csrf, problem, keepFocusIn).
"use strict";

// The run a server run re-runs and the runs that re-run it, as links in its header. Read once
// per page: the header is redrawn on every poll.
const lineages = new Map();
async function lineageRows(grid, runId) {
  if (!lineages.has(runId)) lineages.set(runId, get(`/ui/api/runs/${encodeURIComponent(runId)}/lineage`).catch(() => null));
  const l = await lineages.get(runId);
  if (!l) return;
  const link = (id) => el("a", { href: "/runs/" + encodeURIComponent(id), text: id });
  if (l.rerun_of) grid.append(el("span", { class: "muted", text: "re-run of" }),
    l.rerun_of_gone ? el("span", { id: "rerun-of", text: l.rerun_of + " (no longer kept)" }) : el("span", { id: "rerun-of" }, link(l.rerun_of)));
  if (l.reruns.length) grid.append(el("span", { class: "muted", text: "re-run as" }),
    el("span", { id: "reruns" }, ...l.reruns.flatMap((id, i) => i ? [", ", link(id)] : [link(id)])));
}

// The form: the parameters the run was submitted with, as JSON (which is YAML too), edited and
// sent back; the server reads them, checks them as a submission and answers where a problem is.
async function rerunDialog(runId) {
  let dialog = document.getElementById("rerun-dialog");
  if (dialog) dialog.remove();
  dialog = el("dialog", { id: "rerun-dialog", "aria-labelledby": "rerun-title" });
  dialog.opener = document.activeElement;
  dialog.addEventListener("close", () => { if (dialog.opener && dialog.opener.isConnected) dialog.opener.focus(); dialog.remove(); });
  dialog.addEventListener("keydown", (e) => { if (e.key === "Tab") keepFocusIn(dialog, e); });
  document.body.append(dialog);
  const l = await get(`/ui/api/runs/${encodeURIComponent(runId)}/lineage`);
  const text = el("textarea", { id: "rerun-parameters", rows: 14, spellcheck: "false", "aria-describedby": "rerun-help rerun-errors" });
  text.value = JSON.stringify(l.parameters, null, 2);
  const errors = el("div", { id: "rerun-errors", role: "alert" });
  const send = el("button", { id: "rerun-submit", type: "submit", text: "Re-run" });
  const form = el("form", { id: "rerun-form", onsubmit: async (e) => {
    e.preventDefault();
    send.disabled = true;
    errors.replaceChildren();
    const r = await fetch(`/ui/api/runs/${encodeURIComponent(runId)}/rerun`, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() }, body: JSON.stringify({ parameters: text.value }) });
    const data = await r.json().catch(() => ({}));
    send.disabled = false;
    if (r.ok) { location.href = "/runs/" + encodeURIComponent(data.id); return; }
    const issues = (data.error && data.error.issues) || [];
    errors.append(el("p", { class: "error", text: problem(data, r.statusText) }),
      ...issues.map(i => el("p", { class: "issue" },
        el("strong", { text: (i.line ? `line ${i.line}` : "") + (i.path && i.path.length ? ` at ${i.path.join(".")}` : "") + (i.line || (i.path && i.path.length) ? ": " : "") }),
        i.message, i.expected ? el("span", { class: "muted", text: ` — expected ${i.expected}` }) : "",
        i.found ? el("span", { class: "muted", text: `, found ${i.found}` }) : "", i.hint ? el("span", { text: ` (${i.hint})` }) : "")));
    text.focus();
  } },
    el("h2", { id: "rerun-title", text: `Re-run ${runId} with parameters` }),
    el("p", { id: "rerun-help", class: "muted", text: "The same pipeline, config and code, with these parameters (YAML or JSON). The new run links back to this one." }),
    el("label", { for: "rerun-parameters", text: "Parameters" }), text, errors,
    el("div", { class: "row-actions" }, send, el("button", { id: "rerun-cancel", type: "button", text: "Cancel", onclick: () => dialog.close() })));
  dialog.append(form);
  dialog.showModal();
  text.focus();
}

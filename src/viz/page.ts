/**
 * The visualizer's one page, self-contained: the chart's SVG (laid out by
 * Graphviz on the server) inline, the styles and the script inline (allowed
 * by a per-response CSP nonce), nothing fetched from elsewhere.
 *
 * Live: an EventSource on /events gets `state` (every builder, after each
 * change) and `transition` (one move, as it happens). The page counts the
 * builders in each state and marks those states on the chart (`occupied`, with
 * a count badge); the selected builder's state and its ancestors are marked
 * `selected`; the edge of each transition flashes. Clicking a builder loads
 * its history from /api/history.
 */
import type { ChartDefinition } from "../daemon/protocol.js";

export interface PageInput {
  svg: string;
  definition: ChartDefinition;
  workspace: string;
  nonce: string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** JSON that cannot end the <script> element it sits in. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Graphviz's SVG document without its XML prolog, doctype and comments, to sit inside HTML. */
function inlineSvg(svg: string): string {
  const start = svg.indexOf("<svg");
  return (start === -1 ? svg : svg.slice(start)).replace(/<!--[\s\S]*?-->/g, "").trim();
}

export function renderPage(input: PageInput): string {
  const title = `troupe viz${input.workspace ? ` · ${input.workspace}` : ""}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)}</title>
<link rel="icon" href="data:,">
<style nonce="${input.nonce}">${STYLE}</style>
</head>
<body>
<header>
  <h1>troupe <span class="dim">·</span> ${escapeHtml(input.definition.id)} statechart</h1>
  <span class="workspace dim">${escapeHtml(input.workspace)}</span>
  <span id="conn" data-connected="false">connecting…</span>
</header>
<main>
  <section id="chart" aria-label="statechart">${inlineSvg(input.svg)}</section>
  <aside>
    <div class="panel-head">
      <h2>Builders <span id="count" class="dim"></span></h2>
      <label class="dim"><input type="checkbox" id="tombstones"> tombstones</label>
    </div>
    <p id="empty" class="dim">No builders yet: <code>troupe spawn &lt;name&gt; -- &lt;command&gt;</code></p>
    <ul id="builders" class="tree"></ul>
    <section id="details" hidden>
      <h2 id="details-title"></h2>
      <dl id="details-facts"></dl>
      <h3>History</h3>
      <table id="history"><thead><tr><th>at</th><th>event</th><th>from → to</th></tr></thead><tbody></tbody></table>
    </section>
  </aside>
</main>
<script type="application/json" id="definition">${scriptJson(input.definition)}</script>
<script nonce="${input.nonce}">${SCRIPT}</script>
</body>
</html>
`;
}

const STYLE = `
:root { color-scheme: light; --ink: #2e3440; --dim: #6b7385; --line: #d8dee9; --live: #2f855a; --sel: #d97706; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: var(--ink); background: #fff; }
header { display: flex; gap: 1rem; align-items: baseline; padding: .6rem 1rem; border-bottom: 1px solid var(--line); }
h1 { font-size: 1.05rem; margin: 0; }
h2 { font-size: .95rem; margin: 0 0 .4rem; }
h3 { font-size: .85rem; margin: .8rem 0 .3rem; }
.dim { color: var(--dim); font-weight: normal; }
.workspace { flex: 1; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; font-size: .85rem; }
#conn { font-size: .8rem; padding: .1rem .5rem; border-radius: 1rem; background: #fde8e8; color: #9b1c1c; }
#conn[data-connected="true"] { background: #e3f2e1; color: var(--live); }
main { display: grid; grid-template-columns: minmax(0, 1fr) 380px; height: calc(100vh - 46px); }
#chart { overflow: auto; padding: .5rem; }
#chart svg { width: 100%; height: auto; max-height: calc(100vh - 64px); }
aside { border-left: 1px solid var(--line); padding: .8rem; overflow: auto; }
.panel-head { display: flex; justify-content: space-between; align-items: baseline; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 1rem; }
ul.tree { padding-left: 0; }
li.builder > .row { display: flex; gap: .5rem; align-items: baseline; flex-wrap: wrap; padding: .15rem .3rem; border-radius: 4px; cursor: pointer; }
li.builder > .row:hover { background: #f4f6fa; }
li.builder.selected > .row { background: #fff4e0; outline: 1px solid var(--sel); }
li.builder .name { white-space: nowrap; font-weight: 600; background: none; border: 0; padding: 0; font: inherit; font-weight: 600; color: inherit; cursor: pointer; }
li.builder .state { white-space: nowrap; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: .8rem; padding: 0 .35rem; border-radius: 3px; background: #eceff4; }
li.builder[data-top="working"] .state { background: #e3f2e1; color: var(--live); }
li.builder[data-top="booting"] .state { background: #e6effc; color: #1e4e8c; }
li.builder[data-top="completed"] .state { background: #eceff4; color: #4c566a; }
li.builder[data-top="zombie"] .state { background: #fde8e8; color: #9b1c1c; }
li.builder[data-top="destroying"] .state, li.builder[data-top="destroyed"] .state { background: #f3f3f3; color: #888; }
li.builder .meta { font-size: .75rem; color: var(--dim); }
dl { display: grid; grid-template-columns: auto 1fr; gap: .1rem .6rem; margin: 0; font-size: .8rem; }
dt { color: var(--dim); }
dd { margin: 0; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; font-size: .75rem; table-layout: fixed; }
th, td { text-align: left; padding: .15rem .3rem; border-bottom: 1px solid var(--line); vertical-align: top; overflow-wrap: anywhere; }
th:nth-child(1) { width: 29%; } th:nth-child(2) { width: 27%; }
#details { margin-top: 1rem; padding-top: .6rem; border-top: 1px solid var(--line); }
td.mono { font-family: ui-monospace, Menlo, Consolas, monospace; }
#chart g.node.occupied path, #chart g.node.occupied polygon { fill: #e3f2e1; stroke: var(--live); stroke-width: 2px; }
#chart g.cluster.occupied path, #chart g.cluster.occupied polygon { stroke: var(--live); stroke-width: 2px; }
#chart g.node.selected path, #chart g.node.selected polygon { fill: #fff4e0; stroke: var(--sel); stroke-width: 3px; }
#chart g.cluster.selected path, #chart g.cluster.selected polygon { stroke: var(--sel); stroke-width: 3px; }
#chart g.badge circle { fill: var(--live); stroke: #fff; stroke-width: 1.5px; }
#chart g.badge text { fill: #fff; font: bold 10px system-ui, sans-serif; text-anchor: middle; dominant-baseline: central; }
#chart g.edge.flash path { stroke: var(--sel); stroke-width: 3px; }
#chart g.edge.flash polygon { fill: var(--sel); stroke: var(--sel); }
#chart g.edge.flash text { fill: var(--sel); font-weight: bold; }
#chart g.edge path { transition: stroke .3s, stroke-width .3s; }
`;

/** Runs in the browser (plain ES2020, no modules, no network but this server). */
const SCRIPT = String.raw`
(() => {
  "use strict";
  const token = new URLSearchParams(location.search).get("token") || "";
  const url = (path, params) => path + "?" + new URLSearchParams(Object.assign({}, params || {}, { token })).toString();
  const def = JSON.parse(document.getElementById("definition").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  let builders = [];
  let selected = null;
  let historyFor = null;
  let showTombstones = false;

  const pathOf = (b) => (b.substate ? b.state + "." + b.substate : b.state);
  const prefixes = (path) => { const parts = path.split("."); return parts.map((_, i) => parts.slice(0, i + 1).join(".")); };
  const visible = () => builders.filter((b) => showTombstones || b.state !== "destroyed");
  const el = (tag, attrs, text) => { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };

  function setConnection(connected, error) {
    const conn = $("conn");
    conn.dataset.connected = String(connected);
    conn.textContent = connected ? "live" : (error || "disconnected");
    conn.title = error || "";
  }

  // ---- the chart ----
  function paintChart() {
    document.querySelectorAll("#chart .occupied, #chart .selected").forEach((e) => e.classList.remove("occupied", "selected"));
    document.querySelectorAll("#chart g.badge").forEach((e) => e.remove());
    const counts = new Map();
    for (const b of visible()) for (const p of prefixes(pathOf(b))) counts.set(p, (counts.get(p) || 0) + 1);
    for (const [path, n] of counts) {
      const g = document.getElementById("s:" + path);
      if (!g) continue;
      g.classList.add("occupied");
      g.dataset.count = String(n);
      const box = g.getBBox();
      const badge = document.createElementNS(SVG_NS, "g");
      badge.setAttribute("class", "badge");
      const circle = document.createElementNS(SVG_NS, "circle");
      circle.setAttribute("cx", String(box.x + box.width - 2));
      circle.setAttribute("cy", String(box.y + 2));
      circle.setAttribute("r", "9");
      const text = document.createElementNS(SVG_NS, "text");
      text.setAttribute("x", String(box.x + box.width - 2));
      text.setAttribute("y", String(box.y + 2));
      text.textContent = String(n);
      badge.append(circle, text);
      g.append(badge);
    }
    for (const g of document.querySelectorAll("#chart g.node, #chart g.cluster")) if (!g.classList.contains("occupied")) delete g.dataset.count;
    const sel = builders.find((b) => b.name === selected);
    if (sel) for (const p of prefixes(pathOf(sel))) document.getElementById("s:" + p)?.classList.add("selected");
  }

  const within = (path, ancestor) => ancestor === "" || path === ancestor || path.startsWith(ancestor + ".");
  function flash(e) {
    def.transitions.forEach((t, i) => {
      if (t.event !== e.event || !within(e.from, t.source)) return;
      const hit = t.targets.length === 0 ? e.from === e.to : t.targets.some((target) => within(e.to, target));
      if (!hit) return;
      document.querySelectorAll('#chart g.edge[id="t:' + i + '"], #chart g.edge[id^="t:' + i + ':"]').forEach((g) => {
        g.classList.add("flash");
        setTimeout(() => g.classList.remove("flash"), 1500);
      });
    });
  }

  // ---- the builders ----
  function renderBuilders() {
    const list = visible();
    const names = new Set(list.map((b) => b.name));
    const kids = new Map();
    for (const b of list) {
      const parent = b.parent && names.has(b.parent) ? b.parent : null;
      if (!kids.has(parent)) kids.set(parent, []);
      kids.get(parent).push(b);
    }
    const build = (parent) => {
      const items = [];
      for (const b of (kids.get(parent) || []).sort((x, y) => x.name.localeCompare(y.name))) {
        const li = el("li", { class: "builder" + (b.name === selected ? " selected" : ""), "data-builder": b.name, "data-state": pathOf(b), "data-top": b.state });
        const row = el("div", { class: "row" });
        const name = el("button", { class: "name", type: "button" }, b.name);
        row.append(name, el("span", { class: "state" }, pathOf(b)));
        const meta = [];
        if (b.role) meta.push(b.role);
        if (b.restarts) meta.push("↻" + b.restarts);
        if (b.pid && (b.state === "working" || b.state === "booting")) meta.push("pid " + b.pid);
        if (meta.length) row.append(el("span", { class: "meta" }, meta.join(" · ")));
        row.addEventListener("click", () => select(b.name));
        li.append(row);
        const children = build(b.name);
        if (children.length) { const ul = el("ul"); ul.append(...children); li.append(ul); }
        items.push(li);
      }
      return items;
    };
    $("builders").replaceChildren(...build(null));
    $("count").textContent = list.length ? "(" + list.length + ")" : "";
    $("empty").hidden = list.length > 0;
  }

  function renderDetails() {
    const b = builders.find((x) => x.name === selected);
    const details = $("details");
    if (!b) { details.hidden = true; return; }
    details.hidden = false;
    $("details-title").textContent = b.name;
    const facts = [["state", pathOf(b)], ["id", b.id], ["parent", b.parent || "-"], ["role", b.role || "-"], ["pid", b.pid == null ? "-" : String(b.pid)],
      ["restarts", String(b.restarts)], ["reason", b.reason || "-"], ["branch", b.branch || "-"], ["worktree", b.worktree || "-"], ["command", (b.command || []).join(" ") || "-"]];
    const dl = $("details-facts");
    dl.replaceChildren();
    for (const [k, v] of facts) dl.append(el("dt", {}, k), el("dd", {}, v));
  }

  const clock = (at) => { const d = new Date(at); const p = (n, w) => String(n).padStart(w || 2, "0"); return p(d.getHours()) + ":" + p(d.getMinutes()) + ":" + p(d.getSeconds()) + "." + p(d.getMilliseconds(), 3); };

  async function loadHistory(name) {
    historyFor = name;
    const body = document.querySelector("#history tbody");
    try {
      const res = await fetch(url("/api/history", { name }));
      const rows = await res.json();
      if (historyFor !== name) return;
      if (!res.ok) { body.replaceChildren(el("tr", {}, rows.error ? rows.error.message : "error")); return; }
      body.replaceChildren(...rows.map((h) => {
        const tr = el("tr", { "data-history": h.event });
        tr.append(el("td", { class: "mono", title: h.at }, clock(h.at)), el("td", { class: "mono" }, h.event), el("td", { class: "mono" }, h.from + " → " + h.to));
        return tr;
      }));
      $("history").dataset.name = name;
      $("history").dataset.rows = String(rows.length);
    } catch (error) {
      if (historyFor === name) body.replaceChildren(el("tr", {}, String(error)));
    }
  }

  function select(name) {
    selected = selected === name ? null : name;
    render();
    if (selected) loadHistory(selected);
  }

  function render() {
    renderBuilders();
    renderDetails();
    paintChart();
  }

  $("tombstones").addEventListener("change", (e) => { showTombstones = e.target.checked; render(); });

  // ---- live ----
  const events = new EventSource(url("/events"));
  events.addEventListener("state", (m) => {
    const state = JSON.parse(m.data);
    setConnection(state.connected, state.error);
    builders = state.builders;
    render();
  });
  events.addEventListener("transition", (m) => {
    const e = JSON.parse(m.data);
    let b = builders.find((x) => x.id === e.id) || builders.find((x) => x.name === e.name && x.state !== "destroyed");
    if (!b) { b = { name: e.name, id: e.id, parent: null, role: null, restarts: 0, pid: null }; builders.push(b); }
    const dot = e.to.indexOf(".");
    b.state = dot === -1 ? e.to : e.to.slice(0, dot);
    b.substate = dot === -1 ? null : e.to.slice(dot + 1);
    render();
    flash(e);
    if (selected === e.name) loadHistory(e.name);
  });
  events.addEventListener("open", () => document.body.dataset.stream = "open");
  events.addEventListener("error", () => { document.body.dataset.stream = "error"; setConnection(false, "lost the visualizer (is troupe viz still running?)"); });
})();
`;

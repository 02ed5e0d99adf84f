/**
 * Statechart export (DESIGN §9 `troupe chart`): Mermaid, Graphviz DOT, JSON
 * and SVG from a chart's JSON definition (the daemon's `chart.definition`).
 *
 * Pure: no IO and no XState. The definition is plain data, so the CLI can
 * draw the chart without loading the machine. `toSvg` lays the DOT out with
 * Graphviz compiled to WebAssembly (@viz-js/viz), imported only when called.
 *
 * The DOT gives every state node (and compound-state cluster) the SVG id
 * `s:<path>` and every transition edge the id `t:<index in transitions>`, so
 * the visualizer can find and highlight them in the rendered SVG.
 */
import type { ChartDefinition, ChartState, ChartTransition } from "../daemon/protocol.js";

export const CHART_FORMATS = ["mermaid", "dot", "json", "svg"] as const;
export type ChartFormat = (typeof CHART_FORMATS)[number];

/** SVG id of a state's node (atomic, final) or cluster (compound). */
function stateElementId(path: string): string {
  return `s:${path}`;
}

/** SVG id of the edge(s) of `transitions[index]` (several targets share it, suffixed `:n` after the first). */
function transitionElementId(index: number): string {
  return `t:${index}`;
}

/** The last segment of a dotted path: what a state is called on the chart. */
export function stateLabel(path: string): string {
  const dot = path.lastIndexOf(".");
  return dot === -1 ? path : path.slice(dot + 1);
}

/** "EVENT [guard]" ("always" for an eventless transition). */
export function transitionLabel(transition: Pick<ChartTransition, "event" | "guard">): string {
  const event = transition.event ?? "always";
  return transition.guard ? `${event} [${guardLabel(transition.guard)}]` : event;
}

function guardLabel(guard: { type: string; params?: unknown }): string {
  if (guard.params === undefined || guard.params === null) return guard.type;
  const params = guard.params;
  const values =
    typeof params === "object" && !Array.isArray(params)
      ? Object.values(params as Record<string, unknown>).map((value) => (typeof value === "string" || typeof value === "number" || typeof value === "boolean" ? String(value) : JSON.stringify(value)))
      : [JSON.stringify(params)];
  return `${guard.type}(${values.join(", ")})`;
}

// ---- the tree ------------------------------------------------------------------

interface Tree {
  byId: Map<string, ChartState>;
  children: Map<string | null, ChartState[]>;
}

function tree(def: ChartDefinition): Tree {
  const byId = new Map<string, ChartState>();
  const children = new Map<string | null, ChartState[]>();
  for (const state of def.states) {
    byId.set(state.id, state);
    const siblings = children.get(state.parent) ?? [];
    siblings.push(state);
    children.set(state.parent, siblings);
  }
  return { byId, children };
}

/** Path of the initial child of `parent` (null: the root). */
function initialChild(def: ChartDefinition, t: Tree, parent: string | null): string | null {
  if (parent === null) {
    // The root's initial child is the top-level ancestor of the initial atomic state.
    const top = def.initial.split(".")[0] ?? "";
    return t.byId.has(top) ? top : (t.children.get(null)?.[0]?.id ?? null);
  }
  const state = t.byId.get(parent);
  if (!state?.initial) return null;
  const path = `${parent}.${state.initial}`;
  return t.byId.has(path) ? path : null;
}

/** Whether `path` is `ancestor` or lies inside it ("" contains everything). */
function within(path: string, ancestor: string): boolean {
  return ancestor === "" || path === ancestor || path.startsWith(`${ancestor}.`);
}

/** The deepest compound state containing both paths strictly (null: the root). */
function commonScope(t: Tree, a: string, b: string): string | null {
  let scope = t.byId.get(a)?.parent ?? null;
  while (scope !== null && !(within(b, scope) && b !== scope && a !== scope)) scope = t.byId.get(scope)?.parent ?? null;
  return scope;
}

/** Each transition drawn once per target; a targetless one is drawn as a loop on its source. */
interface Edge {
  index: number;
  nth: number;
  transition: ChartTransition;
  from: string;
  to: string;
  internal: boolean;
}

function edges(def: ChartDefinition): Edge[] {
  const out: Edge[] = [];
  def.transitions.forEach((transition, index) => {
    if (transition.targets.length === 0) {
      out.push({ index, nth: 0, transition, from: transition.source, to: transition.source, internal: true });
      return;
    }
    transition.targets.forEach((to, nth) => out.push({ index, nth, transition, from: transition.source, to, internal: false }));
  });
  return out;
}

// ---- JSON ------------------------------------------------------------------------

export function toJson(def: ChartDefinition): string {
  return `${JSON.stringify(def, null, 2)}\n`;
}

// ---- Mermaid -----------------------------------------------------------------------

/** Mermaid ids: letters, digits and `_` only, unique across the chart. */
function mermaidIds(def: ChartDefinition): Map<string, string> {
  const ids = new Map<string, string>();
  const used = new Set<string>(["root"]);
  for (const state of def.states) {
    const base = state.id.replace(/[^A-Za-z0-9_]/g, "_").replace(/^(?=\d)/, "s_");
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
    used.add(id);
    ids.set(state.id, id);
  }
  return ids;
}

/** Text safe on a Mermaid line (no line breaks, no `;`, `#` or `:` that would end or escape it). */
function mermaidText(text: string): string {
  return text.replace(/[\r\n]+/g, " ").replace(/[;#:]/g, " ").replace(/"/g, "'");
}

/**
 * A Mermaid `stateDiagram-v2`: compound states as composite states, `[*]`
 * initial markers at every level, a `[*]` after each final state, and every
 * transition labelled `EVENT [guard]` (a targetless one as a loop marked
 * "internal"), declared in the innermost composite holding both ends.
 */
export function toMermaid(def: ChartDefinition): string {
  const t = tree(def);
  const ids = mermaidIds(def);
  const id = (path: string) => ids.get(path) ?? path;
  const scoped = new Map<string | null, string[]>();
  const add = (scope: string | null, line: string) => {
    const list = scoped.get(scope) ?? [];
    list.push(line);
    scoped.set(scope, list);
  };
  for (const edge of edges(def)) {
    const label = `${mermaidText(transitionLabel(edge.transition))}${edge.internal ? " (internal)" : ""}`;
    if (edge.from === "") {
      // a root-level transition applies in every state: drawn from the start marker
      add(null, `[*] --> ${id(edge.to)} : ${label}`);
      continue;
    }
    const scope = edge.from === edge.to ? (t.byId.get(edge.from)?.parent ?? null) : commonScope(t, edge.from, edge.to);
    add(scope, `${id(edge.from)} --> ${id(edge.to)} : ${label}`);
  }

  const lines = ["stateDiagram-v2"];
  const emit = (parent: string | null, indent: string) => {
    const start = initialChild(def, t, parent);
    if (start) lines.push(`${indent}[*] --> ${id(start)}`);
    for (const state of t.children.get(parent) ?? []) {
      const sid = id(state.id);
      const label = stateLabel(state.id);
      if (label !== sid) lines.push(`${indent}state "${mermaidText(label)}" as ${sid}`);
      if (state.type === "compound") {
        lines.push(`${indent}state ${sid} {`);
        emit(state.id, `${indent}  `);
        lines.push(`${indent}}`);
      }
      if (state.type === "final") lines.push(`${indent}${sid} --> [*]`);
    }
    for (const line of scoped.get(parent) ?? []) lines.push(`${indent}${line}`);
  };
  emit(null, "  ");
  return `${lines.join("\n")}\n`;
}

// ---- DOT -------------------------------------------------------------------------------

const FONT = "Helvetica,Arial,sans-serif";

function q(text: string): string {
  return `"${text.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\r?\n/g, "\\n")}"`;
}

function attrs(values: Record<string, string | number | boolean | undefined>): string {
  const parts = Object.entries(values)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => `${key}=${typeof value === "string" ? q(value) : String(value)}`);
  return parts.length ? ` [${parts.join(", ")}]` : "";
}

/** Node name of a compound state's initial marker (an anchor for edges to and from its cluster). */
function initialMarker(path: string): string {
  return `${path}/[*]`;
}

function clusterName(path: string): string {
  return `cluster_${path}`;
}

/**
 * Graphviz DOT: compound states are clusters (with their own initial marker),
 * atomic states rounded boxes, final states double-bordered; every edge is
 * labelled `EVENT [guard]`, targetless ones dashed loops. Edges to or from a
 * compound state end at its cluster's border (`compound=true`).
 */
export function toDot(def: ChartDefinition): string {
  const t = tree(def);
  const isCompound = (path: string) => t.byId.get(path)?.type === "compound";
  /** The node an edge to or from `path` attaches to. */
  const anchor = (path: string) => (path === "" ? "[*]" : isCompound(path) ? initialMarker(path) : path);
  const lines = [
    `digraph ${q(def.id)} {`,
    `  graph${attrs({ compound: true, rankdir: "TB", fontname: FONT, fontsize: 12, nodesep: 0.35, ranksep: 0.45, newrank: true, label: `${def.id} statechart (v${def.version})`, labelloc: "t" })};`,
    `  node${attrs({ shape: "box", style: "rounded,filled", fillcolor: "#ffffff", color: "#3b4252", fontname: FONT, fontsize: 12, margin: "0.18,0.06" })};`,
    `  edge${attrs({ fontname: FONT, fontsize: 9, color: "#5e6b7d", fontcolor: "#2e3440", arrowsize: 0.7 })};`,
    `  ${q("[*]")}${attrs({ id: stateElementId("[*]"), shape: "circle", style: "filled", fillcolor: "#2e3440", color: "#2e3440", label: "", width: 0.18, fixedsize: true })};`,
  ];
  const marker = (name: string) => `${q(name)}${attrs({ shape: "circle", style: "filled", fillcolor: "#2e3440", color: "#2e3440", label: "", width: 0.12, fixedsize: true })};`;
  const emit = (parent: string | null, indent: string) => {
    for (const state of t.children.get(parent) ?? []) {
      const tooltip = state.description ?? undefined;
      if (state.type === "compound") {
        lines.push(`${indent}subgraph ${q(clusterName(state.id))} {`);
        lines.push(`${indent}  graph${attrs({ id: stateElementId(state.id), label: stateLabel(state.id), style: "rounded,filled", fillcolor: "#f4f6fa", color: "#7b88a1", fontsize: 13, tooltip })};`);
        lines.push(`${indent}  ${marker(initialMarker(state.id))}`);
        const start = initialChild(def, t, state.id);
        if (start) lines.push(`${indent}  ${q(initialMarker(state.id))} -> ${q(anchor(start))}${attrs({ lhead: isCompound(start) ? clusterName(start) : undefined })};`);
        emit(state.id, `${indent}  `);
        lines.push(`${indent}}`);
      } else {
        const final = state.type === "final";
        lines.push(`${indent}${q(state.id)}${attrs({ id: stateElementId(state.id), label: stateLabel(state.id), tooltip, peripheries: final ? 2 : undefined })};`);
      }
    }
  };
  emit(null, "  ");
  const start = initialChild(def, t, null);
  if (start) lines.push(`  ${q("[*]")} -> ${q(anchor(start))}${attrs({ lhead: isCompound(start) ? clusterName(start) : undefined })};`);

  for (const edge of edges(def)) {
    const from = anchor(edge.from);
    const to = anchor(edge.to);
    const loop = edge.from === edge.to;
    const actions = edge.transition.actions.map((action) => action.type).join(", ");
    lines.push(
      `  ${q(from)} -> ${q(to)}${attrs({
        id: edge.nth === 0 ? transitionElementId(edge.index) : `${transitionElementId(edge.index)}:${edge.nth}`,
        label: transitionLabel(edge.transition),
        // an edge leaving (entering) a cluster ends at its border, unless the other end is inside it
        ltail: !loop && isCompound(edge.from) && !within(edge.to, edge.from) ? clusterName(edge.from) : undefined,
        lhead: !loop && isCompound(edge.to) && !within(edge.from, edge.to) ? clusterName(edge.to) : undefined,
        style: edge.internal ? "dashed" : undefined,
        tooltip: actions ? `${transitionLabel(edge.transition)} / ${actions}` : undefined,
      })};`,
    );
  }
  lines.push("}");
  return `${lines.join("\n")}\n`;
}

// ---- SVG ------------------------------------------------------------------------------------

type VizInstance = { renderString(input: string, options?: { format?: string; engine?: string }): string };
let vizInstance: Promise<VizInstance> | null = null;

/** Graphviz (WASM) laid out once per process, on first use. */
function graphviz(): Promise<VizInstance> {
  vizInstance ??= import("@viz-js/viz").then((module) => module.instance());
  return vizInstance;
}

/** Lays a DOT graph out with Graphviz's `dot` engine; throws on a syntax error. */
export async function renderDot(dot: string): Promise<string> {
  const viz = await graphviz();
  return viz.renderString(dot, { format: "svg", engine: "dot" });
}

/** The chart as a standalone SVG document (the layout is Graphviz's). */
export async function toSvg(def: ChartDefinition): Promise<string> {
  return renderDot(toDot(def));
}

/** Renders `def` in `format`. */
export async function exportChart(def: ChartDefinition, format: ChartFormat): Promise<string> {
  switch (format) {
    case "mermaid":
      return toMermaid(def);
    case "dot":
      return toDot(def);
    case "json":
      return toJson(def);
    case "svg":
      return toSvg(def);
  }
}

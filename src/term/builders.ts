/**
 * Builders on a terminal: state labels coloured by life state, the tree that
 * `troupe status` and the REPL's `.tree` print, and a builder's transitions.
 */
import type { BuilderStatus, HistoryEntry } from "../shared/contract.js";
import { isOneOf, LIFE_STATES } from "../shared/vocabulary.js";
import { paint, table, time, type Paint } from "./paint.js";

export function stateLabel(b: Pick<BuilderStatus, "state" | "substate">, p: Paint): string {
  const label = b.substate ? `${b.state}.${b.substate}` : b.state;
  switch (b.state) {
    case "working":
      return b.substate === "stalled" ? p.yellow(label) : p.green(label);
    case "booting":
      return p.cyan(label);
    case "completed":
      return p.blue(label);
    case "zombie":
      return p.red(label);
    default:
      return p.dim(label);
  }
}

/** A "state.substate" path from a transition, coloured like `troupe status` does it. */
export function pathLabel(path: string, p: Paint): string {
  const dot = path.indexOf(".");
  const state = dot === -1 ? path : path.slice(0, dot);
  if (!isOneOf(LIFE_STATES, state)) return p.dim(path); // "(none)"
  return stateLabel({ state, substate: dot === -1 ? null : path.slice(dot + 1) }, p);
}

/** Builders as a tree: children indented under their parent, in creation order. */
export function builderTree(builders: BuilderStatus[], p: Paint = paint()): string {
  if (builders.length === 0) return "No builders. Start one with `troupe spawn <name> -- <command>` (or try `troupe demo`).";
  const byName = new Map(builders.map((b) => [b.name, b]));
  const children = new Map<string | null, BuilderStatus[]>();
  for (const b of builders) {
    const parent = b.parent !== null && byName.has(b.parent) && byName.get(b.parent) !== b ? b.parent : null;
    const list = children.get(parent) ?? [];
    list.push(b);
    children.set(parent, list);
  }
  const rows: string[][] = [[p.bold("NAME"), p.bold("STATE"), p.bold("PID"), p.bold("RESTARTS"), p.bold("BRANCH"), p.bold("NOTE")]];
  const seen = new Set<string>();
  const walk = (parent: string | null, prefix: string) => {
    const list = children.get(parent) ?? [];
    list.forEach((b, i) => {
      if (seen.has(b.name)) return;
      seen.add(b.name);
      const last = i === list.length - 1;
      const branch = parent === null ? "" : `${prefix}${last ? "└─ " : "├─ "}`;
      const notes: string[] = [];
      if (b.pty === false) notes.push("no pty (pipes)");
      if (b.role) notes.push(`role ${b.role}`);
      if (b.parent && !byName.has(b.parent)) notes.push(`parent ${b.parent}`);
      if (b.reason && (b.state === "zombie" || b.state === "completed")) notes.push(b.reason);
      rows.push([`${branch}${b.name}`, stateLabel(b, p), b.pid === null ? "-" : String(b.pid), String(b.restarts), b.branch ?? "-", p.dim(notes.join("; "))]);
      walk(b.name, parent === null ? "" : `${prefix}${last ? "   " : "│  "}`);
    });
  };
  walk(null, "");
  return table(rows);
}

/** A builder's transitions as a table: time, from → to, event. */
export function historyTable(name: string, entries: HistoryEntry[], p: Paint): string {
  if (entries.length === 0) return `No transitions recorded for ${name}.`;
  const rows = [[p.bold("TIME"), p.bold("TRANSITION"), p.bold("EVENT")]];
  for (const h of entries) rows.push([p.dim(time(h.at)), `${pathLabel(h.from, p)} → ${pathLabel(h.to, p)}`, p.cyan(h.event)]);
  return table(rows);
}

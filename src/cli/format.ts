/**
 * Human output for builders and mail. Types only from the supervisor and the
 * storage contract (erased at build time: nothing is loaded).
 */
import type { MailRow } from "../storage/types.js";
import type { BuilderStatus } from "../supervisor/types.js";
import { paint, table, time, type Paint } from "./output.js";

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

export function mailList(rows: MailRow[], p: Paint = paint()): string {
  if (rows.length === 0) return "No mail.";
  return rows.map((m) => mailLine(m, p)).join("\n");
}

export function mailLine(m: MailRow, p: Paint = paint()): string {
  const head = `${p.dim(time(m.createdAt))}  ${p.bold(m.from)} → ${p.bold(m.to)}${m.requestedTo && m.requestedTo !== m.to ? p.dim(` (${m.requestedTo})`) : ""}  ${p.cyan(m.type)}${m.priority !== "normal" ? ` ${p.yellow(m.priority)}` : ""}${m.readAt === null ? ` ${p.yellow("unread")}` : ""}  ${p.dim(m.id)}`;
  const subject = m.subject ? `  ${p.bold(m.subject)}\n` : "";
  const body = m.body
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
  return `${head}\n${subject}${body}`;
}

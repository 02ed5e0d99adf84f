/**
 * Text of the REPL: error lines, transition tables, watched events, doctor
 * reports. Pure functions over plain data (types only from the supervisor and
 * the storage contract, erased at build time).
 */
import type { HistoryEntry } from "../cli/connect.js";
import { mailLine, stateLabel } from "../cli/format.js";
import { table, time, type Paint } from "../cli/output.js";
import type { LifeState, MailRow } from "../storage/types.js";
import type { SupervisorEvent } from "../supervisor/types.js";

/** The code and message of a troupe error (from the daemon, the client or the library), or null for any other value. */
export function troupeErrorParts(error: unknown): { code: string; message: string } | null {
  if (typeof error !== "object" || error === null) return null;
  const { name, code, message } = error as { name?: unknown; code?: unknown; message?: unknown };
  if ((name === "TroupeError" || name === "CliError" || name === "UsageError") && typeof code === "string" && typeof message === "string") return { code, message };
  return null;
}

/** `error CODE: message`, one line per line of the message. */
export function errorLine(parts: { code: string; message: string }, p: Paint): string {
  return `${p.red("error")} ${p.bold(parts.code)}: ${parts.message}`;
}

/** A "state.substate" label coloured like `troupe status` does it. */
export function pathLabel(path: string, p: Paint): string {
  const dot = path.indexOf(".");
  const state = (dot === -1 ? path : path.slice(0, dot)) as LifeState;
  if (!/^[a-z]+$/.test(state)) return p.dim(path); // "(none)"
  return stateLabel({ state, substate: dot === -1 ? null : path.slice(dot + 1) }, p);
}

/** A builder's transitions as a table: time, from → to, event. */
export function historyTable(name: string, entries: HistoryEntry[], p: Paint): string {
  if (entries.length === 0) return `No transitions recorded for ${name}.`;
  const rows = [[p.bold("TIME"), p.bold("TRANSITION"), p.bold("EVENT")]];
  for (const h of entries) rows.push([p.dim(time(h.at)), `${pathLabel(h.from, p)} → ${pathLabel(h.to, p)}`, p.cyan(h.event)]);
  return table(rows);
}

function clock(at: number | string): string {
  return time(at).slice(11);
}

function firstLine(text: string, max = 80): string {
  const line = text.split("\n", 1)[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** Whether a watched event concerns builder `name` (null: every builder). Terminal output is never shown. */
export function concerns(event: SupervisorEvent, name: string | null): boolean {
  switch (event.type) {
    case "output":
      return false;
    case "transition":
      return name === null || event.name === name;
    case "notice":
      return name === null || event.name === name || event.to === name;
    case "mail":
      return name === null || event.message.from === name || event.message.to === name;
    default:
      return false;
  }
}

/** One line for a watched event (null for those the REPL does not show). */
export function eventLine(event: SupervisorEvent, p: Paint): string | null {
  switch (event.type) {
    case "transition":
      return `${p.dim(clock(event.at))} ${p.bold(event.name)}  ${pathLabel(event.from, p)} → ${pathLabel(event.to, p)}  ${p.cyan(event.event)}`;
    case "notice":
      return `${p.dim(clock(event.at))} ${p.bold(event.name)}  ${p.yellow(event.kind)} → ${event.to}: ${event.reason}`;
    case "mail": {
      const m = event.message;
      const what = m.subject ? m.subject : firstLine(m.body);
      return `${p.dim(clock(m.createdAt))} ${p.yellow("mail")} ${p.bold(m.from)} → ${p.bold(m.to)}  ${p.cyan(m.type)}  ${what}`;
    }
    default:
      return null;
  }
}

/** What `send` answers: one line per stored message. */
export function sentLines(rows: MailRow[], p: Paint): string {
  if (rows.length === 0) return "sent nothing (no recipient)";
  return rows.map((m) => `sent ${p.dim(m.id)} ${p.bold(m.from)} → ${p.bold(m.to)} ${p.cyan(m.type)}`).join("\n");
}

export function mailText(rows: MailRow[], p: Paint): string {
  return rows.length === 0 ? "No mail." : rows.map((m) => mailLine(m, p)).join("\n");
}

interface Finding {
  kind: string;
  name: string | null;
  detail: string;
  fix?: string;
}

/** A doctor report, as `troupe doctor` words it. */
export function doctorText(report: unknown, p: Paint): string {
  const r = (report ?? {}) as { findings?: Finding[]; fixed?: Finding[]; failed?: Array<Finding & { error: string }> };
  const finding = (f: Finding) => `  ${p.yellow(f.kind)}${f.name ? ` ${p.bold(f.name)}` : ""}: ${f.detail}${f.fix ? p.dim(` (fix: ${f.fix})`) : ""}`;
  const lines: string[] = [];
  if (r.fixed && r.fixed.length > 0) lines.push(p.green(`fixed ${r.fixed.length}:`), ...r.fixed.map(finding));
  if (r.failed && r.failed.length > 0) lines.push(p.red(`could not fix ${r.failed.length}:`), ...r.failed.map((f) => `${finding(f)} ${p.red(f.error)}`));
  const findings = r.findings ?? [];
  if (findings.length > 0) lines.push(p.yellow(`${findings.length} problem(s)${r.fixed ? " remain" : ""}:`), ...findings.map(finding), ...(r.fixed ? [] : ["doctor({ fix: true }) repairs them (or `troupe doctor --fix`)."]));
  else lines.push(p.green("no problems: the store and the world agree"));
  return lines.join("\n");
}

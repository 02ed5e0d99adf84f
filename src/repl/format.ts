/**
 * Text only the REPL prints: error lines, watched events, what a send stored.
 * (Trees, tables, mail and reports are src/term's, shared with the CLI.)
 */
import { inspect } from "node:util";
import type { MailMessage, SupervisorEvent } from "../shared/contract.js";
import { isTroupeError } from "../shared/errors.js";
import { pathLabel } from "../term/builders.js";
import { time, type Paint } from "../term/paint.js";

/** `error CODE: message` for a troupe error (from the daemon, the client or a helper), null for any other value. */
export function troupeErrorLine(error: unknown, p: Paint): string | null {
  return isTroupeError(error) ? `${p.red("error")} ${p.bold(error.code)}: ${error.message}` : null;
}

/** A troupe error as one line; anything else as its message (and, with TROUPE_DEBUG, its stack). */
export function describeError(error: unknown, p: Paint): string {
  const line = troupeErrorLine(error, p);
  if (line !== null) return line;
  if (error instanceof Error) return `${p.red("error")} ${process.env.TROUPE_DEBUG ? (error.stack ?? error.message) : error.message}`;
  return `${p.red("error")} ${inspect(error)}`;
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
export function sentLines(rows: MailMessage[], p: Paint): string {
  if (rows.length === 0) return "sent nothing (no recipient)";
  return rows.map((m) => `sent ${p.dim(m.id)} ${p.bold(m.from)} → ${p.bold(m.to)} ${p.cyan(m.type)}`).join("\n");
}

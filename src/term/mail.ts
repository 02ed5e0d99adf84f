/** Mail on a terminal: an inbox, one message, what a send stored. */
import type { MailMessage } from "../shared/contract.js";
import { paint, time, type Paint } from "./paint.js";

export function mailList(rows: MailMessage[], p: Paint = paint()): string {
  if (rows.length === 0) return "No mail.";
  return rows.map((m) => mailLine(m, p)).join("\n");
}

function mailLine(m: MailMessage, p: Paint): string {
  const head = `${p.dim(time(m.createdAt))}  ${p.bold(m.from)} → ${p.bold(m.to)}${m.requestedTo && m.requestedTo !== m.to ? p.dim(` (${m.requestedTo})`) : ""}  ${p.cyan(m.type)}${m.priority !== "normal" ? ` ${p.yellow(m.priority)}` : ""}${m.readAt === null ? ` ${p.yellow("unread")}` : ""}  ${p.dim(m.id)}`;
  const subject = m.subject ? `  ${p.bold(m.subject)}\n` : "";
  const body = m.body
    .split("\n")
    .map((line) => `  ${line}`)
    .join("\n");
  return `${head}\n${subject}${body}`;
}

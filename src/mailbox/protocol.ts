/**
 * The mail protocol between builders and the supervisor (DESIGN §4, §8):
 * `worker_done` completes its sender; a builder that dies for good, or exits
 * cleanly without `worker_done`, is reported to its parent.
 */
import type { MailRow } from "../storage/types.js";
import { MAX_SUBJECT_CHARS, type SendRequest } from "./types.js";

export type ProtocolEffect = { kind: "worker_done"; actorId: string };

/** A `worker_done` from a builder means that builder (its `fromId`) is done. */
export function protocolEffect(message: MailRow): ProtocolEffect | null {
  if (message.type === "worker_done" && message.fromId !== null) return { kind: "worker_done", actorId: message.fromId };
  return null;
}

/** The effects of one send (a fan-out repeats the same effect per recipient): each at most once, in order. */
export function protocolEffects(messages: readonly MailRow[]): ProtocolEffect[] {
  const seen = new Set<string>();
  const effects: ProtocolEffect[] = [];
  for (const message of messages) {
    const effect = protocolEffect(message);
    if (!effect) continue;
    const key = `${effect.kind}:${effect.actorId}`;
    if (seen.has(key)) continue;
    seen.add(key);
    effects.push(effect);
  }
  return effects;
}

export interface NoticeInfo {
  /** The builder the notice is about (it becomes the sender). */
  name: string;
  id: string;
  reason: string;
  /** The reason in words for a person ("restart limit reached (3 in 10 min)"); `reason` stays the chart's code. */
  detail?: string;
  /** How the agent last ended. */
  exit?: { code: number | null; signal: string | null } | null;
  /** The last lines its screen showed, oldest first. */
  outputTail?: string[];
  /** Resolved recipient: the parent's name or "operator" ("parent" also works: the mailbox then finds the nearest live ancestor). */
  to: string;
}

/**
 * The message the supervisor sends as the operator on a dead builder's
 * behalf (`from` = the builder's name): `worker_died` (restart intensity
 * exceeded, it is now a zombie) or `error` with `payload.kind:
 * "contract_violation"` (it exited cleanly without sending `worker_done`).
 */
export function noticeMessage(kind: "worker_died" | "contract_violation", info: NoticeInfo): SendRequest {
  const reason = info.reason.trim() || "no reason recorded";
  const oneLine = (text: string) => text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, " ").replace(/ {2,}/g, " ");
  if (kind === "worker_died") {
    const why = info.detail?.trim() || reason;
    const exit = info.exit ? (info.exit.signal ? `killed by ${info.exit.signal}` : `exit code ${info.exit.code}`) : null;
    const tail = info.outputTail && info.outputTail.length > 0 ? `\nThe last lines it showed:\n${info.outputTail.map((line) => `  ${line}`).join("\n")}` : "";
    return {
      to: info.to,
      from: info.name,
      type: "worker_died",
      priority: "high",
      subject: clip(`Builder ${info.name} died and will not be restarted: ${oneLine(why)}`),
      body:
        `Builder ${info.name} (id ${info.id}) died and will not be restarted: ${why}${exit ? ` (last ${exit})` : ""}.\n` +
        `It is now a zombie; its worktree and branch are kept. Inspect it with \`troupe logs ${info.name}\`, ` +
        `then \`troupe restart ${info.name}\` to try again or \`troupe destroy ${info.name}\` to clean it up.${tail}`,
      payload: {
        kind: "worker_died",
        name: info.name,
        id: info.id,
        reason,
        ...(info.detail ? { detail: info.detail } : {}),
        ...(info.exit ? { exit: info.exit } : {}),
        ...(info.outputTail ? { outputTail: info.outputTail } : {}),
      },
    };
  }
  return {
    to: info.to,
    from: info.name,
    type: "error",
    priority: "high",
    subject: clip(`Builder ${info.name} exited without sending worker_done`),
    body:
      `Builder ${info.name} (id ${info.id}) exited without sending worker_done (${reason}), so its work may be unfinished.\n` +
      `Check its worktree and \`troupe logs ${info.name}\`, then \`troupe restart ${info.name}\` or \`troupe destroy ${info.name}\`. ` +
      `A builder reports completion with \`troupe send parent "<summary>" --type worker_done\`.`,
    payload: { kind: "contract_violation", name: info.name, id: info.id, reason },
  };
}

function clip(s: string): string {
  const chars = [...s];
  return chars.length <= MAX_SUBJECT_CHARS ? s : `${chars.slice(0, MAX_SUBJECT_CHARS - 1).join("")}…`;
}

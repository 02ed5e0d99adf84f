/**
 * The one timer of a builder: armed for the earliest deadline its chart waits
 * for (kept as absolute times in context, because XState does not persist
 * delayed events), re-armed after every move. Same shape as host-link: it
 * reports by callback and returns its own cleanup.
 */
import { nextDeadline } from "../../machines/builder.js";

/** setTimeout's largest delay; a later deadline is re-checked when this one fires. */
const MAX_DELAY_MS = 2 ** 31 - 1;

export function armDeadline(snapshot: Parameters<typeof nextDeadline>[0], now: number, onDue: () => void): () => void {
  const deadline = nextDeadline(snapshot);
  if (!deadline) return () => undefined;
  const timer = setTimeout(onDue, Math.min(Math.max(0, deadline.at - now), MAX_DELAY_MS));
  return () => clearTimeout(timer);
}

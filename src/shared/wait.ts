/**
 * A bounded wait on an event, on an abortable timer: the timer is cancelled
 * the moment the event settles, so nothing lingers (a plain
 * `Promise.race([p, delay(ms)])` leaves its timer running to the end, keeping
 * the process alive or firing for nobody). Node builtins only.
 */
import { setTimeout as sleep } from "node:timers/promises";

/** Resolves true when `promise` settles (either way) within `ms`, false when the time ran out first. */
export async function settlesWithin(promise: PromiseLike<unknown>, ms: number, options: { ref?: boolean } = {}): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      Promise.resolve(promise).then(
        () => true,
        () => true,
      ),
      sleep(ms, false, { signal: timer.signal, ref: options.ref ?? true }),
    ]);
  } finally {
    timer.abort();
  }
}

/**
 * Durations as people write them on a command line or in config: `500ms`,
 * `90s`, `15m`, `2h`, `1d`, or combined (`1h30m`). A bare number is refused:
 * "900" could mean seconds or milliseconds, and a stall timeout a thousand
 * times too short kills agents.
 */
const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;

/** Milliseconds, or null when `text` is not a duration. */
export function parseDuration(text: string): number | null {
  const compact = text.trim();
  if (!DURATION.test(compact)) return null;
  let total = 0;
  for (const [, amount, unit] of compact.matchAll(PART)) total += Number(amount) * UNIT_MS[unit!]!;
  return Number.isFinite(total) ? Math.round(total) : null;
}

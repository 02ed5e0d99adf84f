/**
 * The restart policy of a builder (DESIGN §4), as pure functions of numbers.
 *
 * Nothing here reads a clock or a random source: every time is an epoch-ms
 * `at` carried by an event and every jitter a number in [0, 1) chosen by the
 * caller, so a decision replays identically from a persisted snapshot.
 */

/** OTP restart types: `permanent` always, `transient` after an abnormal exit, `temporary` never. */
export type RestartType = "permanent" | "transient" | "temporary";

export const RESTART_TYPES: readonly RestartType[] = ["permanent", "transient", "temporary"];

export interface BuilderPolicy {
  /** At most this many automatic restarts within `periodMs`; one more gives up (zombie "intensity"). */
  readonly maxRestarts: number;
  readonly periodMs: number;
  /** First backoff delay; doubled per consecutive restart up to `backoffMaxMs`. */
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
  /** Relative jitter: 0.2 spreads a delay over [0.8, 1.2) of its nominal value. */
  readonly backoffJitter: number;
  /** Up at least this long before an exit: the backoff starts over from `backoffInitialMs`. */
  readonly stableMs: number;
  /** No output for this long: `working.active` → `working.stalled`. */
  readonly stallMs: number;
  /** No output for this long (from the last activity, so > stallMs): the agent is killed, → zombie. */
  readonly zombieMs: number;
}

export const DEFAULT_POLICY: BuilderPolicy = Object.freeze({
  maxRestarts: 3,
  periodMs: 600_000,
  backoffInitialMs: 1000,
  backoffMaxMs: 60_000,
  backoffJitter: 0.2,
  stableMs: 60_000,
  stallMs: 300_000,
  zombieMs: 900_000,
});

const POLICY_KEYS = Object.keys(DEFAULT_POLICY) as ReadonlyArray<keyof BuilderPolicy>;

/**
 * The defaults overlaid with the numeric fields of `overrides`. Unknown keys
 * and `undefined` values are ignored, because callers pass their whole option
 * bag (which carries other timings) straight through. It never throws: the
 * machine must start whatever it is given; validate with `policyProblems`
 * where a human can be told.
 */
export function resolvePolicy(overrides?: Partial<BuilderPolicy> | null): BuilderPolicy {
  const policy: Record<keyof BuilderPolicy, number> = { ...DEFAULT_POLICY };
  if (overrides) {
    for (const key of POLICY_KEYS) {
      const value = (overrides as Record<string, unknown>)[key];
      if (typeof value === "number" && !Number.isNaN(value)) policy[key] = value;
    }
  }
  return policy;
}

/** Human-readable reasons why `policy` is unusable; empty when it is fine. */
export function policyProblems(policy: BuilderPolicy): string[] {
  const problems: string[] = [];
  const nonNegative = (key: keyof BuilderPolicy) => {
    if (!(Number.isFinite(policy[key]) && policy[key] >= 0)) problems.push(`${key} must be a finite number ≥ 0 (got ${policy[key]})`);
  };
  if (!(Number.isInteger(policy.maxRestarts) && policy.maxRestarts >= 0)) problems.push(`maxRestarts must be an integer ≥ 0 (got ${policy.maxRestarts})`);
  for (const key of ["periodMs", "backoffInitialMs", "backoffMaxMs", "stableMs", "stallMs", "zombieMs"] as const) nonNegative(key);
  if (policy.backoffMaxMs < policy.backoffInitialMs) problems.push(`backoffMaxMs (${policy.backoffMaxMs}) must be ≥ backoffInitialMs (${policy.backoffInitialMs})`);
  if (!(policy.backoffJitter >= 0 && policy.backoffJitter < 1)) problems.push(`backoffJitter must be in [0, 1) (got ${policy.backoffJitter})`);
  if (!(policy.zombieMs > policy.stallMs)) problems.push(`zombieMs (${policy.zombieMs}) must be greater than stallMs (${policy.stallMs})`);
  return problems;
}

/**
 * The delay before restart number `step` (0-based since the last reset):
 * `backoffInitialMs · 2^step`, capped at `backoffMaxMs`, then spread by
 * ±`backoffJitter` with `jitter` ∈ [0, 1) (0.5 is the nominal value). The cap
 * applies before the jitter so builders that all sit at the cap still spread
 * out instead of restarting in lockstep. Whole milliseconds.
 */
export function backoffDelay(
  policy: Pick<BuilderPolicy, "backoffInitialMs" | "backoffMaxMs" | "backoffJitter">,
  step: number,
  jitter: number,
): number {
  const exponent = Math.max(0, Math.floor(step));
  // 2 ** 1100 is Infinity, which Math.min caps like any other large value.
  const nominal = Math.min(policy.backoffMaxMs, policy.backoffInitialMs * 2 ** exponent);
  const unit = Number.isFinite(jitter) ? Math.min(Math.max(jitter, 0), 1) : 0.5;
  const factor = 1 + policy.backoffJitter * (2 * unit - 1);
  return Math.max(0, Math.round(nominal * factor));
}

/** An exit is normal only when the process returned 0 on its own (no signal). */
export function isAbnormalExit(code: number | null, signal: string | null): boolean {
  return code !== 0 || signal !== null;
}

/** Whether the restart type asks for a restart at all (before intensity is considered). */
export function wantsRestart(restartType: RestartType, abnormal: boolean): boolean {
  switch (restartType) {
    case "permanent":
      return true;
    case "transient":
      return abnormal;
    case "temporary":
      return false;
  }
}

/** The restart times that still count at `at`: those in the window (at − periodMs, at]. */
export function restartsInWindow(restartTimes: readonly number[], at: number, periodMs: number): number[] {
  return restartTimes.filter((time) => time > at - periodMs && time <= at);
}

/**
 * What an exit (or a failed start) leads to:
 * - `restart`: back to `booting.backoff`;
 * - `intensity`: a restart was wanted but `maxRestarts` were already spent in `periodMs`;
 * - `exited` / `crashed`: no restart wanted, after a normal / abnormal exit.
 */
export type ExitOutcome = "restart" | "intensity" | "exited" | "crashed";

export function exitOutcome(
  state: { restartType: RestartType; policy: Pick<BuilderPolicy, "maxRestarts" | "periodMs">; restartTimes: readonly number[] },
  exit: { at: number; abnormal: boolean },
): ExitOutcome {
  if (!wantsRestart(state.restartType, exit.abnormal)) return exit.abnormal ? "crashed" : "exited";
  const recent = restartsInWindow(state.restartTimes, exit.at, state.policy.periodMs).length;
  return recent < state.policy.maxRestarts ? "restart" : "intensity";
}

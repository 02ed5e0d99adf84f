import { TroupeError } from "./errors.js";

/**
 * Named fault points (DESIGN §7): one between every two steps of spawn,
 * restart, stop, destroy and mail send. `TROUPE_FAULTS` switches them on:
 *
 *   TROUPE_FAULTS=spawn.after-worktree=crash,destroy.after-kill=throw
 *
 * `crash` kills the owner on the spot (SIGKILL: no cleanup, no flush), as a
 * power cut or an OOM kill would; `throw` makes the step fail with
 * FAULT_INJECTED. With the variable unset, `fault()` is one boolean test.
 */
export const faultPoints = [
  "spawn.after-row",
  "spawn.after-worktree",
  "spawn.after-provisioned",
  "spawn.after-host",
  "restart.after-transition",
  "restart.after-host",
  "stop.after-kill",
  "destroy.after-destroying",
  "destroy.after-kill",
  "destroy.after-process-gone",
  "destroy.after-worktree",
  "destroy.after-branch",
  "mail.after-store",
  "mail.after-delivered",
] as const;

export type FaultPoint = (typeof faultPoints)[number];
export type FaultAction = "crash" | "throw";

const armed = parseFaults(process.env.TROUPE_FAULTS);
const enabled = armed.size > 0;

/** Passes a fault point: nothing happens unless TROUPE_FAULTS armed it. */
export function fault(point: FaultPoint): void {
  if (!enabled) return;
  const action = armed.get(point);
  if (action === "crash") process.kill(process.pid, "SIGKILL");
  if (action === "throw") throw new TroupeError("FAULT_INJECTED", `Fault injected at ${point} (TROUPE_FAULTS).`, { point });
}

function parseFaults(spec: string | undefined): Map<FaultPoint, FaultAction> {
  const map = new Map<FaultPoint, FaultAction>();
  if (!spec) return map;
  for (const item of spec.split(",").map((part) => part.trim()).filter(Boolean)) {
    const [point, action = "crash"] = item.split("=");
    if (!(faultPoints as readonly string[]).includes(point!)) {
      throw new TroupeError("INVALID_ARGUMENT", `TROUPE_FAULTS names an unknown fault point "${point}". Known: ${faultPoints.join(", ")}.`, { point });
    }
    if (action !== "crash" && action !== "throw") {
      throw new TroupeError("INVALID_ARGUMENT", `TROUPE_FAULTS: the action for ${point} must be "crash" or "throw", not "${action}".`, { point, action });
    }
    map.set(point as FaultPoint, action);
  }
  return map;
}

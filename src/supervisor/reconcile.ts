import type { BuilderRuntime } from "./builder-runtime.js";

export interface ReconcileDeps {
  teardown(runtime: BuilderRuntime, options: { force: boolean; rollback: boolean }): Promise<void>;
}

/**
 * Brings one restored builder in line with the world (DESIGN §7 table).
 * Never kills a builder that has a live, matching pty host; never
 * re-provisions a tombstone. One log line per decision.
 */
export async function reconcileBuilder(runtime: BuilderRuntime, deps: ReconcileDeps): Promise<void> {
  const { state, substate } = runtime.life;
  const log = (decision: string, extra: object = {}) => runtime.log.info({ decision, state, substate, ...extra }, "reconcile");
  switch (state) {
    case "working": {
      if (runtime.row.intent?.op === "stop") {
        log("finish the interrupted stop");
        await runtime.terminateAgent();
        return runtime.transition({ type: "STOPPED", at: Date.now() }, { pid: null, pidStartTime: null, hostPid: null, hostStartTime: null, intent: null });
      }
      const host = await runtime.tryAdoptHost();
      if (host) {
        log("adopt live pty host", { hostPid: host.identity.hostPid, pid: host.identity.pid });
        return runtime.resumeWorking(host);
      }
      log("host gone: treat as an exit");
      return runtime.resolveLostAgent();
    }
    case "booting": {
      if (substate === "backoff") {
        log("re-arm restart deadline");
        return runtime.armTimer();
      }
      if (substate === "starting") {
        log("finish the interrupted start");
        await runtime.start({ firstStart: false }).catch(() => undefined);
        return;
      }
      // provisioning: the spawn's caller is gone; roll it back so nothing half-made stays.
      log("roll back interrupted spawn");
      return deps.teardown(runtime, { force: true, rollback: true });
    }
    case "completed":
    case "zombie": {
      const host = await runtime.tryAdoptHost();
      if (host) {
        host.close();
        log("stop the agent of a finished builder", { hostPid: host.identity.hostPid });
        await runtime.terminateAgent();
      } else {
        await runtime.killLeftovers();
      }
      return;
    }
    case "destroying":
      log("resume teardown");
      return deps.teardown(runtime, { force: true, rollback: false });
    case "destroyed":
      return;
  }
}

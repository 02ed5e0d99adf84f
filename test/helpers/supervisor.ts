import { fileURLToPath } from "node:url";
import { createSupervisor } from "../../src/index.js";
import type { Supervisor } from "../../src/supervisor/supervisor.js";
import type { BuilderStatus, SupervisorEvent, SupervisorOptions } from "../../src/supervisor/types.js";
import { cleanupWorkspace, makeRepo, waitFor } from "./workspace.js";

export const FAKE_AGENT = fileURLToPath(new URL("../fixtures/agents/fake-agent.mjs", import.meta.url));

/** argv of the fake agent with the given flags (see test/fixtures/agents/fake-agent.mjs). */
export function agent(...flags: string[]): string[] {
  return [process.execPath, FAKE_AGENT, ...flags];
}

/** Fast timings so restart, stop and stall behaviour runs in milliseconds. */
export const FAST: Omit<SupervisorOptions, "workspace"> = {
  timings: { killTimeoutMs: 400, hostStartTimeoutMs: 20_000, collectTimeoutMs: 60_000 },
  policy: { backoffInitialMs: 20, backoffMaxMs: 100, stallMs: 120_000, zombieMs: 240_000 },
};

/** A supervisor on a fresh repository that records every event it reports. */
export class Harness {
  readonly events: SupervisorEvent[] = [];
  supervisor!: Supervisor;
  private constructor(readonly repo: string) {}

  static async start(options: Omit<SupervisorOptions, "workspace"> = FAST, repo = makeRepo()): Promise<Harness> {
    const harness = new Harness(repo);
    await harness.open(options);
    return harness;
  }

  async open(options: Omit<SupervisorOptions, "workspace"> = FAST): Promise<Supervisor> {
    this.supervisor = await createSupervisor({ workspace: this.repo, ...options });
    this.supervisor.subscribe((event) => this.events.push(event));
    return this.supervisor;
  }

  output(name: string): string {
    return this.events.filter((e): e is Extract<SupervisorEvent, { type: "output" }> => e.type === "output" && e.name === name).map((e) => e.data).join("");
  }

  transitions(name: string): string[] {
    return this.events.filter((e) => e.type === "transition" && e.name === name).map((e) => (e as { to: string }).to);
  }

  notices(name: string, kind?: string) {
    return this.events.filter((e): e is Extract<SupervisorEvent, { type: "notice" }> => e.type === "notice" && e.name === name && (kind === undefined || e.kind === kind));
  }

  async waitForState(name: string, state: string, timeoutMs = 30_000): Promise<BuilderStatus> {
    return waitFor(async () => {
      const st = await this.supervisor.get(name);
      const full = st.substate ? `${st.state}.${st.substate}` : st.state;
      return full === state || st.state === state ? st : null;
    }, `${name} to be ${state}`, timeoutMs);
  }

  async waitForOutput(name: string, pattern: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    return waitFor(() => this.output(name).match(pattern), `output of ${name} matching ${pattern}`, timeoutMs);
  }

  /** Closes the supervisor (if open) and ends every process of the workspace, then removes it. */
  async dispose(): Promise<void> {
    try {
      await this.supervisor?.close();
    } finally {
      cleanupWorkspace(this.repo);
    }
  }
}

import { afterEach, describe, expect, it } from "vitest";
import { isProcessAlive } from "../../src/shared/proc.js";
import { Harness, agent } from "../helpers/supervisor.js";
import { waitFor } from "../helpers/workspace.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("stall detection and stop", () => {
  it("a hung agent goes working.stalled, then is killed and becomes zombie with one worker_died", async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "hung", cmd: agent("--hang"), policy: { stallMs: 300, zombieMs: 900 } });
    await h.waitForState("hung", "working.stalled");
    const dead = await h.waitForState("hung", "zombie");
    expect(dead.reason).toBe("stalled");
    expect(isProcessAlive(st.pid!)).toBe(false);
    expect(h.transitions("hung")).toEqual(["booting.provisioning", "booting.starting", "working.active", "working.stalled", "zombie"]);
    expect(h.notices("hung", "worker_died")).toEqual([expect.objectContaining({ reason: "stalled" })]);
  });

  it("output brings a stalled agent back to working.active", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "echo", cmd: agent("--echo"), policy: { stallMs: 300, zombieMs: 60_000 } });
    await h.waitForState("echo", "working.stalled");
    const client = await waitFor(async () => {
      const { connectPtyHost } = await import("../../src/actors/index.js");
      const { workspaceLayout } = await import("../../src/supervisor/layout.js");
      return connectPtyHost(workspaceLayout(h!.repo).ptySocketPath((await h!.supervisor.get("echo")).id));
    }, "a client of the host");
    client.write("wake up\r");
    await h.waitForOutput("echo", /ECHO:wake up/);
    await h.waitForState("echo", "working.active");
    client.close();
  });

  it("stop ends the agent and a grandchild that ignores SIGTERM — no survivor in the process table", async () => {
    h = await Harness.start();
    await h.supervisor.spawn({ name: "tree", cmd: agent("--ignore-term", "--grandchild", "--grandchild-setsid", "--hang") });
    const out = await waitFor(() => {
      const pids = [...h!.output("tree").matchAll(/GRANDCHILD (\d+)/g)].map((m) => Number(m[1]));
      return pids.length === 2 ? pids : null;
    }, "two grandchildren");
    const st = await h.supervisor.get("tree");
    for (const pid of [st.pid!, ...out]) expect(isProcessAlive(pid)).toBe(true);
    const stopped = await h.supervisor.stop("tree");
    expect(stopped).toMatchObject({ state: "completed", reason: "stopped", pid: null });
    for (const pid of [st.pid!, ...out]) expect(isProcessAlive(pid), `pid ${pid}`).toBe(false);
    // stop is idempotent
    expect((await h.supervisor.stop("tree")).state).toBe("completed");
  });
});

import { afterEach, describe, expect, it } from "vitest";
import { FAST, Harness, agent } from "../helpers/supervisor.js";
import { waitFor } from "../helpers/workspace.js";

/** An agent that chatters for `ms`, then goes quiet and reports every line typed into it. */
function chattyAgent(ms: number): string[] {
  const script = `
    const start = Date.now();
    const timer = setInterval(() => {
      console.log("chatter " + (Date.now() - start));
      if (Date.now() - start > ${ms}) { clearInterval(timer); console.log("QUIET"); }
    }, 20);
    process.stdin.setEncoding("utf8");
    let buffer = "";
    process.stdin.on("data", (chunk) => {
      buffer += chunk;
      let i;
      while ((i = buffer.search(/[\\r\\n]/)) >= 0) { const line = buffer.slice(0, i); buffer = buffer.slice(i + 1); if (line) console.log("GOT:" + JSON.stringify(line)); }
    });
    setInterval(() => {}, 1 << 30);`;
  return [process.execPath, "-e", script];
}

const MAIL = { ...FAST, timings: { ...FAST.timings, idleMs: 300 } };

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("mail between agents and the operator", () => {
  it("is typed into an agent's terminal once, only after it went quiet, and kept in its inbox", async () => {
    h = await Harness.start(MAIL);
    await h.supervisor.spawn({ name: "busy", cmd: chattyAgent(800) });
    const [message] = await h.supervisor.send({ to: "busy", body: "please rebase", subject: "rebase", type: "dispatch" });
    expect(message!.deliveredAt).toBeNull();
    await h.waitForOutput("busy", new RegExp(`GOT:.*${message!.id}`));
    const out = h.output("busy");
    expect(out.indexOf("QUIET")).toBeGreaterThan(-1);
    expect(out.indexOf("GOT:")).toBeGreaterThan(out.indexOf("QUIET"));
    expect(out).toMatch(/GOT:.*operator.*please rebase/);
    const inbox = await h.supervisor.mail({ name: "busy" });
    expect(inbox).toHaveLength(1);
    expect(inbox[0]!.deliveredAt).not.toBeNull();
    expect(inbox[0]!.readAt).toBeNull();
    expect(await h.supervisor.mail({ name: "busy", unread: true })).toHaveLength(1);
  });

  it("a supervisor restart in between delivers a message once, not twice", async () => {
    h = await Harness.start({ ...MAIL, timings: { ...MAIL.timings, idleMs: 60_000 } });
    await h.supervisor.spawn({ name: "calm", cmd: chattyAgent(100) });
    const [first] = await h.supervisor.send({ to: "calm", body: "first message" });
    await h.supervisor.close(); // before the (long) quiet period elapsed: not delivered yet
    await h.open(MAIL);
    await h.waitForOutput("calm", new RegExp(`GOT:.*${first!.id}`));
    await h.supervisor.close();
    await h.open(MAIL);
    const [second] = await h.supervisor.send({ to: "calm", body: "second message" });
    await h.waitForOutput("calm", new RegExp(`GOT:.*${second!.id}`));
    // The whole transcript of the agent (its host's scrollback is replayed to each new supervisor's subscribers).
    const transcript = await waitFor(async () => {
      const { readFileSync } = await import("node:fs");
      const { workspaceLayout } = await import("../../src/supervisor/layout.js");
      const st = await h!.supervisor.get("calm");
      const text = readFileSync(workspaceLayout(h!.repo).transcriptPath("calm", st.id), "utf8");
      return text.includes(second!.id) ? text : null;
    }, "transcript with the second message");
    expect(transcript.match(new RegExp(`GOT:[^\\n]*${first!.id}`, "g"))).toHaveLength(1);
  });

  it("worker_done from the agent (authenticated by its token) completes it and stops its agent", async () => {
    h = await Harness.start(MAIL);
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang") });
    const st = await h.supervisor.spawn({ name: "worker", cmd: agent("--env", "TROUPE_TOKEN", "--hang"), parent: "lead" });
    const token = (await h.waitForOutput("worker", /ENV TROUPE_TOKEN=(\S+)/))[1]!;
    // An agent cannot send as another one.
    await expect(h.supervisor.send({ to: "lead", body: "x", from: "lead" }, { token })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    await expect(h.supervisor.send({ to: "lead", body: "x" }, { token: token.slice(0, -2) + (token.endsWith("xx") ? "yy" : "xx") })).rejects.toMatchObject({ code: "UNAUTHORIZED" });
    const [done] = await h.supervisor.send({ to: "parent", type: "worker_done", body: "all tests pass" }, { token });
    expect(done).toMatchObject({ from: "worker", to: "lead", type: "worker_done" });
    const completed = await h.waitForState("worker", "completed");
    expect(completed.reason).toBe("worker_done");
    const { isProcessAlive } = await import("../../src/shared/proc.js");
    expect(isProcessAlive(st.pid!)).toBe(false);
    expect((await h.supervisor.mail({ name: "lead" })).map((m) => m.type)).toEqual(["worker_done"]);
    expect(h.notices("worker", "contract_violation")).toEqual([]);
  });

  it("a clean exit without worker_done is reported to the parent; a crash loop sends exactly one worker_died", async () => {
    h = await Harness.start(MAIL);
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang") });
    await h.supervisor.spawn({ name: "silent", cmd: agent("--exit", "0"), parent: "lead" });
    await h.supervisor.spawn({ name: "loop", cmd: agent("--exit", "9"), parent: "lead", policy: { maxRestarts: 2 } });
    await h.waitForState("silent", "completed");
    await h.waitForState("loop", "zombie");
    const inbox = await waitFor(async () => {
      const mail = await h!.supervisor.mail({ name: "lead" });
      return mail.length >= 2 ? mail : null;
    }, "two notices in the lead's inbox");
    const died = inbox.filter((m) => m.type === "worker_died");
    expect(died).toHaveLength(1);
    expect(died[0]).toMatchObject({ from: "loop", to: "lead", priority: "high" });
    const violation = inbox.filter((m) => (m.payload as { kind?: string } | null)?.kind === "contract_violation");
    expect(violation).toEqual([expect.objectContaining({ from: "silent", to: "lead" })]);
  });

  it("a worker_died mail says why in words, with the last exit code and the last lines the agent showed", async () => {
    h = await Harness.start(MAIL);
    await h.supervisor.spawn({ name: "lead", cmd: agent("--hang") });
    await h.supervisor.spawn({ name: "failing", cmd: agent("--print", "cannot open config.yaml", "--exit", "9"), parent: "lead", policy: { maxRestarts: 1 } });
    await h.waitForState("failing", "zombie");
    const died = await waitFor(async () => (await h!.supervisor.mail({ name: "lead" })).find((m) => m.type === "worker_died") ?? null, "the worker_died mail");
    expect(died.subject).toContain("restart limit reached (1 in 10 min)");
    expect(died.body).toContain("last exit code 9");
    expect(died.body).toMatch(/The last lines it showed:\n(  .*\n)*  cannot open config\.yaml/);
    expect(died.payload).toMatchObject({ kind: "worker_died", reason: "intensity", exit: { code: 9, signal: null } });
    expect((died.payload as { outputTail: string[] }).outputTail).toContain("cannot open config.yaml");
  });

  it("unknown and destroyed recipients are errors to the sender, and nothing is stored", async () => {
    h = await Harness.start(MAIL);
    await h.supervisor.spawn({ name: "old", cmd: agent("--hang") });
    await h.supervisor.destroy("old");
    await expect(h.supervisor.send({ to: "nobody", body: "hi" })).rejects.toMatchObject({ code: "UNKNOWN_RECIPIENT" });
    await expect(h.supervisor.send({ to: "old", body: "hi" })).rejects.toMatchObject({ code: "DESTROYED" });
    expect(await h.supervisor.mail({ name: "old" })).toEqual([]);
    expect(await h.supervisor.mail()).toEqual([]);
  });
});

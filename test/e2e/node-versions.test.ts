/**
 * Two Node versions on one machine (prior art: a CLI and a daemon on
 * different Node ABIs half-spawned builders). The daemon runs under Node 22
 * with the CLI under this Node (20), then the reverse: spawn, status, send,
 * mail and destroy all work. Node 22 comes from the npm registry (the `node`
 * package), installed once under node_modules/.cache.
 */
import { execFileSync } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TestWorkspace, agent, node22 } from "./harness.js";

let other = "";
beforeAll(async () => {
  other = await node22();
}, 240_000);

const major = (nodeBin: string) => Number(execFileSync(nodeBin, ["-p", "process.versions.node.split('.')[0]"], { encoding: "utf8" }).trim());

interface Builder {
  name: string;
  state: string;
  pid: number | null;
}

describe.each([
  ["the daemon on Node 22, the CLI on this Node", "daemon22"],
  ["the daemon on this Node, the CLI on Node 22", "cli22"],
])("%s", (_title, mode) => {
  let ws: TestWorkspace;
  let daemonNode = "";
  let cliNode = "";
  beforeAll(() => {
    ws = new TestWorkspace(`troupe-${mode}-`);
    daemonNode = mode === "daemon22" ? other : process.execPath;
    cliNode = mode === "daemon22" ? process.execPath : other;
  });
  afterAll(async () => {
    await ws.close();
  });

  it("uses two different Node majors", () => {
    expect(major(other)).toBe(22);
    expect(major(daemonNode)).not.toBe(major(cliNode));
  });

  it("spawn, status, send, mail and destroy work across them", async () => {
    // the daemon's Node: `daemon start --node` for one, TROUPE_DAEMON_NODE for the other
    const env = mode === "daemon22" ? {} : { TROUPE_DAEMON_NODE: daemonNode };
    if (mode === "daemon22") {
      const started = await ws.ok<{ started: boolean; pid: number; node: string }>(["daemon", "start", "--node", daemonNode, "--json"]);
      ws.track(started.pid);
      expect(started).toMatchObject({ started: true, node: expect.stringMatching(/^v22\./) });
    }
    const run = <T>(args: string[]) => ws.ok<T>(args, { node: cliNode, env });
    const spawned = await run<Builder>(["spawn", "lead", "--json", "--", process.execPath, agent("cli-quiet.mjs")]);
    expect(spawned).toMatchObject({ name: "lead", state: "working" });
    const daemon = await run<{ node: string; pid: number }>(["daemon", "status", "--json"]);
    ws.track(daemon.pid);
    expect(Number(daemon.node.slice(1).split(".")[0])).toBe(major(daemonNode));
    // a builder whose agent talks to the daemon with the CLI under the daemon's Node
    await run(["spawn", "child", "--parent", "lead", "--", daemonNode, agent("cli-mailer.mjs"), "across versions"]);
    const status = await run<Builder[]>(["status", "--json"]);
    expect(status.map((b) => [b.name, b.state])).toEqual([["lead", "working"], ["child", "working"]]);
    const sent = await run<Array<{ to: string; body: string }>>(["send", "lead", "from the operator", "--json"]);
    expect(sent[0]).toMatchObject({ to: "lead", body: "from the operator" });
    const { waitFor } = await import("../helpers/workspace.js");
    const inbox = await waitFor(async () => {
      const mail = await run<Array<{ from: string; body: string }>>(["mail", "lead", "--json"]);
      return mail.some((m) => m.from === "child") ? mail : null;
    }, "the child's mail");
    expect(inbox.map((m) => m.body)).toEqual(expect.arrayContaining(["from the operator", "across versions"]));
    for (const name of ["child", "lead"]) expect(await run<Builder>(["destroy", name, "--force", "--json"])).toMatchObject({ name, state: "destroyed" });
    expect(await run<Builder[]>(["status", "--json"])).toEqual([]);
  });
});

/**
 * The spawning shell's world reaches the agent (issue 12): its PATH (the
 * command is found on it, not on the daemon's), TERM, LANG and the variables
 * named with --env; and `troupe` itself is on the agent's PATH, so an agent
 * can report with the CLI whatever PATH it was given. Also the spawn flags
 * for the agent's silence limits. Real CLI, real daemon, real pty hosts.
 */
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../helpers/workspace.js";
import { TestWorkspace, agent, cliEnv } from "./harness.js";

const node = process.execPath;
let ws: TestWorkspace;
/** A directory on the spawning shell's PATH only: the daemon was started without it. */
let shellBin: string;

interface Builder {
  name: string;
  state: string;
  substate: string | null;
  reason: string | null;
}

beforeAll(async () => {
  ws = new TestWorkspace("troupe-shell-world-");
  await ws.daemonPid();
  shellBin = join(ws.repo, ".shell-bin");
  mkdirSync(shellBin);
  // Found only on the shell's PATH; prints what a user would check, then waits.
  writeFileSync(join(shellBin, "my-agent"), `#!/bin/sh\nexec ${JSON.stringify(node)} ${JSON.stringify(agent("fake-agent.mjs"))} --env TERM --env LANG --env FROM_SHELL --env GIVEN --hang\n`);
  chmodSync(join(shellBin, "my-agent"), 0o755);
});
afterAll(async () => {
  await ws?.close();
});

const shell = (extra: Record<string, string> = {}) => cliEnv({ PATH: `${shellBin}:${process.env.PATH}`, TERM: "xterm-kitty", LANG: "de_DE.UTF-8", ...extra });

describe("the spawning shell's world", () => {
  it("finds the command on the shell's PATH and gives the agent its TERM, LANG and the --env variables", async () => {
    await ws.ok(["spawn", "world", "--env", "FROM_SHELL", "--env", "GIVEN=by flag", "--", "my-agent"], { env: shell({ FROM_SHELL: "exported here" }) });
    const text = await waitFor(async () => {
      const out = await ws.ok<string>(["logs", "world"]);
      return out.includes("ENV GIVEN=") ? out : null;
    }, "the agent's environment in its output");
    expect(text).toContain("ENV TERM=xterm-kitty");
    expect(text).toContain("ENV LANG=de_DE.UTF-8");
    expect(text).toContain("ENV FROM_SHELL=exported here");
    expect(text).toContain("ENV GIVEN=by flag");
  });

  it("puts troupe on the agent's PATH: an agent with a bare PATH still reports with the CLI", async () => {
    const script = "troupe send operator 'hello from the agent' --type status && exec sleep 100000";
    await ws.ok(["spawn", "reporter", "--env", "PATH=/usr/bin:/bin", "--shell", script], { env: shell() });
    const inbox = await waitFor(async () => {
      const mail = await ws.ok<Array<{ from: string; body: string }>>(["mail", "--json"]);
      return mail.find((m) => m.from === "reporter") ?? null;
    }, "the agent's mail to the operator");
    expect(inbox.body).toBe("hello from the agent");
  });

  it("refuses an --env that names a variable the shell does not have, or a TROUPE_ one, and a bad duration, starting nothing", async () => {
    for (const [args, message] of [
      [["--env", "NOT_SET_ANYWHERE"], /NOT_SET_ANYWHERE is not set in this shell/],
      [["--env", "TROUPE_TOKEN=x"], /TROUPE_\* variables are set by troupe itself/],
      [["--env", "1BAD=x"], /use KEY=VALUE/],
      [["--stall", "300"], /give a duration such as 90s/],
      [["--max-restarts", "three"], /whole number/],
    ] as const) {
      const result = await ws.run(["spawn", "refused", ...args, "--", "my-agent"], { env: shell() });
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(message);
    }
    expect((await ws.ok<Builder[]>(["status", "--all", "--json"])).some((b) => b.name === "refused")).toBe(false);
  });

  it("--stall and --zombie set the agent's silence limits: a silent agent is stalled, then killed as a zombie", async () => {
    await ws.ok(["spawn", "silent", "--stall", "300ms", "--zombie", "1s", "--restart", "temporary", "--", node, agent("fake-agent.mjs"), "--hang"], { env: shell() });
    const zombie = await waitFor(async () => {
      const builder = (await ws.ok<Builder[]>(["status", "--json"])).find((b) => b.name === "silent");
      return builder?.state === "zombie" ? builder : null;
    }, "the silent agent to be killed as a zombie");
    expect(zombie.reason).toBe("stalled");
  });
});

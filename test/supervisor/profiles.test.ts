import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { BUILTIN_PROFILES } from "../../src/index.js";
import { agentArgv } from "../../src/supervisor/profiles.js";
import { signalProcessTree } from "../../src/shared/proc.js";
import { FAKE_AGENT, FAST, Harness } from "../helpers/supervisor.js";
import { makeRepo, waitFor } from "../helpers/workspace.js";

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("agent profiles", () => {
  it("built-ins know how to run, resume and task claude, codex and aider", () => {
    expect(agentArgv(BUILTIN_PROFILES.claude!, undefined, "fix it", false)).toEqual(["claude", "fix it"]);
    expect(agentArgv(BUILTIN_PROFILES.claude!, undefined, "fix it", true)).toEqual(["claude", "--continue"]);
    expect(agentArgv(BUILTIN_PROFILES.codex!, undefined, "fix it", true)).toEqual(["codex", "resume", "--last"]);
    expect(agentArgv(BUILTIN_PROFILES.aider!, undefined, "fix it", false)).toEqual(["aider"]); // aider gets its task typed in
    expect(agentArgv(BUILTIN_PROFILES.shell!, ["make", "test"], "ignored", false)).toEqual(["make", "test"]);
  });

  it("a user profile from .troupe/config.json runs with its task as an argument, and resumes with its resume args after a crash", async () => {
    const repo = makeRepo();
    mkdirSync(join(repo, ".troupe"), { recursive: true });
    writeFileSync(
      join(repo, ".troupe", "config.json"),
      JSON.stringify({ profiles: { fake: { command: [process.execPath, FAKE_AGENT, "--env", "TROUPE_TASK", "--env", "FAKE_MODE", "--hang", "--print"], resumeArgs: ["--print", "RESUMED"], task: "arg", env: { FAKE_MODE: "from-profile" } } } }),
    );
    h = await Harness.start(FAST, repo);
    const st = await h.supervisor.spawn({ name: "p", agent: "fake", task: "TASK-TEXT" });
    await h.waitForOutput("p", /^TASK-TEXT\r?$/m);
    expect(h.output("p")).toContain("ENV TROUPE_TASK=TASK-TEXT");
    expect(h.output("p")).toContain("ENV FAKE_MODE=from-profile");
    signalProcessTree(st.pid!, "SIGKILL");
    await waitFor(
      async () => {
        const now = await h!.supervisor.get("p");
        if (now.restarts === 1 && now.state === "working") return true;
        throw new Error(`p is ${now.state}.${now.substate} after ${now.restarts} restarts (reason ${now.reason}); transitions ${JSON.stringify(h!.transitions("p"))}`);
      },
      "restarted",
    );
    await h.waitForOutput("p", /^RESUMED\r?$/m);
    expect(await h.supervisor.get("p")).toMatchObject({ agent: "fake", restarts: 1 });
  });

  it("an unknown profile names the known ones; a broken config file is a clear error", async () => {
    const repo = makeRepo();
    mkdirSync(join(repo, ".troupe"), { recursive: true });
    writeFileSync(join(repo, ".troupe", "config.json"), JSON.stringify({ profiles: { bad: { command: "not-an-array" } } }));
    const error = await Harness.start(FAST, repo).then(
      (started) => {
        h = started;
        return null;
      },
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringContaining('profile "bad"') });
    writeFileSync(join(repo, ".troupe", "config.json"), "{}");
    h = await Harness.start(FAST, repo);
    await expect(h.supervisor.spawn({ name: "x", agent: "nope" })).rejects.toMatchObject({ code: "UNKNOWN_PROFILE", message: expect.stringContaining("claude, codex, shell") });
  });
});

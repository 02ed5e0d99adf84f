import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Harness, agent } from "../helpers/supervisor.js";
import { git } from "../helpers/workspace.js";
import { leftoverProcesses } from "../helpers/invariants.js";

/** node-pty made unloadable in the pty host: a real dlopen failure of a broken addon. */
let brokenDir: string;
let saved: string | undefined;
beforeAll(() => {
  brokenDir = mkdtempSync(join(tmpdir(), "troupe-broken-pty-"));
  writeFileSync(join(brokenDir, "pty.node"), "this is not an ELF shared object");
  saved = process.env.TROUPE_PTY_MODULE;
  process.env.TROUPE_PTY_MODULE = join(brokenDir, "pty.node");
});
afterAll(() => {
  if (saved === undefined) delete process.env.TROUPE_PTY_MODULE;
  else process.env.TROUPE_PTY_MODULE = saved;
  rmSync(brokenDir, { recursive: true, force: true });
});

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

describe("node-pty cannot load", () => {
  it('pty "on": the spawn fails with an actionable message and leaves nothing behind', async () => {
    h = await Harness.start();
    const error = await h.supervisor.spawn({ name: "nopty", cmd: agent("--hang"), pty: "on" }).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: "PTY_UNAVAILABLE" });
    const message = (error as Error).message;
    expect(message).toContain(`ABI ${process.versions.modules}`);
    expect(message).toMatch(/npm rebuild/);
    expect(await h.supervisor.status()).toEqual([]);
    expect(git(h.repo, "branch", "--list", "troupe/*")).toBe("");
    expect(git(h.repo, "worktree", "list", "--porcelain").match(/^worktree /gm)).toHaveLength(1);
    expect(leftoverProcesses(h.repo)).toEqual([]);
  });

  it('pty "auto": the builder runs on pipes, flagged pty: false in status', async () => {
    h = await Harness.start();
    const st = await h.supervisor.spawn({ name: "pipes", cmd: agent("--info", "--hang"), pty: "auto" });
    expect(st).toMatchObject({ state: "working", pty: false });
    expect(st.ptyError).toMatch(/ABI/);
    const info = JSON.parse((await h.waitForOutput("pipes", /INFO (\{.*\})/))[1]!);
    expect(info.isatty).toBe(false);
    expect((await h.supervisor.status())[0]).toMatchObject({ name: "pipes", pty: false });
  });
});

/**
 * `troupe demo`: the one command a newcomer runs. It must run to completion,
 * print the tree and the mail, and leave nothing behind.
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { processesOfWorkspace } from "../helpers/workspace.js";
import { cli } from "./harness.js";

describe("troupe demo", () => {
  it("runs a lead and two builders to completion, prints the tree and the mail, and cleans up", async () => {
    const result = await cli(["demo"], { cwd: tmpdir(), timeoutMs: 150_000 });
    const repo = /repository\s+(\S+)/.exec(result.stdout)?.[1];
    try {
      expect(result.code, result.stderr + result.stdout).toBe(0);
      expect(repo).toBeDefined();
      // the tree: both builders under the lead, all completed
      expect(result.stdout).toMatch(/^lead\s+completed/m);
      expect(result.stdout).toMatch(/^├─ builder-1\s+completed/m);
      expect(result.stdout).toMatch(/^└─ builder-2\s+completed/m);
      // the mail: results to the lead, its replies, and the worker_done reports
      expect(result.stdout).toMatch(/builder-1 → lead .*result/);
      expect(result.stdout).toMatch(/builder-2 → lead .*result/);
      expect(result.stdout).toMatch(/lead → builder-1 .*status/);
      expect(result.stdout).toMatch(/lead → operator .*worker_done/);
      expect(result.stdout).toContain("cleaned up: builders destroyed, daemon stopped");
      expect(existsSync(repo!)).toBe(false);
      expect(processesOfWorkspace(repo!)).toEqual([]);
    } finally {
      if (repo && existsSync(repo)) (await import("../helpers/workspace.js")).cleanupWorkspace(repo);
    }
  }, 180_000);
});

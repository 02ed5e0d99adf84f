import { tmpdir } from "node:os";
import { isAbsolute, join } from "node:path";
import { describe, expect, it } from "vitest";
import { SOCKET_PATH_LIMIT, daemonPaths, runtimeDir, shortSocketDir, workspaceLayout } from "../../src/shared/layout.js";

describe("workspace layout", () => {
  it("keeps every path where running daemons and hosts expect it", () => {
    const layout = workspaceLayout("/repo");
    expect(layout.troupeDir).toBe("/repo/.troupe");
    expect(layout.stateDir).toBe("/repo/.troupe/state");
    expect(layout.runDir).toBe("/repo/.troupe/run");
    expect(layout.ptyDir).toBe("/repo/.troupe/run/pty");
    expect(layout.logsDir).toBe("/repo/.troupe/logs");
    expect(layout.configFile).toBe("/repo/.troupe/config.json");
    expect(layout.worktreePath("a")).toBe("/repo/.troupe/worktrees/a");
    expect(layout.branchName("a")).toBe("troupe/a");
    expect(layout.ptySocketPath("id1")).toBe("/repo/.troupe/run/pty/id1.sock");
    expect(layout.exitStatusPath("id1")).toBe("/repo/.troupe/run/pty/id1.exit.json");
    expect(layout.transcriptPath("a", "id1")).toBe("/repo/.troupe/logs/a/id1.log");
    expect(layout.hostLogPath("a")).toBe("/repo/.troupe/logs/a/pty-host.log");
    expect(layout.daemonSocket).toBe("/repo/.troupe/run/daemon.sock");
    expect(daemonPaths("/repo")).toEqual({
      troupeDir: "/repo/.troupe",
      runDir: "/repo/.troupe/run",
      logsDir: "/repo/.troupe/logs",
      socket: "/repo/.troupe/run/daemon.sock",
      socketRecord: "/repo/.troupe/run/daemon.sock.path",
      logFile: "/repo/.troupe/logs/daemon.log",
    });
  });

  it("moves sockets whose path is too long to a short directory keyed by the workspace", () => {
    const root = `/${"d".repeat(SOCKET_PATH_LIMIT)}`;
    const layout = workspaceLayout(root);
    expect(layout.daemonSocket).toBe(join(shortSocketDir(root), "daemon.sock"));
    expect(layout.ptySocketPath("id1")).toBe(join(shortSocketDir(root), "id1.sock"));
    expect(Buffer.byteLength(layout.ptySocketPath("01JABCDEFGHJKMNPQRSTVWXYZ0"))).toBeLessThanOrEqual(107);
    expect(shortSocketDir(root)).not.toBe(shortSocketDir(`${root}x`));
  });

  it("treats an empty or relative XDG_RUNTIME_DIR as unset", () => {
    expect(runtimeDir({ XDG_RUNTIME_DIR: "/run/user/1000" })).toBe("/run/user/1000");
    expect(runtimeDir({ XDG_RUNTIME_DIR: "" })).toBe(tmpdir());
    expect(runtimeDir({ XDG_RUNTIME_DIR: "relative/dir" })).toBe(tmpdir());
    expect(runtimeDir({})).toBe(tmpdir());
    expect(isAbsolute(shortSocketDir("/repo", { XDG_RUNTIME_DIR: "" }))).toBe(true);
  });
});

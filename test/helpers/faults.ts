import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const RUNNER = fileURLToPath(new URL("../fixtures/fault-runner.ts", import.meta.url));

/**
 * Runs one supervisor operation on builder "b" of `repo` in a child process
 * with `TROUPE_FAULTS` armed, so that it dies (or fails) at a fault point.
 * Resolves with how the child ended, everything it printed, and the ids of
 * the messages it had acknowledged.
 */
export function runWithFault(repo: string, op: string, faults: string): Promise<{ code: number | null; signal: string | null; out: string; acked: string[] }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", RUNNER, repo, op, "b"], { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, TROUPE_FAULTS: faults } });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.once("exit", (code, signal) => resolve({ code, signal, out, acked: [...out.matchAll(/^ACK (\S+)$/gm)].map((m) => m[1]!) }));
  });
}

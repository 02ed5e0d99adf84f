import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, expect, it } from "vitest";
import { Harness } from "../helpers/supervisor.js";
import { makeRepo, waitFor } from "../helpers/workspace.js";

const SENDER = fileURLToPath(new URL("../fixtures/mail-sender.ts", import.meta.url));

let h: Harness | undefined;
afterEach(async () => {
  await h?.dispose();
  h = undefined;
});

it("every message acknowledged before a kill -9 of the owner is there after restart", async () => {
  const repo = makeRepo();
  const acked: string[] = [];
  for (let round = 0; round < 3; round++) {
    const child = spawn(process.execPath, ["--import", "tsx", SENDER, repo], { stdio: ["ignore", "pipe", "inherit"] });
    let buffer = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buffer += chunk;
      const lines = buffer.split("\n");
      buffer = lines.pop()!;
      for (const line of lines) if (line.startsWith("ACK ")) acked.push(line.slice(4));
    });
    const target = acked.length + 50 + Math.floor(Math.random() * 200);
    try {
      await waitFor(() => acked.length >= target, `${target} acknowledgements`, 60_000);
    } finally {
      child.kill("SIGKILL");
      await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve(null) : child.once("exit", resolve)));
    }
  }
  h = await Harness.start(undefined, repo);
  const stored = new Set((await h.supervisor.mail()).map((m) => m.id));
  const missing = acked.filter((id) => !stored.has(id));
  expect(missing).toEqual([]);
  expect(acked.length).toBeGreaterThan(150);
});

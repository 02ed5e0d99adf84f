/**
 * Mail (issue 5): end-to-end acknowledged messages/s (send → routed → durable
 * → in the inbox) with 1 and 64 concurrent senders, beside the storage
 * engine's own durable-write rate (one mail row per write) in the same run,
 * on the same disk. Budget: ≥ 0.7× the storage rate at 64 senders.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nanoid } from "nanoid";
import { createSupervisor } from "../src/index.js";
import { openStore } from "../src/storage/index.js";
import { makeBenchRepo } from "./common.js";

const SECONDS = Number(process.env.TROUPE_BENCH_SECONDS ?? 2);

export async function run(): Promise<void> {
  console.log("\n## Mail (issue 5)");
  for (const senders of [1, 64]) {
    const storage = await storageRate(senders);
    const mail = await mailRate(senders);
    const ratio = mail / storage;
    const budget = senders === 64 ? `budget ≥ 0.7×  ${ratio >= 0.7 ? "OK" : "UNDER"}` : "—";
    console.log(`acked messages/s, ${String(senders).padStart(2)} sender(s): ${mail.toFixed(0)}   storage durable writes/s ${storage.toFixed(0)}   ratio ${ratio.toFixed(2)}×   ${budget}`);
  }
}

async function loop(senders: number, once: (i: number) => Promise<unknown>): Promise<number> {
  let count = 0;
  const deadline = performance.now() + SECONDS * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: senders }, async (_, k) => {
      for (let i = 0; performance.now() < deadline; i++) {
        await once(k * 1_000_000 + i);
        count++;
      }
    }),
  );
  return count / ((performance.now() - started) / 1000);
}

async function storageRate(senders: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "troupe-bench-mailstore-"));
  const store = await openStore({ dir });
  try {
    return await loop(senders, (i) =>
      store.write((tx) =>
        tx.insertMail({ id: nanoid(), from: "operator", fromId: null, to: "operator", toId: null, requestedTo: null, type: "status", subject: null, body: `message ${i}`, priority: "normal", threadId: nanoid(), payload: null, createdAt: Date.now(), deliveredAt: null, readAt: null }),
      ),
    );
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function mailRate(senders: number): Promise<number> {
  const repo = makeBenchRepo("troupe-bench-mail-");
  const supervisor = await createSupervisor({ workspace: repo });
  try {
    return await loop(senders, (i) => supervisor.send({ to: "operator", body: `message ${i}` }));
  } finally {
    await supervisor.close();
    rmSync(repo, { recursive: true, force: true });
  }
}

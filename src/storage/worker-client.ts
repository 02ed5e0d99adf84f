import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import type { CompactRequest, CompactResponse } from "./snapshot-worker.js";

type Result = Extract<CompactResponse, { ok: true }>;

/**
 * One snapshot worker per process, shared by every store, started on first
 * use. It holds the process open only while a request is pending.
 */
class SnapshotWorkerClient {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly calls = new Map<number, { resolve: (r: Result) => void; reject: (e: Error) => void }>();

  compact(dir: string, seq: number): Promise<Result> {
    const worker = this.ensure();
    const id = this.nextId++;
    return new Promise<Result>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      worker.ref();
      worker.postMessage({ id, dir, seq } satisfies CompactRequest);
    });
  }

  private ensure(): Worker {
    if (this.worker) return this.worker;
    const worker = startWorker();
    worker.on("message", (response: CompactResponse) => {
      const call = this.calls.get(response.id);
      if (!call) return;
      this.calls.delete(response.id);
      if (this.calls.size === 0) worker.unref();
      if (response.ok) call.resolve(response);
      else call.reject(Object.assign(new Error(`snapshot worker: ${response.message}`), { code: response.code }));
    });
    const fail = (error: Error): void => {
      if (this.worker === worker) this.worker = null;
      const calls = [...this.calls.values()];
      this.calls.clear();
      for (const call of calls) call.reject(error);
    };
    worker.on("error", fail);
    worker.on("exit", (code) => fail(new Error(`snapshot worker exited with code ${code}`)));
    worker.unref();
    this.worker = worker;
    return worker;
  }
}

/**
 * From the built package the worker is plain JS. Run from the TypeScript
 * sources (tests, `tsx`), a worker gets no loader from its parent, so it
 * loads the .ts entry through tsx's ESM API (a dev dependency; its CJS
 * build cannot register hooks from a worker) itself.
 */
function startWorker(): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./snapshot-worker.js", here));
  const tsx = pathToFileURL(join(dirname(createRequire(here).resolve("tsx/package.json")), "dist/esm/api/index.mjs")).href;
  const entry = new URL("./snapshot-worker.ts", here).href;
  const code = `import(${JSON.stringify(tsx)}).then((m) => m.tsImport(${JSON.stringify(entry)}, ${JSON.stringify(here)}));`;
  return new Worker(code, { eval: true });
}

let shared: SnapshotWorkerClient | null = null;

export function snapshotWorker(): SnapshotWorkerClient {
  shared ??= new SnapshotWorkerClient();
  return shared;
}

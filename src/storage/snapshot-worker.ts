/**
 * Entry of the snapshot worker thread: builds snapshots from the files
 * (see compact.ts) one request at a time, so the owner's event loop never
 * carries the export of a large database.
 */
import { parentPort } from "node:worker_threads";
import { compactToSnapshot } from "./compact.js";

export interface CompactRequest {
  id: number;
  dir: string;
  seq: number;
}

export type CompactResponse =
  | { id: number; ok: true; seq: number; bytes: number; replayed: number; ms: number }
  | { id: number; ok: false; message: string; code: string | null };

const port = parentPort;
if (port) {
  let queue: Promise<void> = Promise.resolve();
  port.on("message", (request: CompactRequest) => {
    queue = queue.then(async () => {
      let response: CompactResponse;
      try {
        response = { id: request.id, ok: true, ...(await compactToSnapshot(request.dir, request.seq)) };
      } catch (error) {
        const code = (error as { code?: unknown }).code;
        response = { id: request.id, ok: false, message: (error as Error)?.message ?? String(error), code: typeof code === "string" ? code : null };
      }
      port.postMessage(response);
    });
  });
}

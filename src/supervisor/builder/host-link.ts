/**
 * The connection to a builder's pty host, as a resource in the shape of an
 * XState callback actor: given the client and `sendBack`, it reports what the
 * host says as events and returns its own cleanup. After the cleanup nothing
 * of that connection reaches the builder again, so a late event of an old
 * host can never be mistaken for the current one's.
 */
import type { ExitStatus, PtyHostClient } from "../../actors/index.js";

export type HostEvent =
  | { type: "output"; data: string }
  | { type: "exit"; status: ExitStatus }
  /** The connection closed without the host reporting an exit. */
  | { type: "lost" };

export function linkHost(client: PtyHostClient, sendBack: (event: HostEvent) => void): () => void {
  let linked = true;
  const onOutput = (data: string) => linked && sendBack({ type: "output", data });
  const onExit = (status: ExitStatus) => linked && sendBack({ type: "exit", status });
  const onClose = () => linked && sendBack({ type: "lost" });
  client.on("output", onOutput).on("exit", onExit).on("close", onClose);
  return () => {
    linked = false;
    client.off("output", onOutput).off("exit", onExit).off("close", onClose);
  };
}

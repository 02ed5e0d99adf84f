import type { Logger } from "pino";
import type { BuilderEvent } from "../machines/builder.js";
import type { LifeState, Store } from "../storage/types.js";
import type { BuilderRuntime } from "./builder/index.js";
import type { Strategy } from "./types.js";

/**
 * OTP strategies (DESIGN §4): when a builder is about to be restarted after
 * an exit, `one_for_all` restarts its siblings too and `rest_for_one` those
 * spawned after it; `one_for_one` touches nobody else. A temporary sibling is
 * stopped, never restarted. The node's strategy is its owner's (the parent
 * builder's `strategy`), or the root's for top-level builders.
 */
export function applyStrategy(input: { runtime: BuilderRuntime; from: LifeState; event: BuilderEvent; siblings: BuilderRuntime[]; rootStrategy: Strategy; store: Store; logger: Logger }): void {
  const { runtime, from, event } = input;
  if (event.type !== "EXITED" || from !== "working" || runtime.life.state !== "booting") return;
  const node = runtime.row.supervisorNode;
  const strategy = node === "root" ? input.rootStrategy : (input.store.getActor(node)?.spec.strategy ?? "one_for_one");
  if (strategy === "one_for_one") return;
  const siblings = input.siblings.filter((other) => other !== runtime && other.row.supervisorNode === node).sort((a, b) => a.row.createdAt - b.row.createdAt);
  const affected = strategy === "one_for_all" ? siblings : siblings.filter((other) => other.row.createdAt > runtime.row.createdAt);
  for (const sibling of affected) {
    sibling.restartForSibling(runtime.name).catch((error) => sibling.log.error({ err: error }, `${strategy} restart failed`));
  }
}

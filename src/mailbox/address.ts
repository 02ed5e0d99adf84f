/**
 * Addresses (DESIGN §8): a builder name, `operator`, `parent`, `@children`,
 * `@all`, `@role:<role>`. An unknown or destroyed recipient is an error to the
 * sender, never a silent fallback; the one reroute there is (`parent` of a
 * builder whose parent is gone) is recorded on the message.
 */
import { TroupeError } from "../shared/errors.js";
import { NAME_PATTERN } from "../shared/vocabulary.js";
import type { ActorInfo, Directory } from "./types.js";

/** DESIGN §11: names (and roles) match the one NAME_PATTERN; re-exported for the mailbox's callers. */
export { NAME_PATTERN };

export type Address =
  | { kind: "name"; name: string }
  | { kind: "operator" }
  | { kind: "parent" }
  | { kind: "children" }
  | { kind: "all" }
  | { kind: "role"; role: string };

const HOW_TO_SEE =
  "Run `troupe status` to see the builders; other addresses are operator, parent, @children, @all and @role:<role>.";

export function parseAddress(to: unknown): Address {
  if (typeof to !== "string" || to.length === 0) {
    throw new TroupeError("INVALID_ARGUMENT", `A message needs a recipient: a builder name, operator, parent, @children, @all or @role:<role>.`, { to: typeof to === "string" ? to : null });
  }
  if (to === "operator") return { kind: "operator" };
  if (to === "parent") return { kind: "parent" };
  if (to === "@children") return { kind: "children" };
  if (to === "@all") return { kind: "all" };
  if (to.startsWith("@role:")) {
    const role = to.slice("@role:".length);
    if (!NAME_PATTERN.test(role)) {
      throw new TroupeError("INVALID_ARGUMENT", `Invalid address ${show(to)}: a role is 1 to 63 characters of a-z, 0-9, '.', '_' or '-' (for example @role:reviewer).`, { to: clip(to) });
    }
    return { kind: "role", role };
  }
  if (to.startsWith("@")) {
    throw new TroupeError("UNKNOWN_RECIPIENT", `Unknown group address ${show(to)}: the groups are @children, @all and @role:<role>.`, { to: clip(to) });
  }
  if (!NAME_PATTERN.test(to)) {
    throw new TroupeError("INVALID_ARGUMENT", `Invalid address ${show(to)}: a builder name is 1 to 63 characters of a-z, 0-9, '.', '_' or '-'. ${HOW_TO_SEE}`, { to: clip(to) });
  }
  return { kind: "name", name: to };
}

/** One resolved recipient: a builder incarnation, or the operator (`toId` null). */
export interface Recipient {
  to: string;
  toId: string | null;
}

export interface Resolution {
  recipients: Recipient[];
  /** The address as written, when it differs from the resolved one (`parent`, groups). */
  requestedTo: string | null;
  /** Set when `parent` could not reach the direct parent and went to the nearest live ancestor (or the operator). */
  rerouted: Rerouted | null;
}

export interface Rerouted {
  requested: "parent";
  /** The direct parent that could not receive it. */
  intended: string | null;
  intendedId: string;
  reason: "destroyed" | "destroying" | "gone";
  /** Where it went instead. */
  to: string;
}

export function isLive(info: ActorInfo): boolean {
  return info.state !== "destroying" && info.state !== "destroyed";
}

/**
 * Resolves `address` for `sender` (the effective sender: the builder the
 * message is from, or null for the operator). Throws when nobody can receive it.
 */
export function resolveAddress(to: string, address: Address, sender: ActorInfo | null, directory: Directory): Resolution {
  switch (address.kind) {
    case "operator":
      return { recipients: [{ to: "operator", toId: null }], requestedTo: null, rerouted: null };
    case "name": {
      const info = directory.byName(address.name);
      if (!info) {
        throw new TroupeError("UNKNOWN_RECIPIENT", `No builder named "${address.name}". ${HOW_TO_SEE}`, { to: address.name });
      }
      if (!isLive(info)) {
        const what = info.state === "destroying" ? "is being destroyed" : "was destroyed";
        throw new TroupeError("DESTROYED", `Builder "${info.name}" ${what}; it cannot receive mail. ${HOW_TO_SEE}`, { to: info.name, id: info.id, state: info.state });
      }
      return { recipients: [{ to: info.name, toId: info.id }], requestedTo: null, rerouted: null };
    }
    case "parent":
      return resolveParent(sender, directory);
    case "children": {
      const parentId = sender?.id ?? null;
      const group = directory.live().filter((a) => a.parentId === parentId);
      return groupOf(to, group, sender, sender ? `Builder "${sender.name}" has no live children.` : "There are no live top-level builders.");
    }
    case "all":
      return groupOf(to, directory.live(), sender, "There are no live builders to receive @all.");
    case "role":
      return groupOf(to, directory.live().filter((a) => a.role === address.role), sender, `No live builder has the role "${address.role}".`);
  }
}

function groupOf(to: string, members: ActorInfo[], sender: ActorInfo | null, emptyMessage: string): Resolution {
  const seen = new Set<string>();
  const recipients: Recipient[] = [];
  for (const member of members) {
    if (!isLive(member)) continue;
    if (sender && member.id === sender.id) continue;
    if (seen.has(member.id)) continue;
    seen.add(member.id);
    recipients.push({ to: member.name, toId: member.id });
  }
  if (recipients.length === 0) {
    const extra = sender && members.some((m) => m.id === sender.id) ? " (the sender itself is left out)" : "";
    throw new TroupeError("UNKNOWN_RECIPIENT", `${emptyMessage}${extra} ${HOW_TO_SEE}`, { to });
  }
  return { recipients, requestedTo: to, rerouted: null };
}

function resolveParent(sender: ActorInfo | null, directory: Directory): Resolution {
  if (!sender) {
    throw new TroupeError("INVALID_ARGUMENT", `The operator has no parent: address a builder by name, or @children, @all, @role:<role>.`, { to: "parent" });
  }
  if (sender.parentId === null) {
    // A top-level builder's supervisor owner is the operator (DESIGN §4).
    return { recipients: [{ to: "operator", toId: null }], requestedTo: "parent", rerouted: null };
  }
  const direct = directory.byId(sender.parentId);
  if (direct && isLive(direct)) {
    return { recipients: [{ to: direct.name, toId: direct.id }], requestedTo: "parent", rerouted: null };
  }
  // The parent is destroyed or gone: the nearest live ancestor, else the operator.
  let target: Recipient = { to: "operator", toId: null };
  const visited = new Set<string>([sender.id, sender.parentId]);
  let next = direct?.parentId ?? null;
  while (next !== null && !visited.has(next)) {
    visited.add(next);
    const ancestor = directory.byId(next);
    if (!ancestor) break;
    if (isLive(ancestor)) {
      target = { to: ancestor.name, toId: ancestor.id };
      break;
    }
    next = ancestor.parentId;
  }
  const reason: Rerouted["reason"] = !direct ? "gone" : direct.state === "destroying" ? "destroying" : "destroyed";
  return {
    recipients: [target],
    requestedTo: "parent",
    rerouted: { requested: "parent", intended: direct?.name ?? null, intendedId: sender.parentId, reason, to: target.to },
  };
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}

function show(s: string): string {
  return JSON.stringify(clip(s));
}

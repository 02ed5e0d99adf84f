/**
 * The builder statechart as plain JSON (states, transitions, guards and
 * actions by name): what the visualizer and `troupe chart` draw.
 */
import type { AnyTransitionDefinition } from "xstate";
import { BUILDER_MACHINE_VERSION, builderMachine, type BuilderEventType } from "./builder.js";

export interface BuilderStateDefinition {
  /** Dotted path, e.g. "booting.provisioning". */
  id: string;
  parent: string | null;
  type: "atomic" | "compound" | "final";
  /** Initial child of a compound state. */
  initial: string | null;
  description: string | null;
}

export interface BuilderTransitionDefinition {
  /** The state that declares the transition (it applies in all its substates). */
  source: string;
  /** null for an eventless (`always`) transition. */
  event: BuilderEventType | null;
  /** Empty: the state stays, only context changes. */
  targets: string[];
  guard: { type: string; params?: unknown } | null;
  actions: Array<{ type: string; params?: unknown }>;
}

export interface BuilderMachineDefinition {
  id: string;
  version: number;
  initial: string;
  states: BuilderStateDefinition[];
  transitions: BuilderTransitionDefinition[];
}

type AnyNode = (typeof builderMachine)["root"];

/** States and transitions of `builderMachine`, in document order; plain JSON. */
export function builderMachineDefinition(): BuilderMachineDefinition {
  const states: BuilderStateDefinition[] = [];
  const transitions: BuilderTransitionDefinition[] = [];
  const visit = (node: AnyNode) => {
    const source = node.path.join(".");
    const kind = node.type === "compound" || node.type === "final" ? node.type : "atomic";
    if (node.path.length > 0) {
      states.push({
        id: source,
        parent: node.path.length > 1 ? node.path.slice(0, -1).join(".") : null,
        type: kind,
        initial: node.type === "compound" ? (node.initial.target[0]?.key ?? null) : null,
        description: node.description ?? null,
      });
    }
    const describe = (event: BuilderEventType | null, list: readonly AnyTransitionDefinition[]) => {
      for (const transition of list) {
        transitions.push({
          source,
          event,
          targets: (transition.target ?? []).map((target) => target.path.join(".")),
          guard: describeGuard(transition.guard),
          actions: transition.actions.map(describeAction),
        });
      }
    };
    describe(null, node.always ?? []);
    for (const [event, list] of node.transitions) describe(event as BuilderEventType, list);
    for (const child of Object.values(node.states)) visit(child as AnyNode);
  };
  visit(builderMachine.root);
  // Follow initial children down to the atomic state a new builder starts in.
  let start: AnyNode = builderMachine.root;
  while (start.type === "compound" && start.initial.target[0]) start = start.initial.target[0] as AnyNode;
  return { id: builderMachine.id, version: BUILDER_MACHINE_VERSION, initial: start.path.join("."), states, transitions };
}

function describeGuard(guard: unknown): { type: string; params?: unknown } | null {
  if (guard === undefined || guard === null) return null;
  return describeAction(guard);
}

function describeAction(action: unknown): { type: string; params?: unknown } {
  if (typeof action === "string") return { type: action };
  if (typeof action === "function") return { type: action.name || "(inline)" };
  if (typeof action === "object" && action !== null && "type" in action) {
    const { type, params } = action as { type: unknown; params?: unknown };
    // Function params are computed per event and have no JSON form.
    return typeof params === "function" || params === undefined ? { type: String(type) } : { type: String(type), params };
  }
  return { type: "(unknown)" };
}

/**
 * The daemon's methods: each checks its params (types, sizes; unknown fields
 * are dropped, never passed on) and calls the workspace's TroupeApi (the
 * Supervisor). The table is typed by DaemonMethods, so it has every method of
 * the contract and each one's params and result are the contract's.
 */
import { builderMachineDefinition } from "../machines/definition.js";
import type { SpawnOptions, SupervisorEvent, TroupeApi } from "../shared/contract.js";
import { TroupeError } from "../shared/errors.js";
import { textTranscriptPath } from "../shared/layout.js";
import { parseSpawnRequest } from "../shared/spawn-request.js";
import { EVENT_TYPES, PRIORITIES, builderNameProblem } from "../shared/vocabulary.js";
import { CHART_MACHINES, EVENT_NOTIFICATION, PROTOCOL_VERSION, protocolMismatchMessage, type DaemonStatusResult, type EventNotification, type HelloResult } from "./protocol.js";
import type { MethodTable } from "./server.js";
import { bool, choiceArray, integer, invalid, nonNegativeInteger, oneOf, optional, params, str, strArray, type Check } from "./params.js";

export interface DaemonContext {
  supervisor: TroupeApi;
  hello: () => HelloResult;
  status: () => Promise<DaemonStatusResult>;
  stop: () => void;
  transcriptPath: (name: string, id: string) => string;
  ptySocketPath: (id: string) => string;
  exists: (path: string) => boolean;
}

const BODY_LIMIT = 1024 * 1024;

/** A builder name, by the one rule of every door (DESIGN §11). */
const name: Check<string> = (value, field) => {
  const problem = builderNameProblem(value);
  if (problem) throw new TroupeError("INVALID_NAME", `${field}: ${problem}`, { field, value: typeof value === "string" ? value.slice(0, 80) : typeof value });
  return value as string;
};

/** An address: a name, "operator", "parent", "@children", "@all" or "@role:<role>". */
const address = str(128, { nonEmpty: true });
const messageId = str(128, { nonEmpty: true });

const auth: Check<{ token?: string }> = (value, field) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalid(`${field} must be an object { token }`, field);
  const token = (value as Record<string, unknown>).token;
  if (token === undefined || token === null) return {};
  if (typeof token !== "string" || token.length > 1024) throw invalid(`${field}.token must be a string`, field);
  return { token };
};

/** Any JSON value (it came out of JSON.parse, so it is one). */
const json: Check<unknown> = (value) => value;

/** What a sent message and a reply both carry. */
const messageFields = {
  body: str(BODY_LIMIT),
  type: optional(str(64, { nonEmpty: true })),
  subject: optional(str(1024)),
  priority: optional(oneOf(PRIORITIES)),
  payload: optional(json),
};

/**
 * Every field of SpawnOptions (the compiler insists on each): the wire passes
 * on all a library caller can give, and drops the rest (DESIGN §9).
 */
const SPAWN_FIELDS: Record<keyof SpawnOptions, true> = {
  name: true, cmd: true, agent: true, task: true, parent: true, role: true, restart: true,
  pty: true, base: true, env: true, replace: true, strategy: true, policy: true,
};

/** Spawn params are checked by the library's own door, so the wire refuses exactly what `spawn()` refuses. */
function spawnOptions(raw: Record<string, unknown>): SpawnOptions {
  const known: Record<string, unknown> = {};
  for (const field of Object.keys(SPAWN_FIELDS)) if (raw[field] !== undefined) known[field] = raw[field];
  const options = known as unknown as SpawnOptions; // what parseSpawnRequest checks next
  parseSpawnRequest(options);
  return options;
}

/** Whether an event is about one of `names` (mail: its sender or recipient). */
function concerns(event: SupervisorEvent, names: ReadonlySet<string>): boolean {
  if (event.type === "mail") return names.has(event.message.from) || names.has(event.message.to);
  return names.has(event.name);
}

/** A builder that has a terminal an operator can attach to, or why not. */
function attachable(st: Awaited<ReturnType<TroupeApi["get"]>>): void {
  if (st.state === "destroyed" || st.state === "destroying") {
    throw new TroupeError("DESTROYED", `Builder "${st.name}" is ${st.state}: there is no terminal to attach to.`, { name: st.name });
  }
  if (st.state === "completed" || st.state === "zombie") {
    throw new TroupeError("HOST_UNREACHABLE", `Builder "${st.name}" is ${st.state}: no agent runs in its terminal; \`troupe restart ${st.name}\` starts it again, \`troupe logs ${st.name}\` shows what it printed.`, { name: st.name, state: st.state });
  }
  if (st.pty === false) {
    throw new TroupeError("PTY_UNAVAILABLE", `Builder "${st.name}" runs without a terminal (pipes fallback${st.ptyError ? `: ${st.ptyError}` : ""}); use \`troupe logs ${st.name} --follow\` to watch it.`, { name: st.name });
  }
}

export function daemonMethods(ctx: DaemonContext): MethodTable {
  const sup = ctx.supervisor;
  return {
    hello: {
      params: params({ protocol: integer, client: optional(str(256)) }),
      run: (p, connection) => {
        if (p.protocol !== PROTOCOL_VERSION) {
          throw new TroupeError("PROTOCOL_MISMATCH", protocolMismatchMessage(PROTOCOL_VERSION, p.protocol), { daemon: PROTOCOL_VERSION, client: p.protocol });
        }
        connection.helloed = true;
        return ctx.hello();
      },
    },
    "daemon.status": { params: params({}), run: () => ctx.status() },
    "daemon.stop": {
      params: params({}),
      run: () => {
        setImmediate(() => ctx.stop());
        return { stopping: true, pid: process.pid };
      },
    },
    status: { params: params({ all: optional(bool) }), run: (p) => sup.status({ all: p.all === true }) },
    get: { params: params({ name }), run: (p) => sup.get(p.name) },
    history: { params: params({ name }), run: (p) => sup.history(p.name) },
    screen: { params: params({ name }), run: (p) => sup.screen(p.name) },
    spawn: { params: spawnOptions, run: (p) => sup.spawn(p) },
    stop: { params: params({ name }), run: (p) => sup.stop(p.name) },
    restart: { params: params({ name }), run: (p) => sup.restart(p.name) },
    destroy: { params: params({ name, force: optional(bool) }), run: (p) => sup.destroy(p.name, { force: p.force === true }) },
    send: {
      params: params({ to: address, ...messageFields, from: optional(address), threadId: optional(str(128, { nonEmpty: true })), auth: optional(auth) }),
      run: ({ auth: caller, ...request }) => sup.send(request, caller),
    },
    mail: {
      params: params({ name: optional(address), unread: optional(bool), auth: optional(auth) }),
      run: ({ auth: caller, ...query }) => sup.mail(query, caller),
    },
    read: {
      params: params({ id: messageId, auth: optional(auth) }),
      run: (p) => sup.read(p.id, p.auth),
    },
    reply: {
      params: params({ id: messageId, ...messageFields, auth: optional(auth) }),
      run: ({ id, auth: caller, ...request }) => sup.reply(id, request, caller),
    },
    doctor: { params: params({ fix: optional(bool) }), run: (p) => sup.doctor({ fix: p.fix === true }) },
    adopt: { params: params({}), run: () => sup.adopt() },
    gc: { params: params({ olderThanMs: optional(nonNegativeInteger("milliseconds")) }), run: (p) => sup.gc(p) },
    "logs.path": {
      params: params({ name }),
      run: async (p) => {
        const st = await sup.get(p.name);
        const path = ctx.transcriptPath(st.name, st.id);
        const textPath = textTranscriptPath(path);
        return { name: st.name, id: st.id, state: st.state, path, exists: ctx.exists(path), textPath, textExists: ctx.exists(textPath) };
      },
    },
    "attach.info": {
      params: params({ name }),
      run: async (p) => {
        const st = await sup.get(p.name);
        attachable(st);
        return { name: st.name, id: st.id, state: st.state, socket: ctx.ptySocketPath(st.id), pty: st.pty };
      },
    },
    "chart.definition": {
      params: params({ machine: optional(oneOf(CHART_MACHINES)) }),
      // Only the builder machine so far; `machine` picks among CHART_MACHINES.
      run: () => builderMachineDefinition(),
    },
    subscribe: {
      params: params({ names: optional(strArray(1024, 64)), types: optional(choiceArray(EVENT_TYPES)) }),
      run: (p, connection) => {
        const names = p.names ? new Set(p.names) : null;
        const types = p.types ? new Set(p.types) : null;
        const unsubscribe = sup.subscribe((event) => {
          if (types && !types.has(event.type)) return;
          if (names && !concerns(event, names)) return;
          const notification: EventNotification = { jsonrpc: "2.0", method: EVENT_NOTIFICATION, params: { event } };
          connection.send(notification);
        });
        connection.onClose(unsubscribe);
        return { subscribed: true };
      },
    },
  };
}

/**
 * The daemon's methods: each checks its params (types, sizes; unknown fields
 * are dropped, never passed on) and calls the Supervisor.
 */
import { builderMachineDefinition } from "../machines/definition.js";
import { TroupeError } from "../shared/errors.js";
import type { Supervisor } from "../supervisor/index.js";
import type { BuilderStatus, SupervisorEvent } from "../supervisor/types.js";
import { CHART_MACHINES, EVENT_NOTIFICATION, EVENT_TYPES, NAME_PATTERN, PROTOCOL_VERSION, RpcCode, protocolMismatchMessage, type AttachInfo, type ChartDefinition, type DaemonStatusResult, type HelloResult, type LogsInfo } from "./protocol.js";
import { RpcFailure, invalidParams, type Connection, type MethodSpec } from "./server.js";

export interface DaemonContext {
  supervisor: Supervisor;
  hello: () => HelloResult;
  status: () => Promise<DaemonStatusResult>;
  stop: () => void;
  transcriptPath: (name: string, id: string) => string;
  ptySocketPath: (id: string) => string;
  exists: (path: string) => boolean;
}

// ---- param checks ------------------------------------------------------------

type Check = (value: unknown, field: string) => unknown;

const KIB = 1024;
const MIB = 1024 * KIB;

function optional(check: Check): Check & { optional: true } {
  const wrapped = ((value: unknown, field: string) => (value === undefined || value === null ? undefined : check(value, field))) as Check & { optional: true };
  wrapped.optional = true;
  return wrapped;
}

function str(maxBytes: number, opts: { nonEmpty?: boolean } = {}): Check {
  return (value, field) => {
    if (typeof value !== "string") throw invalidParams(`${field} must be a string`, { field });
    if (opts.nonEmpty && value.length === 0) throw invalidParams(`${field} must not be empty`, { field });
    if (Buffer.byteLength(value) > maxBytes) throw invalidParams(`${field} is longer than ${maxBytes} bytes`, { field, limit: maxBytes });
    return value;
  };
}

const name: Check = (value, field) => {
  if (typeof value !== "string" || !NAME_PATTERN.test(value)) {
    throw new RpcFailure(RpcCode.INVALID_PARAMS, {
      code: "INVALID_NAME",
      message: `${field} must be a name of 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit`,
      details: { field, value: typeof value === "string" ? value.slice(0, 80) : typeof value },
    });
  }
  return value;
};

const bool: Check = (value, field) => {
  if (typeof value !== "boolean") throw invalidParams(`${field} must be true or false`, { field });
  return value;
};

function oneOf(values: readonly string[]): Check {
  return (value, field) => {
    if (typeof value !== "string" || !values.includes(value)) throw invalidParams(`${field} must be one of ${values.join(", ")}`, { field });
    return value;
  };
}

function strArray(maxItems: number, maxItemBytes: number): Check {
  return (value, field) => {
    if (!Array.isArray(value) || value.length === 0 || value.length > maxItems) throw invalidParams(`${field} must be an array of 1 to ${maxItems} strings`, { field });
    for (const item of value) {
      if (typeof item !== "string" || Buffer.byteLength(item) > maxItemBytes) throw invalidParams(`every ${field} entry must be a string of at most ${maxItemBytes} bytes`, { field });
    }
    return [...value];
  };
}

function choiceArray(values: readonly string[]): Check {
  return (value, field) => {
    if (!Array.isArray(value) || value.length === 0 || value.some((item) => typeof item !== "string" || !values.includes(item))) {
      throw invalidParams(`${field} must be a non-empty array of ${values.join(", ")}`, { field });
    }
    return [...new Set(value as string[])];
  };
}

function stringRecord(maxEntries: number): Check {
  return (value, field) => {
    if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidParams(`${field} must be an object of NAME → string`, { field });
    const entries = Object.entries(value);
    if (entries.length > maxEntries) throw invalidParams(`${field} has more than ${maxEntries} entries`, { field });
    const out: Record<string, string> = {};
    for (const [key, item] of entries) {
      if (key.length > 256 || typeof item !== "string" || Buffer.byteLength(item) > 64 * KIB) throw invalidParams(`${field}.${key.slice(0, 64)} must be a string of at most 64 KiB`, { field });
      out[key] = item;
    }
    return out;
  };
}

/** Any JSON value (it came out of JSON.parse, so it is one). */
const json: Check = (value) => value;

const auth: Check = (value, field) => {
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw invalidParams(`${field} must be an object { token }`, { field });
  const token = (value as Record<string, unknown>).token;
  if (token === undefined || token === null) return {};
  if (typeof token !== "string" || token.length > 1024) throw invalidParams(`${field}.token must be a string`, { field });
  return { token };
};

type Shape = Record<string, Check>;

function params(shape: Shape): MethodSpec["params"] {
  return (raw) => {
    const out: Record<string, unknown> = {};
    for (const [field, check] of Object.entries(shape)) {
      const value = raw[field];
      if (value === undefined && !(check as { optional?: boolean }).optional) throw invalidParams(`${field} is required`, { field });
      const checked = check(value, field);
      if (checked !== undefined) out[field] = checked;
    }
    return out;
  };
}

// ---- methods -----------------------------------------------------------------

const RESTART_TYPES = ["permanent", "transient", "temporary"] as const;
const PTY_MODES = ["auto", "on", "off"] as const;
const STRATEGIES = ["one_for_one", "one_for_all", "rest_for_one"] as const;
const PRIORITIES = ["low", "normal", "high", "urgent"] as const;
const BODY_LIMIT = 1 * MIB;

/** An address: a name, "operator", "parent", "@children", "@all" or "@role:<role>". */
const address = str(128, { nonEmpty: true });

/** Calls an optional Supervisor method (mail, doctor, …) or says this version lacks it. */
function optionalMethod(supervisor: Supervisor, method: string): (...args: unknown[]) => Promise<unknown> {
  const fn = (supervisor as unknown as Record<string, unknown>)[method];
  if (typeof fn !== "function") {
    throw new RpcFailure(RpcCode.METHOD_NOT_FOUND, { code: "NOT_AVAILABLE", message: `${method} is not available in this version of the daemon`, details: { method } });
  }
  return (...args) => Promise.resolve((fn as (...a: unknown[]) => unknown).apply(supervisor, args));
}

function authOf(p: Record<string, unknown>): { token?: string } | undefined {
  return p.auth as { token?: string } | undefined;
}

function pick(p: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys) if (p[key] !== undefined) out[key] = p[key];
  return out;
}

/** Whether an event is about one of `names` (mail: its sender or recipient). */
function concerns(event: SupervisorEvent, names: Set<string>): boolean {
  if (event.type === "mail") return names.has(event.message.from) || names.has(event.message.to);
  return names.has(event.name);
}

export function daemonMethods(ctx: DaemonContext): Map<string, MethodSpec> {
  const sup = ctx.supervisor;
  const builder = async (builderName: string): Promise<BuilderStatus> => sup.get(builderName);
  const methods: Record<string, MethodSpec> = {
    hello: {
      params: params({ protocol: (value, field) => {
        if (typeof value !== "number" || !Number.isInteger(value)) throw invalidParams(`${field} must be an integer`, { field });
        return value;
      }, client: optional(str(256)) }),
      run: (p, connection: Connection) => {
        if (p.protocol !== PROTOCOL_VERSION) {
          throw new RpcFailure(RpcCode.PROTOCOL_MISMATCH, {
            code: "PROTOCOL_MISMATCH",
            message: protocolMismatchMessage(PROTOCOL_VERSION, p.protocol as number),
            details: { daemon: PROTOCOL_VERSION, client: p.protocol },
          });
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
    get: { params: params({ name }), run: (p) => sup.get(p.name as string) },
    history: { params: params({ name }), run: (p) => sup.history(p.name as string) },
    spawn: {
      params: params({
        name,
        cmd: optional(strArray(1024, 64 * KIB)),
        agent: optional(str(128, { nonEmpty: true })),
        task: optional(str(BODY_LIMIT)),
        parent: optional(name),
        role: optional(name),
        restart: optional(oneOf(RESTART_TYPES)),
        pty: optional(oneOf(PTY_MODES)),
        base: optional(str(1024, { nonEmpty: true })),
        env: optional(stringRecord(256)),
        replace: optional(bool),
        strategy: optional(oneOf(STRATEGIES)),
      }),
      run: (p) => sup.spawn(p as never),
    },
    stop: { params: params({ name }), run: (p) => sup.stop(p.name as string) },
    restart: { params: params({ name }), run: (p) => sup.restart(p.name as string) },
    destroy: { params: params({ name, force: optional(bool) }), run: (p) => sup.destroy(p.name as string, { force: p.force === true }) },
    send: {
      params: params({
        to: address,
        body: str(BODY_LIMIT),
        type: optional(str(64, { nonEmpty: true })),
        subject: optional(str(1024)),
        priority: optional(oneOf(PRIORITIES)),
        from: optional(address),
        threadId: optional(str(128, { nonEmpty: true })),
        payload: optional(json),
        auth: optional(auth),
      }),
      run: (p) => optionalMethod(sup, "send")(pick(p, ["to", "body", "type", "subject", "priority", "from", "threadId", "payload"]), authOf(p)),
    },
    mail: {
      params: params({ name: optional(address), unread: optional(bool), auth: optional(auth) }),
      run: (p) => optionalMethod(sup, "mail")(pick(p, ["name", "unread"]), authOf(p)),
    },
    read: {
      params: params({ id: str(128, { nonEmpty: true }), auth: optional(auth) }),
      run: (p) => optionalMethod(sup, "read")(p.id, authOf(p)),
    },
    reply: {
      params: params({
        id: str(128, { nonEmpty: true }),
        body: str(BODY_LIMIT),
        type: optional(str(64, { nonEmpty: true })),
        subject: optional(str(1024)),
        priority: optional(oneOf(PRIORITIES)),
        payload: optional(json),
        auth: optional(auth),
      }),
      run: (p) => optionalMethod(sup, "reply")(p.id, pick(p, ["body", "type", "subject", "priority", "payload"]), authOf(p)),
    },
    doctor: { params: params({ fix: optional(bool) }), run: (p) => optionalMethod(sup, "doctor")({ fix: p.fix === true }) },
    adopt: { params: params({}), run: () => optionalMethod(sup, "adopt")() },
    gc: {
      params: params({ olderThanMs: optional((value, field) => {
        if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalidParams(`${field} must be a whole number of milliseconds ≥ 0`, { field });
        return value;
      }) }),
      run: (p) => optionalMethod(sup, "gc")(pick(p, ["olderThanMs"])),
    },
    "logs.path": {
      params: params({ name }),
      run: async (p): Promise<LogsInfo> => {
        const st = await builder(p.name as string);
        const path = ctx.transcriptPath(st.name, st.id);
        return { name: st.name, id: st.id, state: st.state, path, exists: ctx.exists(path) };
      },
    },
    "attach.info": {
      params: params({ name }),
      run: async (p): Promise<AttachInfo> => {
        const st = await builder(p.name as string);
        if (st.state === "destroyed" || st.state === "destroying") {
          throw new TroupeError("DESTROYED", `Builder "${st.name}" is ${st.state}: there is no terminal to attach to.`, { name: st.name });
        }
        if (st.state === "completed" || st.state === "zombie") {
          throw new TroupeError("HOST_UNREACHABLE", `Builder "${st.name}" is ${st.state}: no agent runs in its terminal; \`troupe restart ${st.name}\` starts it again, \`troupe logs ${st.name}\` shows what it printed.`, { name: st.name, state: st.state });
        }
        if (st.pty === false) {
          throw new TroupeError("PTY_UNAVAILABLE", `Builder "${st.name}" runs without a terminal (pipes fallback${st.ptyError ? `: ${st.ptyError}` : ""}); use \`troupe logs ${st.name} --follow\` to watch it.`, { name: st.name });
        }
        return { name: st.name, id: st.id, state: st.state, socket: ctx.ptySocketPath(st.id), pty: st.pty };
      },
    },
    "chart.definition": {
      params: params({ machine: optional(oneOf(CHART_MACHINES)) }),
      // Only the builder machine so far; `machine` picks among CHART_MACHINES.
      run: (): ChartDefinition => builderMachineDefinition(),
    },
    subscribe: {
      params: params({ names: optional(strArray(1024, 64)), types: optional(choiceArray(EVENT_TYPES)) }),
      run: (p, connection) => {
        const names = p.names ? new Set(p.names as string[]) : null;
        const types = p.types ? new Set(p.types as string[]) : null;
        const unsubscribe = sup.subscribe((event: SupervisorEvent) => {
          if (types && !types.has(event.type)) return;
          if (names && !concerns(event, names)) return;
          connection.send({ jsonrpc: "2.0", method: EVENT_NOTIFICATION, params: { event } });
        });
        connection.onClose(unsubscribe);
        return { subscribed: true };
      },
    },
  };
  return new Map(Object.entries(methods));
}

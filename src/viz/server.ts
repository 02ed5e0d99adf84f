/**
 * The live visualizer's HTTP server (DESIGN §9 `troupe viz`, §11): it runs in
 * the CLI process, talks to the daemon through a DaemonClient (node builtins
 * only: no XState, no sql.js) and serves one self-contained page.
 *
 * Security: bound to 127.0.0.1 only; every request must carry the random
 * token (`?token=`, compared in constant time) and a `Host` of
 * `127.0.0.1:<port>` or `localhost:<port>` (a DNS-rebinding page reaches us
 * under its own host name and gets 403). GET and HEAD only; strict CSP.
 *
 * Routes (all need the token):
 *   GET /                       the page (chart SVG inlined, script and styles inlined)
 *   GET /events                 Server-Sent Events: `state` (builders + daemon link), `transition`
 *   GET /api/builders           status { all: true }
 *   GET /api/history?name=      the builder's transitions
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { DaemonClient } from "../client/rpc.js";
import type { ChartDefinition } from "../daemon/protocol.js";
import type { BuilderStatus } from "../shared/contract.js";
import { TroupeError, isTroupeError } from "../shared/errors.js";
import { builderNameProblem } from "../shared/vocabulary.js";
import { toSvg } from "./export.js";
import { renderPage } from "./page.js";

/** What the server needs of a daemon connection. */
export type VizConnection = Pick<DaemonClient, "call" | "onEvent" | "onClose" | "close">;

export interface VizServerOptions {
  /** Opens a connection to the daemon (the first one may start it; reconnects must not). */
  connect: (attempt: "first" | "reconnect") => Promise<VizConnection>;
  /** 0 (default): a free port. */
  port?: number;
  /** Shown in the page title. */
  workspace?: string;
  /** Delay between reconnection attempts after the daemon went away (default 1000 ms). */
  reconnectMs?: number;
}

export interface VizServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

/** What the page gets on every change: the builders and whether the daemon is reachable. */
export interface VizState {
  connected: boolean;
  builders: BuilderStatus[];
  error: string | null;
}

const HEARTBEAT_MS = 15_000;

export async function startVizServer(options: VizServerOptions): Promise<VizServer> {
  const token = randomBytes(24).toString("base64url");
  const tokenBytes = Buffer.from(token);
  const reconnectMs = options.reconnectMs ?? 1000;

  // The port first: a busy one fails before any daemon is started or connected.
  // Requests cannot arrive before the URL (with its token) is printed, which is
  // after everything below is ready.
  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, "text/plain; charset=utf-8", `error: ${(error as Error).message}\n`);
      else res.destroy();
    });
  });
  const port = await listen(server, options.port ?? 0);

  let connection: VizConnection | null = null;
  let closed = false;
  let definition: ChartDefinition;
  let svg: string;
  const state: VizState = { connected: false, builders: [], error: null };
  const streams = new Set<ServerResponse>();

  const broadcast = (event: string, data: unknown) => {
    const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
    for (const res of streams) res.write(frame);
  };

  // ---- the daemon side: subscribe, then keep a fresh copy of `status --all` ----

  let refreshing: Promise<void> | null = null;
  let again = false;
  const refresh = (): Promise<void> => {
    if (refreshing) {
      again = true;
      return refreshing;
    }
    refreshing = (async () => {
      do {
        again = false;
        const current = connection;
        if (!current) break;
        try {
          state.builders = await current.call("status", { all: true });
          state.error = null;
        } catch (error) {
          state.error = (error as Error).message;
        }
      } while (again && !closed);
      refreshing = null;
      if (!closed) broadcast("state", state);
    })();
    return refreshing;
  };

  let reconnectTimer: NodeJS.Timeout | null = null;
  const attach = async (conn: VizConnection) => {
    conn.onEvent((event) => {
      if (conn !== connection) return;
      if (event.type !== "transition") return;
      broadcast("transition", event);
      void refresh();
    });
    conn.onClose(() => {
      if (conn !== connection || closed) return;
      connection = null;
      state.connected = false;
      state.error = "the daemon went away; reconnecting…";
      broadcast("state", state);
      scheduleReconnect();
    });
    // Subscribe before reading the status, so no transition falls between the two.
    // Transitions only: a chatty agent's output never reaches this process.
    await conn.call("subscribe", { types: ["transition"] });
    state.connected = true;
    await refresh();
  };
  const scheduleReconnect = () => {
    if (closed || reconnectTimer) return;
    reconnectTimer = setTimeout(async () => {
      reconnectTimer = null;
      if (closed) return;
      try {
        const conn = await options.connect("reconnect");
        if (closed) {
          conn.close();
          return;
        }
        connection = conn;
        await attach(conn);
      } catch {
        if (connection) {
          connection.close();
          connection = null;
        }
        scheduleReconnect();
      }
    }, reconnectMs);
    reconnectTimer.unref();
  };

  try {
    connection = await options.connect("first");
    definition = await connection.call("chart.definition", { machine: "builder" });
    svg = await toSvg(definition);
    await attach(connection);
  } catch (error) {
    closed = true;
    connection?.close();
    await closeServer(server);
    throw error;
  }

  // ---- HTTP ------------------------------------------------------------------

  const authorised = (req: IncomingMessage, url: URL): { ok: true } | { ok: false; why: string } => {
    const host = req.headers.host;
    if (host !== `127.0.0.1:${port}` && host !== `localhost:${port}`) return { ok: false, why: "forbidden host" };
    const given = Buffer.from(url.searchParams.get("token") ?? "");
    if (given.length !== tokenBytes.length || !timingSafeEqual(given, tokenBytes)) return { ok: false, why: "missing or wrong token" };
    return { ok: true };
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    let url: URL;
    try {
      url = new URL(req.url ?? "/", "http://127.0.0.1");
    } catch {
      return send(res, 400, "text/plain; charset=utf-8", "bad request\n");
    }
    const auth = authorised(req, url);
    if (!auth.ok) return send(res, 403, "text/plain; charset=utf-8", `403 ${auth.why}\n`);
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.setHeader("Allow", "GET, HEAD");
      return send(res, 405, "text/plain; charset=utf-8", "method not allowed\n");
    }
    switch (url.pathname) {
      case "/": {
        const nonce = randomBytes(16).toString("base64");
        const html = renderPage({ svg, definition, workspace: options.workspace ?? "", nonce });
        res.setHeader(
          "Content-Security-Policy",
          `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'`,
        );
        return send(res, 200, "text/html; charset=utf-8", html, req.method === "HEAD");
      }
      case "/api/builders":
        return sendJson(res, 200, state);
      case "/api/history": {
        const name = url.searchParams.get("name") ?? "";
        if (builderNameProblem(name) !== null) return sendJson(res, 400, { error: { code: "INVALID_NAME", message: "name must be a builder name" } });
        const current = connection;
        if (!current) return sendJson(res, 503, { error: { code: "DAEMON_UNREACHABLE", message: "the daemon is not connected" } });
        try {
          return sendJson(res, 200, await current.call("history", { name }));
        } catch (error) {
          const code = isTroupeError(error) ? error.code : "ERROR";
          return sendJson(res, code === "NOT_FOUND" ? 404 : 502, { error: { code, message: error instanceof Error ? error.message : String(error) } });
        }
      }
      case "/events": {
        res.writeHead(200, { ...SECURITY_HEADERS, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-store", Connection: "keep-alive" });
        res.write(`retry: 1000\nevent: state\ndata: ${JSON.stringify(state)}\n\n`);
        streams.add(res);
        req.on("close", () => streams.delete(res));
        return;
      }
      default:
        return send(res, 404, "text/plain; charset=utf-8", "not found\n");
    }
  };

  const heartbeat = setInterval(() => {
    for (const res of streams) res.write(": keep-alive\n\n");
  }, HEARTBEAT_MS);
  heartbeat.unref();

  return {
    url: `http://127.0.0.1:${port}/?token=${token}`,
    port,
    token,
    close: async () => {
      if (closed) return;
      closed = true;
      clearInterval(heartbeat);
      if (reconnectTimer) clearTimeout(reconnectTimer);
      for (const res of streams) res.end();
      streams.clear();
      connection?.close();
      connection = null;
      await closeServer(server);
    },
  };
}

/** Binds 127.0.0.1:`port`; a busy or forbidden port is a TroupeError that says what to do. */
function listen(server: Server, port: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    server.once("error", (error: NodeJS.ErrnoException) => {
      if (error.code === "EADDRINUSE") {
        reject(new TroupeError("PORT_IN_USE", `port ${port} on 127.0.0.1 is in use: choose another with --port <n>, or leave --port out for any free port`, { port }));
      } else {
        reject(new TroupeError("LISTEN_FAILED", `cannot listen on 127.0.0.1:${port} (${error.code ?? error.message}): choose another port with --port <n>`, { port }, { cause: error }));
      }
    });
    server.listen(port, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const SECURITY_HEADERS = {
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Resource-Policy": "same-origin",
};

function send(res: ServerResponse, status: number, type: string, body: string, headOnly = false): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(body) });
  res.end(headOnly ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json; charset=utf-8", `${JSON.stringify(value)}\n`);
}

/**
 * `connect({ workspace })` (DESIGN §10): a client of the workspace's running
 * daemon with the Supervisor's interface, for programs that want troupe
 * without owning the workspace. Node builtins only, like the CLI.
 */
import type { MailRow } from "../storage/types.js";
import type { BuilderStatus, SpawnOptions, SupervisorEvent } from "../supervisor/types.js";
import { TroupeError, type TroupeErrorCode } from "../shared/errors.js";
import { connectDaemon, type DaemonClient } from "./client.js";
import { CliError } from "./errors.js";

export interface ConnectOptions {
  /** Any directory inside the repository (default: the current directory). */
  workspace?: string;
  /** Start the daemon when none runs (default true). */
  autostart?: boolean;
  /** Node binary for a daemon started by this call. */
  node?: string;
}

export interface Auth {
  token?: string;
}

/** One transition of a builder, oldest first (what `history(name)` resolves to). */
export interface HistoryEntry {
  from: string;
  to: string;
  event: string;
  /** ISO time. */
  at: string;
}

export interface SendRequest {
  to: string;
  body: string;
  type?: string;
  subject?: string;
  priority?: "low" | "normal" | "high" | "urgent";
  from?: string;
  threadId?: string;
  payload?: unknown;
}

/** The daemon's errors as TroupeErrors (same codes as the in-process Supervisor's). */
function asTroupeError(error: unknown): unknown {
  if (error instanceof CliError) return new TroupeError(error.code as TroupeErrorCode, error.message, error.details, { cause: error });
  return error;
}

export class TroupeClient {
  private subscription: Promise<DaemonClient> | null = null;
  private readonly listeners = new Set<(event: SupervisorEvent) => void>();

  constructor(
    private readonly client: DaemonClient,
    private readonly options: ConnectOptions,
  ) {}

  /** The main working tree the daemon owns. */
  get workspace(): string {
    return this.client.hello!.workspace;
  }

  private async call<T>(method: string, params: Record<string, unknown> = {}): Promise<T> {
    try {
      return await this.client.call<T>(method, params);
    } catch (error) {
      throw asTroupeError(error);
    }
  }

  spawn(options: SpawnOptions): Promise<BuilderStatus> {
    return this.call("spawn", { ...options });
  }
  status(options: { all?: boolean } = {}): Promise<BuilderStatus[]> {
    return this.call("status", { all: options.all === true });
  }
  get(name: string): Promise<BuilderStatus> {
    return this.call("get", { name });
  }
  /** The builder's transitions (from, to, event, time), oldest first; tombstones included. */
  history(name: string): Promise<HistoryEntry[]> {
    return this.call("history", { name });
  }
  stop(name: string): Promise<BuilderStatus> {
    return this.call("stop", { name });
  }
  restart(name: string): Promise<BuilderStatus> {
    return this.call("restart", { name });
  }
  destroy(name: string, options: { force?: boolean } = {}): Promise<BuilderStatus> {
    return this.call("destroy", { name, force: options.force === true });
  }
  send(request: SendRequest, auth: Auth = {}): Promise<MailRow[]> {
    return this.call("send", { ...request, ...(auth.token ? { auth } : {}) });
  }
  mail(request: { name?: string; unread?: boolean } = {}, auth: Auth = {}): Promise<MailRow[]> {
    return this.call("mail", { ...request, ...(auth.token ? { auth } : {}) });
  }
  read(id: string, auth: Auth = {}): Promise<MailRow> {
    return this.call("read", { id, ...(auth.token ? { auth } : {}) });
  }
  reply(id: string, request: Omit<SendRequest, "to" | "from" | "threadId">, auth: Auth = {}): Promise<MailRow> {
    return this.call("reply", { id, ...request, ...(auth.token ? { auth } : {}) });
  }
  doctor(options: { fix?: boolean } = {}): Promise<unknown> {
    return this.call("doctor", { fix: options.fix === true });
  }

  /**
   * Streams transitions, output, notices and mail (over a connection of its
   * own). Returns the function that unsubscribes.
   */
  subscribe(listener: (event: SupervisorEvent) => void): () => void {
    this.listeners.add(listener);
    this.subscription ??= connectDaemon({ ...this.options, workspace: this.workspace, autostart: false }).then(async (client) => {
      client.onEvent((event) => {
        for (const fn of [...this.listeners]) fn(event as SupervisorEvent);
      });
      await client.call("subscribe", {});
      return client;
    });
    this.subscription.catch(() => undefined);
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.dropSubscription();
    };
  }

  /** Resolves once events flow to the listeners (after subscribe()). */
  async subscribed(): Promise<void> {
    if (this.subscription) await this.subscription.then(() => undefined, (error) => Promise.reject(asTroupeError(error)));
  }

  private dropSubscription(): void {
    const subscription = this.subscription;
    this.subscription = null;
    subscription?.then((client) => client.close(), () => undefined);
  }

  /** Calls `listener` once the connection to the daemon closes (the daemon stopped, or close() was called). */
  onClose(listener: () => void): void {
    this.client.onClose(listener);
  }

  /** Closes the connections; the daemon and its builders go on. */
  async close(): Promise<void> {
    this.listeners.clear();
    this.dropSubscription();
    this.client.close();
  }
}

export async function connect(options: ConnectOptions = {}): Promise<TroupeClient> {
  try {
    const client = await connectDaemon({ ...options, announce: false, workspace: options.workspace ?? process.cwd() });
    return new TroupeClient(client, options);
  } catch (error) {
    throw asTroupeError(error);
  }
}

/**
 * `connect({ workspace })` (DESIGN §10): a client of the workspace's running
 * daemon with the same interface as the in-process Supervisor (TroupeApi,
 * checked by the compiler), for programs that want troupe without owning the
 * workspace. Node builtins only, like the CLI.
 */
import type { AdoptReport, Auth, BuilderScreen, BuilderStatus, DoctorReport, GcReport, HistoryEntry, MailMessage, MailQuery, ReplyRequest, SendRequest, SpawnOptions, SupervisorEvent, TroupeApi } from "../shared/contract.js";
import { connectDaemon } from "./discovery.js";
import type { DaemonClient } from "./rpc.js";

export interface ConnectOptions {
  /** Any directory inside the repository (default: the current directory). */
  workspace?: string;
  /** Start the daemon when none runs (default true). */
  autostart?: boolean;
  /** Node binary for a daemon started by this call. */
  node?: string;
}

/** The caller's token travels as `auth`; the operator sends none. */
function authParam(auth: Auth): { auth?: Auth } {
  return auth.token ? { auth } : {};
}

export class TroupeClient implements TroupeApi {
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

  spawn(options: SpawnOptions): Promise<BuilderStatus> {
    return this.client.call("spawn", { ...options });
  }
  status(options: { all?: boolean } = {}): Promise<BuilderStatus[]> {
    return this.client.call("status", { all: options.all === true });
  }
  get(name: string): Promise<BuilderStatus> {
    return this.client.call("get", { name });
  }
  /** The builder's transitions (from, to, event, time), oldest first; tombstones included. */
  history(name: string): Promise<HistoryEntry[]> {
    return this.client.call("history", { name });
  }
  /** What the builder's terminal shows now, as text. */
  screen(name: string): Promise<BuilderScreen> {
    return this.client.call("screen", { name });
  }
  stop(name: string): Promise<BuilderStatus> {
    return this.client.call("stop", { name });
  }
  restart(name: string): Promise<BuilderStatus> {
    return this.client.call("restart", { name });
  }
  destroy(name: string, options: { force?: boolean } = {}): Promise<BuilderStatus> {
    return this.client.call("destroy", { name, force: options.force === true });
  }
  send(request: SendRequest, auth: Auth = {}): Promise<MailMessage[]> {
    return this.client.call("send", { ...request, ...authParam(auth) });
  }
  mail(request: MailQuery = {}, auth: Auth = {}): Promise<MailMessage[]> {
    return this.client.call("mail", { ...request, ...authParam(auth) });
  }
  read(id: string, auth: Auth = {}): Promise<MailMessage> {
    return this.client.call("read", { id, ...authParam(auth) });
  }
  reply(id: string, request: ReplyRequest, auth: Auth = {}): Promise<MailMessage> {
    return this.client.call("reply", { ...request, id, ...authParam(auth) });
  }
  doctor(options: { fix?: boolean } = {}): Promise<DoctorReport> {
    return this.client.call("doctor", { fix: options.fix === true });
  }
  /** Registers live pty hosts that no builder owns (orphans) as builders. */
  adopt(): Promise<AdoptReport> {
    return this.client.call("adopt");
  }
  /** Forgets tombstones older than `olderThanMs` (the daemon's default: 7 days) once nothing of them remains. */
  gc(options: { olderThanMs?: number } = {}): Promise<GcReport> {
    return this.client.call("gc", options.olderThanMs === undefined ? {} : { olderThanMs: options.olderThanMs });
  }

  /**
   * Streams transitions, output, notices and mail (over a connection of its
   * own). Returns the function that unsubscribes.
   */
  subscribe(listener: (event: SupervisorEvent) => void): () => void {
    this.listeners.add(listener);
    this.subscription ??= connectDaemon({ ...this.options, workspace: this.workspace, autostart: false }).then(async (client) => {
      client.onEvent((event) => {
        for (const fn of [...this.listeners]) fn(event);
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
    await this.subscription;
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
  const client = await connectDaemon({ ...options, announce: false, workspace: options.workspace ?? process.cwd() });
  return new TroupeClient(client, options);
}

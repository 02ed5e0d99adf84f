/**
 * The REPL's connection to the workspace daemon. When the daemon goes away
 * (stopped, crashed, upgraded) the session says so once, and the next command
 * connects again, starting a daemon like every other command does.
 */
import { TroupeClient } from "../client/connect.js";
import { connectDaemon } from "../client/discovery.js";
import type { HelloResult } from "../daemon/protocol.js";

async function openClient(): Promise<{ client: TroupeClient; hello: HelloResult }> {
  // announce (on stderr) a daemon started for us, as the other commands do
  const daemon = await connectDaemon({});
  return { client: new TroupeClient(daemon, {}), hello: daemon.hello! };
}

export class Session {
  private current: TroupeClient | null = null;
  private last: TroupeClient;
  private connecting: Promise<TroupeClient> | null = null;
  private closing = false;
  hello: HelloResult;
  /** Called when the connection drops without close() being called. */
  onLost: () => void = () => undefined;
  /** Called after a reconnection (not after the first connection). */
  onReconnect: (client: TroupeClient) => void = () => undefined;

  private constructor(opened: { client: TroupeClient; hello: HelloResult }) {
    this.last = opened.client;
    this.hello = opened.hello;
    this.adopt(opened.client);
  }

  static async open(): Promise<Session> {
    return new Session(await openClient());
  }

  /** The connected client (after a loss, the closed one: its calls fail with DAEMON_UNREACHABLE until ready() reconnects). */
  get client(): TroupeClient {
    return this.current ?? this.last;
  }

  get workspace(): string {
    return this.hello.workspace;
  }

  /** The connected client, connecting again first if the connection was lost. */
  ready(): Promise<TroupeClient> {
    if (this.current) return Promise.resolve(this.current);
    this.connecting ??= openClient().then(
      (opened) => {
        this.connecting = null;
        this.hello = opened.hello;
        this.adopt(opened.client);
        this.onReconnect(opened.client);
        return opened.client;
      },
      (error: unknown) => {
        this.connecting = null;
        throw error;
      },
    );
    return this.connecting;
  }

  private adopt(client: TroupeClient): void {
    this.current = client;
    this.last = client;
    client.onClose(() => {
      if (this.current !== client) return;
      this.current = null;
      if (!this.closing) this.onLost();
    });
  }

  /** Closes the connections; the daemon and its builders keep running. */
  async close(): Promise<void> {
    this.closing = true;
    await this.current?.close();
    this.current = null;
  }
}

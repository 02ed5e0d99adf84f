/**
 * The live side of a builder: the connection to its pty host, and how its
 * agent process is ended. One agent per worktree (invariant D) is kept here:
 * a host already serving this incarnation is adopted, never doubled.
 */
import { rmSync } from "node:fs";
import type { Logger } from "pino";
import { connectPtyHost, type ExitStatus, type PtyHostClient } from "../../actors/index.js";
import { TroupeError } from "../../shared/errors.js";
import type { ActorRow } from "../../storage/types.js";
import { terminateTree } from "../../shared/terminate.js";
import { linkHost, type HostEvent } from "./host-link.js";

/** How long to wait for a host that should already be listening. */
const ADOPT_TIMEOUT_MS = 2000;

/** The processes a row (or an unconfirmed launch) names, by pid and start time. */
export type ProcessFields = Pick<ActorRow, "pid" | "pidStartTime" | "hostPid" | "hostStartTime">;

export class AgentLink {
  private client: PtyHostClient | null = null;
  private unlink: () => void = () => undefined;
  /** When the terminal last printed (its start counts); compared with the chart's lastActivityAt. */
  lastOutputAt = 0;

  constructor(
    private readonly builderId: string,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** The current host connection, if one is attached. */
  get current(): PtyHostClient | null {
    return this.client;
  }

  /** Listens to `client` from now on; events of any earlier connection stop. */
  attach(client: PtyHostClient, now: number, sendBack: (event: HostEvent, client: PtyHostClient) => void): void {
    this.unlink();
    this.client = client;
    this.lastOutputAt = Math.max(this.lastOutputAt, now);
    this.unlink = linkHost(client, (event) => sendBack(event, client));
  }

  /** Stops listening and hands the connection over, still open, for a last request (stop, collect). */
  release(): PtyHostClient | null {
    const client = this.client;
    this.unlink();
    this.unlink = () => undefined;
    this.client = null;
    return client;
  }

  /** Stops listening and closes the connection. */
  detach(): void {
    this.release()?.close();
  }

  /** Types into the agent's terminal (mail delivery). */
  write(data: string, now: number): void {
    if (!this.client) throw new TroupeError("HOST_UNREACHABLE", `Builder "${this.name}" has no live terminal.`, { name: this.name });
    this.client.write(data);
    this.lastOutputAt = Math.max(this.lastOutputAt, now);
  }

  /**
   * A live host already serving this incarnation at `socket`, or null. With
   * `runningOnly`, a host whose agent already exited is not adopted: its
   * status is collected so that it goes away.
   */
  async adoptable(socket: string | null, options: { runningOnly?: boolean } = {}): Promise<PtyHostClient | null> {
    if (!socket) return null;
    let client: PtyHostClient;
    try {
      client = await connectPtyHost(socket, { timeoutMs: ADOPT_TIMEOUT_MS });
    } catch {
      return null;
    }
    if (client.identity.builderId !== this.builderId) {
      client.close();
      return null;
    }
    if (options.runningOnly && client.identity.exit) {
      await client.collect().catch(() => undefined);
      client.close();
      return null;
    }
    return client;
  }

  /**
   * Ends the agent's whole process tree (SIGTERM, then SIGKILL after
   * `killTimeoutMs`) and its host: through the host when it answers, and by
   * recorded pid (checked against its start time) when it does not.
   */
  async terminate(recorded: ProcessFields, socket: string | null, killTimeoutMs: number): Promise<ExitStatus | null> {
    const client = this.release() ?? (await this.adoptable(socket));
    let status: ExitStatus | null = null;
    if (client) {
      try {
        status = await client.stop({ killTimeoutMs });
      } catch (error) {
        this.log.warn({ err: error }, "host did not stop the agent; killing by pid");
      }
      // Collected before closing: a host whose exit status nobody collects lingers until its collect timeout.
      await client.collect().catch(() => undefined);
      client.close();
    }
    await killLeftovers(recorded, socket, killTimeoutMs);
    return status;
  }
}

/** Kills the named agent and host processes if they still run (by pid + start time, never by name). */
export async function killLeftovers(recorded: ProcessFields, socket: string | null, killTimeoutMs: number): Promise<void> {
  const { pid, pidStartTime, hostPid, hostStartTime } = recorded;
  if (pid) await terminateTree(pid, { startTime: pidStartTime, graceMs: killTimeoutMs });
  if (hostPid) await terminateTree(hostPid, { startTime: hostStartTime, graceMs: killTimeoutMs });
  if (socket) rmSync(socket, { force: true });
}

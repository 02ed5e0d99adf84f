/**
 * `connect({ workspace })`: the library's client of a running daemon, with
 * the Supervisor's interface (DESIGN §10).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type TroupeClient } from "../../src/client/connect.js";
import { TroupeError } from "../../src/shared/errors.js";
import type { SupervisorEvent } from "../../src/supervisor/types.js";
import { waitFor } from "../helpers/workspace.js";
import { TestWorkspace, agent } from "./harness.js";

let ws: TestWorkspace;
let client: TroupeClient;

beforeAll(async () => {
  ws = new TestWorkspace("troupe-connect-");
  await ws.daemonPid();
  client = await connect({ workspace: ws.repo, autostart: false });
});
afterAll(async () => {
  await client?.close();
  await ws.close();
});

describe("connect()", () => {
  it("spawns, lists, streams events, sends mail and destroys through the daemon", async () => {
    expect(client.workspace).toBe(ws.repo);
    const events: SupervisorEvent[] = [];
    const unsubscribe = client.subscribe((event) => events.push(event));
    await client.subscribed();
    const spawned = await client.spawn({ name: "remote", cmd: [process.execPath, agent("cli-quiet.mjs")] });
    expect(spawned).toMatchObject({ name: "remote", state: "working" });
    expect((await client.status()).map((b) => b.name)).toEqual(["remote"]);
    await waitFor(() => events.some((e) => e.type === "transition" && e.name === "remote" && e.to.startsWith("working")), "the working transition");
    const [sent] = await client.send({ to: "remote", body: "hi" });
    expect(sent).toMatchObject({ from: "operator", to: "remote", body: "hi" });
    expect((await client.mail({ name: "remote" })).map((m) => m.id)).toContain(sent!.id);
    unsubscribe();
    expect(await client.destroy("remote", { force: true })).toMatchObject({ state: "destroyed" });
  });

  it("rejects with TroupeErrors carrying the daemon's code", async () => {
    const error = await client.stop("nobody").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TroupeError);
    expect(error).toMatchObject({ code: "NOT_FOUND" });
  });

  it("without a daemon and autostart off, says none runs", async () => {
    const other = new TestWorkspace("troupe-connect-none-");
    try {
      const error = await connect({ workspace: other.repo, autostart: false }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TroupeError);
      expect(error).toMatchObject({ code: "DAEMON_NOT_RUNNING" });
    } finally {
      await other.close();
    }
  });
});

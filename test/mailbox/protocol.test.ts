import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { Mailbox, noticeMessage, protocolEffect, protocolEffects, type Sender } from "../../src/mailbox/index.js";
import { FakeDirectory, openTestStore, type TestStore } from "./helpers.js";

const operator: Sender = { kind: "operator" };

describe("protocol helpers", () => {
  let ts: TestStore;
  let dir: FakeDirectory;
  let mailbox: Mailbox;

  beforeEach(async () => {
    ts = await openTestStore();
    dir = new FakeDirectory();
    dir.add("lead");
    dir.add("w", { parent: "lead" });
    mailbox = new Mailbox({ store: ts.store, directory: dir });
  });

  afterEach(async () => {
    await ts.cleanup();
  });

  it("worker_done from a builder completes that builder", async () => {
    const w = dir.byName("w")!;
    const [done] = await mailbox.send({ to: "parent", body: "finished", type: "worker_done" }, { kind: "agent", id: w.id });
    expect(protocolEffect(done!)).toEqual({ kind: "worker_done", actorId: w.id });
  });

  it("other types and the operator's own worker_done have no effect; fan-outs count once", async () => {
    const w = dir.byName("w")!;
    const [status] = await mailbox.send({ to: "parent", body: "progress" }, { kind: "agent", id: w.id });
    expect(protocolEffect(status!)).toBeNull();
    const [fromOperator] = await mailbox.send({ to: "w", body: "you are done", type: "worker_done" }, operator);
    expect(protocolEffect(fromOperator!)).toBeNull();
    dir.add("x");
    const rows = await mailbox.send({ to: "@all", body: "done", type: "worker_done" }, { kind: "agent", id: w.id });
    expect(rows.length).toBe(2);
    expect(protocolEffects(rows)).toEqual([{ kind: "worker_done", actorId: w.id }]);
  });

  it("worker_died notice: sent as the operator on the dead builder's behalf", async () => {
    const w = dir.byName("w")!;
    dir.setState("w", "zombie");
    const request = noticeMessage("worker_died", { name: "w", id: w.id, reason: "crashed 4 times in 10 min", to: "lead" });
    expect(request).toMatchObject({ to: "lead", from: "w", type: "worker_died", priority: "high" });
    expect(request.subject).toContain("w");
    expect(request.body).toContain("crashed 4 times in 10 min");
    expect(request.payload).toEqual({ kind: "worker_died", name: "w", id: w.id, reason: "crashed 4 times in 10 min" });
    const [row] = await mailbox.send(request, operator);
    expect(row).toMatchObject({ from: "w", fromId: w.id, to: "lead", type: "worker_died", priority: "high" });
    expect(protocolEffect(row!)).toBeNull();
  });

  it("contract_violation notice: an error with payload.kind, to the operator when there is no parent", async () => {
    const lead = dir.byName("lead")!;
    dir.setState("lead", "completed");
    const request = noticeMessage("contract_violation", { name: "lead", id: lead.id, reason: "exit code 0\nwithout worker_done", to: "operator" });
    expect(request).toMatchObject({ to: "operator", from: "lead", type: "error", priority: "high", payload: { kind: "contract_violation", name: "lead", id: lead.id } });
    expect(request.subject).toMatch(/without sending worker_done/);
    const [row] = await mailbox.send(request, operator);
    expect(row).toMatchObject({ from: "lead", to: "operator", type: "error" });
  });

  it("notice subjects stay valid for very long reasons", async () => {
    const w = dir.byName("w")!;
    const request = noticeMessage("worker_died", { name: "w", id: w.id, reason: "boom\n".repeat(300), to: "lead" });
    expect([...request.subject!].length).toBeLessThanOrEqual(200);
    await expect(mailbox.send(request, operator)).resolves.toHaveLength(1);
  });
});

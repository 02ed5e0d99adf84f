import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builderMachineDefinition } from "../../src/machines/builder.js";
import { renderDot, toDot, toJson, toMermaid, toSvg } from "../../src/viz/export.js";
import { TestWorkspace } from "../e2e/harness.js";

const def = builderMachineDefinition();
const leafStates = def.states.filter((s) => !def.states.some((other) => other.parent === s.id));
const events: string[] = [...new Set(def.transitions.flatMap((t) => (t.event === null ? [] : [String(t.event)])))];

describe("statechart export (from the real definition)", () => {
  it("has states and events to draw", () => {
    expect(leafStates.length).toBeGreaterThanOrEqual(9);
    expect(events).toContain("EXITED");
  });

  it("Mermaid names every state and every event", () => {
    const mermaid = toMermaid(def);
    expect(mermaid.startsWith("stateDiagram-v2")).toBe(true);
    for (const state of def.states) expect(mermaid, state.id).toContain(state.id.split(".").at(-1)!);
    for (const event of events) expect(mermaid, event).toContain(event);
  });

  it("DOT names every event and lays out with Graphviz; the SVG labels every state", async () => {
    const dot = toDot(def);
    for (const event of events) expect(dot, event).toContain(event);
    const svg = await toSvg(def);
    expect(svg).toContain("<svg");
    for (const state of leafStates) expect(svg, state.id).toContain(state.id.split(".").at(-1)!);
    await expect(renderDot("digraph { a -> }")).rejects.toThrow();
  });

  it("JSON is the definition", () => {
    expect(JSON.parse(toJson(def))).toEqual(JSON.parse(JSON.stringify(def)));
  });
});

describe("troupe chart (the real binary against a real daemon)", () => {
  let ws: TestWorkspace;
  beforeAll(() => {
    ws = new TestWorkspace("troupe-chart-");
  });
  afterAll(async () => {
    await ws?.close();
  });

  it("prints each format, and writes --output", async () => {
    const mermaid = await ws.run(["chart", "builder", "--format", "mermaid"]);
    expect(mermaid.code).toBe(0);
    expect(mermaid.stdout).toContain("stateDiagram-v2");
    const dot = await ws.run(["chart", "builder", "--format", "dot"]);
    expect(dot.stdout).toMatch(/^digraph/);
    const json = await ws.run(["chart", "builder", "--json"]);
    expect(JSON.parse(json.stdout)).toEqual(JSON.parse(JSON.stringify(def)));
    const out = join(ws.repo, "builder.svg");
    const svg = await ws.run(["chart", "builder", "--format", "svg", "--output", out]);
    expect(svg.code).toBe(0);
    expect(readFileSync(out, "utf8")).toContain("<svg");
  });

  it("an unknown machine or format is a usage error (exit 2)", async () => {
    const machine = await ws.run(["chart", "nosuch", "--format", "dot"]);
    expect(machine.code).toBe(2);
    expect(machine.stderr).toContain("builder");
    const format = await ws.run(["chart", "builder", "--format", "png"]);
    expect(format.code).toBe(2);
    expect((await ws.run(["chart"])).code).toBe(2);
  });
});

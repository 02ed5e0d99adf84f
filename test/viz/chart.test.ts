import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { builderMachineDefinition } from "../../src/machines/definition.js";
import { renderDot, stateLabel, toDot, toJson, toMermaid, toSvg, transitionLabel } from "../../src/viz/export.js";
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

  it("every format names every state and every event of the chart", async () => {
    const formats = { mermaid: toMermaid(def), dot: toDot(def), json: toJson(def), svg: await toSvg(def) };
    for (const [format, text] of Object.entries(formats)) {
      for (const state of def.states) expect(text, `${format}: ${state.id}`).toContain(stateLabel(state.id));
      if (format !== "svg") for (const event of events) expect(text, `${format}: ${event}`).toContain(event);
    }
    // the SVG labels every edge too, and keeps the ids the visualizer highlights by
    for (const transition of def.transitions) expect(formats.svg).toContain(transitionLabel(transition).replace(/[<>&]/g, ""));
    for (const state of def.states) expect(formats.svg, state.id).toContain(`id="s:${state.id}"`);
    def.transitions.forEach((_, i) => expect(formats.svg).toContain(`id="t:${i}"`));
  });

  it("Mermaid nests compound states with their initial markers; DOT draws them as clusters", () => {
    const mermaid = toMermaid(def);
    const dot = toDot(def);
    const compounds = def.states.filter((s) => s.type === "compound");
    expect(compounds.map((s) => s.id)).toEqual(expect.arrayContaining(["booting", "working", "destroying"]));
    expect(mermaid).toMatch(/^ {2}\[\*\] --> booting$/m);
    for (const state of compounds) {
      const block = new RegExp(`state ${state.id.replace(/\./g, "_")} \\{\\n\\s+\\[\\*\\] --> ${state.id.replace(/\./g, "_")}_${state.initial}\\n`);
      expect(mermaid, state.id).toMatch(block);
      expect(dot, state.id).toContain(`subgraph "cluster_${state.id}"`);
    }
    for (const state of def.states.filter((s) => s.type === "final")) expect(mermaid).toContain(`${state.id.replace(/\./g, "_")} --> [*]`);
    // one edge per transition target: event labels and guards
    expect(mermaid).toContain("working --> completed : DONE");
    expect(mermaid).toContain("booting_starting --> working : STARTED");
    expect(mermaid).toContain("working_stalled --> working_active : OUTPUT");
    expect(dot).toContain('label="EXITED [outcomeIs(restart)]"');
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

  it("--json with --output reports the file; an unwritable --output fails (exit 1)", async () => {
    const out = join(ws.repo, "builder.mmd");
    const result = await ws.ok<{ machine: string; format: string; output: string; bytes: number }>(["chart", "builder", "-f", "mermaid", "-o", out, "--json"]);
    expect(result).toEqual({ machine: "builder", format: "mermaid", output: out, bytes: Buffer.byteLength(readFileSync(out, "utf8")) });
    expect(readFileSync(out, "utf8")).toBe(toMermaid(def));
    const bad = await ws.run(["chart", "builder", "--output", join(ws.repo, "no", "such", "dir", "x.svg")]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("cannot write");
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

describe("usage errors of chart and viz start no daemon", () => {
  let ws: TestWorkspace;
  beforeAll(() => {
    ws = new TestWorkspace("troupe-chart-usage-");
  });
  afterAll(async () => {
    await ws?.close();
  });

  it.each([
    ["an unknown machine", ["chart", "supervisor"], /unknown machine "supervisor": the known machines are builder/],
    ["a bad format", ["chart", "builder", "--format", "png"], /--format must be one of mermaid, dot, json, svg/],
    ["no machine", ["chart"], /missing <machine>/],
    ["a bad port", ["viz", "--port", "http"], /--port must be a whole number/],
    ["a port too large", ["viz", "--port", "70000"], /--port must be a whole number/],
    ["an argument to viz", ["viz", "now"], /unexpected argument/],
  ])("%s (exit 2)", async (_what, args, message) => {
    const result = await ws.run(args as string[]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(message as RegExp);
    expect(result.stdout).toBe("");
  });

  it("and none of them started a daemon", () => {
    expect(existsSync(join(ws.repo, ".troupe", "run", "daemon.sock"))).toBe(false);
  });
});

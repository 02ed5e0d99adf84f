/**
 * The layering of src/ (DESIGN §2), over the run-time import graph of every
 * file: no import runs back up the layers, no two files import each other
 * (directly or around a loop), src/machines imports xstate and nothing of
 * ours. The ranks are in test/helpers/import-graph.ts. The checks themselves
 * are tried on a planted back-up arrow and a planted cycle first.
 */
import { isBuiltin } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ROOT } from "./e2e/harness.js";
import { LAYER_RANKS, backUpArrows, importCycles, layerOf, sourceGraph, unrankedLayers, type SourceGraph } from "./helpers/import-graph.js";

const graph = sourceGraph(ROOT, join(ROOT, "src"));

function planted(edges: Record<string, string[]>): SourceGraph {
  return new Map(Object.entries(edges).map(([file, files]) => [file, { files, packages: [] }]));
}

describe("the checks catch what they look for", () => {
  it("a back-up arrow: storage importing the supervisor, shared importing the CLI", () => {
    const arrows = backUpArrows(planted({ "src/storage/store.ts": ["src/supervisor/supervisor.ts"], "src/shared/errors.ts": ["src/cli/main.ts"], "src/cli/main.ts": ["src/shared/errors.ts"] }));
    expect(arrows).toEqual(["src/storage/store.ts → src/supervisor/supervisor.ts (rank 2 → 3)", "src/shared/errors.ts → src/cli/main.ts (rank 0 → 6)"]);
  });

  it("a cycle: two files of one folder, and a loop through three folders", () => {
    const cycles = importCycles(
      planted({
        "src/machines/a.ts": ["src/machines/b.ts"],
        "src/machines/b.ts": ["src/machines/a.ts"],
        "src/cli/x.ts": ["src/repl/y.ts"],
        "src/repl/y.ts": ["src/term/z.ts"],
        "src/term/z.ts": ["src/cli/x.ts"],
        "src/shared/ok.ts": [],
      }),
    );
    expect(cycles).toEqual([["src/machines/a.ts", "src/machines/b.ts"], ["src/cli/x.ts", "src/repl/y.ts", "src/term/z.ts"]]);
  });
});

describe("src/", () => {
  it("has a rank for every top-level folder", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(unrankedLayers(graph)).toEqual([]);
  });

  it("has no import that runs back up the layers", () => {
    expect(backUpArrows(graph)).toEqual([]);
  });

  it("has no import cycle between files", () => {
    expect(importCycles(graph)).toEqual([]);
  });

  it("machines/ imports xstate and nothing of ours", () => {
    for (const [file, { files, packages }] of graph) {
      if (layerOf(file) !== "machines") continue;
      expect(files.filter((target) => layerOf(target) !== "machines"), file).toEqual([]);
      expect(packages.filter((name) => name !== "xstate"), file).toEqual([]);
    }
  });

  it("shared/ uses Node builtins only (every layer, the CLI included, may load it)", () => {
    for (const [file, { packages }] of graph) if (layerOf(file) === "shared") expect(packages.filter((name) => !isBuiltin(name)), file).toEqual([]);
  });

  it("ranks the layers as DESIGN §2 draws them", () => {
    const rank = (layer: string) => LAYER_RANKS[layer]!;
    for (const top of ["cli", "repl"]) for (const below of ["client", "term"]) expect(rank(top)).toBeGreaterThan(rank(below));
    expect(rank("client")).toBeGreaterThan(rank("daemon"));
    expect(rank("daemon")).toBeGreaterThan(rank("supervisor"));
    for (const part of ["machines", "agents", "actors", "mailbox", "storage"]) expect(rank("supervisor")).toBeGreaterThan(rank(part));
    for (const layer of Object.keys(LAYER_RANKS)) if (layer !== "shared") expect(rank(layer)).toBeGreaterThan(rank("shared"));
  });
});

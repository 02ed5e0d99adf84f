import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";

/** The modules a TypeScript file loads at run time: static imports, re-exports, side-effect and dynamic imports (type-only ones are erased by tsc). */
export function importsOf(file: string): string[] {
  const source = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  const found: string[] = [];
  for (const match of source.matchAll(/^\s*(import|export)\s+(type\s+)?[^;]*?\sfrom\s+["']([^"']+)["']/gm)) if (!match[2]) found.push(match[3]!);
  for (const match of source.matchAll(/^\s*import\s+["']([^"']+)["']/gm)) found.push(match[1]!);
  for (const match of source.matchAll(/import\(\s*["']([^"']+)["']\s*\)/g)) found.push(match[1]!);
  return found;
}

function resolveSpecifier(file: string, specifier: string): string {
  return resolve(dirname(file), specifier.replace(/\.js$/, ".ts"));
}

/** Every source file reachable from `entries` through relative imports, and every package they name. */
export function importGraph(entries: string[]): { files: Set<string>; packages: Set<string> } {
  const files = new Set<string>();
  const packages = new Set<string>();
  const queue = [...entries];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (files.has(file)) continue;
    files.add(file);
    for (const specifier of importsOf(file)) {
      if (specifier.startsWith(".")) queue.push(resolveSpecifier(file, specifier));
      else packages.add(specifier);
    }
  }
  return { files, packages };
}

/** Each file's run-time imports: `files` (ours, resolved) and `packages` (by name). Keys and files are relative to `root`. */
export type SourceGraph = Map<string, { files: string[]; packages: string[] }>;

/** The run-time import graph of every .ts file under `dir`, with paths relative to `root`. */
export function sourceGraph(root: string, dir: string): SourceGraph {
  const graph: SourceGraph = new Map();
  const walk = (at: string) => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) {
        const files: string[] = [];
        const packages: string[] = [];
        for (const specifier of importsOf(path)) {
          if (specifier.startsWith(".")) files.push(relative(root, resolveSpecifier(path, specifier)));
          else packages.push(specifier);
        }
        graph.set(relative(root, path), { files, packages });
      }
    }
  };
  walk(dir);
  return graph;
}

/**
 * The layers of src/ (DESIGN §2), by top-level folder: a module may import
 * its own folder, a folder of the same rank, or one ranked lower; never one
 * ranked higher. Ranked by folder, not by file, so restructuring inside a
 * folder (src/supervisor/builder/) needs no change here.
 *
 *   7  index.ts                           the public library API: may name anything
 *   6  cli, repl                          the thin client's commands and the inspector (one process)
 *   5  client, term, viz                  the daemon's client library, terminal output, the
 *                                         visualizer (served from the CLI process; the daemon
 *                                         needs none of it)
 *   4  daemon                             Supervisor + IPC server, and how a daemon is launched
 *                                         (client may import its pure modules: protocol, launch,
 *                                         workspace; the CLI's graph test keeps them pure)
 *   3  supervisor                         the tree and the builder's life
 *   2  actors, agents, mailbox, storage   what the supervisor drives
 *   1  machines                           pure statecharts: import xstate and nothing of ours
 *   0  shared                             vocabulary, contract, errors, small primitives
 */
export const LAYER_RANKS: Readonly<Record<string, number>> = {
  "index.ts": 7,
  cli: 6,
  repl: 6,
  client: 5,
  term: 5,
  viz: 5,
  daemon: 4,
  supervisor: 3,
  actors: 2,
  agents: 2,
  mailbox: 2,
  storage: 2,
  machines: 1,
  shared: 0,
};

/** The layer of a file under `src/` (its top-level folder, or the file itself at the top). */
export function layerOf(file: string, src = "src"): string {
  const inside = relative(src, file).split(sep);
  return inside[0]!;
}

/** Imports that run from a lower layer to a higher one, as "from → to (rank a → rank b)". */
export function backUpArrows(graph: SourceGraph, ranks: Readonly<Record<string, number>> = LAYER_RANKS, src = "src"): string[] {
  const found: string[] = [];
  for (const [file, { files }] of graph) {
    const from = ranks[layerOf(file, src)];
    for (const target of files) {
      const to = ranks[layerOf(target, src)];
      if (from !== undefined && to !== undefined && to > from) found.push(`${file} → ${target} (rank ${from} → ${to})`);
    }
  }
  return found;
}

/** Layers of files in `graph` that have no rank. */
export function unrankedLayers(graph: SourceGraph, ranks: Readonly<Record<string, number>> = LAYER_RANKS, src = "src"): string[] {
  return [...new Set([...graph.keys()].map((file) => layerOf(file, src)))].filter((layer) => ranks[layer] === undefined).sort();
}

/** Every import cycle between files (Tarjan's strongly connected components of more than one file, or a file importing itself). */
export function importCycles(graph: SourceGraph): string[][] {
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (file: string) => {
    indexOf.set(file, index);
    low.set(file, index);
    index++;
    stack.push(file);
    onStack.add(file);
    for (const next of graph.get(file)?.files ?? []) {
      if (!graph.has(next)) continue;
      if (!indexOf.has(next)) {
        visit(next);
        low.set(file, Math.min(low.get(file)!, low.get(next)!));
      } else if (onStack.has(next)) {
        low.set(file, Math.min(low.get(file)!, indexOf.get(next)!));
      }
    }
    if (low.get(file) === indexOf.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || graph.get(file)!.files.includes(file)) cycles.push(component.sort());
    }
  };
  for (const file of graph.keys()) if (!indexOf.has(file)) visit(file);
  return cycles;
}

import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { withDaemon } from "../../client/discovery.js";
import { CHART_MACHINES } from "../../daemon/protocol.js";
import { TroupeError, UsageError } from "../../shared/errors.js";
import { isOneOf } from "../../shared/vocabulary.js";
import { CHART_FORMATS, exportChart } from "../../viz/export.js";
import { checkChoice, parse, str } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe chart <machine> [--format mermaid|dot|json|svg] [--output <file>]

Exports a statechart: <machine> is ${CHART_MACHINES.join(", ")}. The definition comes
from the workspace's daemon (the machine that actually runs the builders; the
daemon is started when none runs). SVG is laid out by Graphviz (WebAssembly).

Options:
  -f, --format <f>   mermaid (default), dot, json or svg
  -o, --output <f>   write to this file instead of standard output
  --json             print the JSON definition (with --output: { machine, format, output, bytes })
  -h, --help

Examples:
  troupe chart builder --format mermaid
  troupe chart builder --format svg --output builder.svg`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { format: { type: "string", short: "f" }, output: { type: "string", short: "o" } }, usage, { min: 1, max: 1, names: ["machine"] });
  const machine = args.positionals[0]!;
  if (!isOneOf(CHART_MACHINES, machine)) {
    throw new UsageError(`unknown machine ${JSON.stringify(machine)}: the known machines are ${CHART_MACHINES.join(", ")}`, usage);
  }
  const output = str(args.values.output);
  if (args.values.output !== undefined && !output) throw new UsageError("--output needs a file name", usage);
  const format = checkChoice(str(args.values.format), "format", CHART_FORMATS) ?? (args.json && !output ? "json" : "mermaid");

  const definition = await withDaemon((client) => client.call("chart.definition", { machine }));
  const text = await exportChart(definition, format);
  if (output) {
    const path = resolve(output);
    try {
      writeFileSync(path, text);
    } catch (error) {
      throw new TroupeError("WRITE_FAILED", `cannot write ${path}: ${(error as Error).message}`, { path });
    }
    const bytes = Buffer.byteLength(text);
    if (args.json) printJson({ machine, format, output: path, bytes });
    else print(`wrote the ${machine} chart (${format}, ${bytes} bytes) to ${path}`);
    return 0;
  }
  if (args.json) printJson(definition);
  else process.stdout.write(text.endsWith("\n") ? text : `${text}\n`);
  return 0;
}

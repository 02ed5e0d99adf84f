import { writeFileSync } from "node:fs";
import { CHART_MACHINES, type ChartDefinition } from "../../daemon/protocol.js";
import { CHART_FORMATS, exportChart, type ChartFormat } from "../../viz/export.js";
import { parse } from "../args.js";
import { withDaemon } from "../client.js";
import { UsageError } from "../errors.js";
import { note, print, printJson } from "../output.js";

export const usage = `Usage: troupe chart <machine> --format mermaid|dot|json|svg [--output <file>] [--json]

Exports a statechart: Mermaid (stateDiagram-v2), Graphviz DOT, its JSON
definition, or SVG laid out by Graphviz. Machines: ${CHART_MACHINES.join(", ")}.

Options:
  --format <f>     mermaid, dot, json or svg (default mermaid)
  --output <file>  write to a file instead of standard output
  --json           print the chart's JSON definition (same as --format json)
  -h, --help`;

export async function run(argv: string[]): Promise<number> {
  const args = parse(argv, { format: { type: "string" }, output: { type: "string" } }, usage, { min: 1, max: 1, names: ["machine"] });
  const machine = args.positionals[0]!;
  if (!(CHART_MACHINES as readonly string[]).includes(machine)) {
    throw new UsageError(`unknown machine ${JSON.stringify(machine)}; known: ${CHART_MACHINES.join(", ")}`, usage);
  }
  const format = (args.json ? "json" : (args.values.format ?? "mermaid")) as string;
  if (!(CHART_FORMATS as readonly string[]).includes(format)) {
    throw new UsageError(`--format must be one of ${CHART_FORMATS.join(", ")}, not ${JSON.stringify(format)}`, usage);
  }
  // The CLI never loads the machine (xstate): the daemon describes it.
  const definition = await withDaemon((client) => client.call<ChartDefinition>("chart.definition", { machine }));
  if (args.json && args.values.output === undefined) {
    printJson(definition);
    return 0;
  }
  const text = await exportChart(definition, format as ChartFormat);
  const output = args.values.output as string | undefined;
  if (output !== undefined) {
    writeFileSync(output, text.endsWith("\n") ? text : `${text}\n`);
    note(`wrote the ${machine} chart as ${format} to ${output}`);
  } else {
    print(text);
  }
  return 0;
}

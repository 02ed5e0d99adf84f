import { withDaemon } from "../../client/discovery.js";
import { UsageError } from "../../shared/errors.js";
import { paint } from "../../term/paint.js";
import { adoptText, doctorText, gcText } from "../../term/reports.js";
import { parse, str, type OptionSpec } from "../args.js";
import { print, printJson } from "../output.js";

export const usage = `Usage: troupe adopt
       troupe doctor [--fix]
       troupe gc [--older-than <age>]

adopt    registers live pty hosts that no builder row owns (orphans) as builders
doctor   compares the store with the world (processes, pty hosts, worktrees,
         branches, sockets) and reports every mismatch; --fix repairs them.
         Exits 1 while problems remain.
gc       forgets tombstones older than <age> (default 7d) once nothing of them remains

Options:
  --fix               (doctor) repair what it finds
  --older-than <age>  (gc) e.g. 30m, 12h, 7d, or 0 for every tombstone
  --json              print the daemon's report
  -h, --help`;

export async function run(argv: string[], command: string): Promise<number> {
  const options: OptionSpec = command === "doctor" ? { fix: { type: "boolean" } } : command === "gc" ? { "older-than": { type: "string" } } : {};
  const args = parse(argv, options, usage, { min: 0, max: 0 });
  const p = paint();
  const show = (report: unknown, text: string) => (args.json ? printJson(report) : print(text));
  if (command === "doctor") {
    const report = await withDaemon((client) => client.call("doctor", { fix: args.values.fix === true }));
    show(report, doctorText(report, p, "Run `troupe doctor --fix` to repair them."));
    return report.findings.length === 0 && (report.failed ?? []).length === 0 ? 0 : 1;
  }
  if (command === "adopt") {
    const report = await withDaemon((client) => client.call("adopt"));
    show(report, adoptText(report, p));
    return 0;
  }
  const age = str(args.values["older-than"]);
  const params = age === undefined ? {} : { olderThanMs: parseAge(age) };
  const report = await withDaemon((client) => client.call("gc", params));
  show(report, gcText(report));
  return 0;
}

function parseAge(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--older-than ${JSON.stringify(text)}: use a number with a unit, e.g. 30m, 12h, 7d (or 0)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? "ms") as "ms" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

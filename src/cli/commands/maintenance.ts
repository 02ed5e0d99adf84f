import type { BuilderStatus } from "../../supervisor/types.js";
import { parse, str, type OptionSpec } from "../args.js";
import { withDaemon } from "../client.js";
import { UsageError } from "../errors.js";
import { paint, print, printJson } from "../output.js";

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

interface Finding {
  kind: string;
  name: string | null;
  id: string | null;
  detail: string;
  fix: string;
}

interface DoctorReport {
  findings: Finding[];
  fixed?: Finding[];
  failed?: Array<Finding & { error: string }>;
}

export async function run(argv: string[], command: string): Promise<number> {
  const options: OptionSpec = command === "doctor" ? { fix: { type: "boolean" } } : command === "gc" ? { "older-than": { type: "string" } } : {};
  const args = parse(argv, options, usage, { min: 0, max: 0 });
  const params: Record<string, unknown> = {};
  if (command === "doctor") params.fix = args.values.fix === true;
  const age = str(args.values["older-than"]);
  if (age !== undefined) params.olderThanMs = parseAge(age);
  const report = await withDaemon((client) => client.call<unknown>(command, params));
  if (args.json) printJson(report);
  else print(describe(command, report));
  if (command === "doctor") {
    const r = report as DoctorReport;
    return r.findings.length === 0 && (r.failed ?? []).length === 0 ? 0 : 1;
  }
  return 0;
}

function parseAge(text: string): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--older-than ${JSON.stringify(text)}: use a number with a unit, e.g. 30m, 12h, 7d (or 0)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? "ms") as "ms" | "s" | "m" | "h" | "d"];
  return Number(match[1]) * unit;
}

function describe(command: string, report: unknown): string {
  const p = paint();
  const finding = (f: Finding) => `  ${p.yellow(f.kind)}${f.name ? ` ${p.bold(f.name)}` : ""}: ${f.detail}${f.fix ? p.dim(` (fix: ${f.fix})`) : ""}`;
  if (command === "doctor") {
    const r = report as DoctorReport;
    const lines: string[] = [];
    if (r.fixed && r.fixed.length > 0) lines.push(p.green(`fixed ${r.fixed.length}:`), ...r.fixed.map(finding));
    if (r.failed && r.failed.length > 0) lines.push(p.red(`could not fix ${r.failed.length}:`), ...r.failed.map((f) => `${finding(f)} ${p.red(f.error)}`));
    if (r.findings.length > 0) lines.push(p.yellow(`${r.findings.length} problem(s)${r.fixed ? " remain" : ""}:`), ...r.findings.map(finding), ...(r.fixed ? [] : ["Run `troupe doctor --fix` to repair them."]));
    else lines.push(p.green("no problems: the store and the world agree"));
    return lines.join("\n");
  }
  if (command === "adopt") {
    const r = report as { adopted: BuilderStatus[]; skipped: Array<{ name: string; id: string; reason: string }> };
    const lines = r.adopted.map((b) => `adopted ${p.bold(b.name)} (${b.state}, pid ${b.pid ?? "-"})`);
    lines.push(...r.skipped.map((s) => `skipped ${p.bold(s.name)} (${s.id}): ${s.reason}`));
    return lines.length > 0 ? lines.join("\n") : "no orphan pty hosts to adopt";
  }
  const r = report as { removed: Array<{ name: string; id: string }> };
  return r.removed.length > 0 ? `pruned ${r.removed.length} tombstone(s): ${r.removed.map((t) => t.name).join(", ")}` : "no tombstones old enough to prune";
}

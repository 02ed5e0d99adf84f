/** The maintenance reports on a terminal, as `troupe doctor|adopt|gc` and the REPL's `.doctor` word them. */
import type { AdoptReport, DoctorFinding, DoctorReport, GcReport } from "../shared/contract.js";
import type { Paint } from "./paint.js";

/** `fixHint` says how to repair what remains (the CLI and the REPL say it their own way). */
export function doctorText(report: DoctorReport, p: Paint, fixHint: string): string {
  const finding = (f: DoctorFinding) => `  ${p.yellow(f.kind)}${f.name ? ` ${p.bold(f.name)}` : ""}: ${f.detail}${f.fix ? p.dim(` (fix: ${f.fix})`) : ""}`;
  const lines: string[] = [];
  if (report.fixed && report.fixed.length > 0) lines.push(p.green(`fixed ${report.fixed.length}:`), ...report.fixed.map(finding));
  if (report.failed && report.failed.length > 0) lines.push(p.red(`could not fix ${report.failed.length}:`), ...report.failed.map((f) => `${finding(f)} ${p.red(f.error)}`));
  if (report.findings.length > 0) lines.push(p.yellow(`${report.findings.length} problem(s)${report.fixed ? " remain" : ""}:`), ...report.findings.map(finding), ...(report.fixed ? [] : [fixHint]));
  else lines.push(p.green("no problems: the store and the world agree"));
  return lines.join("\n");
}

export function adoptText(report: AdoptReport, p: Paint): string {
  const lines = report.adopted.map((b) => `adopted ${p.bold(b.name)} (${b.state}, pid ${b.pid ?? "-"})`);
  lines.push(...report.skipped.map((s) => `skipped ${p.bold(s.name)} (${s.id}): ${s.reason}`));
  return lines.length > 0 ? lines.join("\n") : "no orphan pty hosts to adopt";
}

export function gcText(report: GcReport): string {
  return report.removed.length > 0 ? `pruned ${report.removed.length} tombstone(s): ${report.removed.map((t) => t.name).join(", ")}` : "no tombstones old enough to prune";
}

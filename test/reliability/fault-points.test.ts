import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { faultPoints, type FaultPoint } from "../../src/index.js";
import { workspaceLayout } from "../../src/supervisor/layout.js";
import { invariantViolations } from "../helpers/invariants.js";
import { FAST, Harness } from "../helpers/supervisor.js";
import { runWithFault } from "../helpers/faults.js";
import { git } from "../helpers/workspace.js";

const ECHO = [process.execPath, "-e", "process.stdin.on('data', d => process.stdout.write('GOT ' + d)); setInterval(() => {}, 1 << 30)"];

type Op = "spawn" | "restart" | "stop" | "destroy" | "mail";
const opOf = (point: FaultPoint): Op => point.split(".")[0] as Op;

const checked: string[] = [];
afterAll(() => {
  console.log(`fault points × operations checked: ${checked.length} (${faultPoints.length} fault points; ${checked.join(", ")})`);
});

describe("the owner killed at every fault point", () => {
  it("lists the fault points in one place", () => {
    expect(faultPoints.length).toBeGreaterThanOrEqual(14);
    for (const op of ["spawn", "restart", "stop", "destroy", "mail"]) expect(faultPoints.some((p) => p.startsWith(`${op}.`))).toBe(true);
  });

  for (const point of faultPoints) {
    it(`${point}: a new supervisor leaves the world consistent (invariants A–D) and loses nothing acknowledged`, async () => {
      const op = opOf(point);
      const h = await Harness.start(FAST);
      try {
        // The state the operation starts from.
        if (op !== "spawn") await h.supervisor.spawn({ name: "b", cmd: ECHO });
        if (op === "restart") await h.supervisor.stop("b");
        await h.supervisor.close();

        const run = await runWithFault(h.repo, op, `${point}=crash`);
        expect(run.signal, `the child should die at ${point}; it printed:\n${run.out}`).toBe("SIGKILL");

        await h.open(FAST);
        const st = await h.supervisor.get("b").catch(() => null);
        switch (op) {
          case "spawn":
            expect(st === null || st.state === "working" || st.state === "destroyed", `spawn left ${st?.state}`).toBe(true);
            break;
          case "restart":
            expect(st?.state).toBe("working");
            break;
          case "stop":
            expect(st?.state).toBe("completed");
            break;
          case "destroy":
            expect(st?.state).toBe("destroyed");
            expect(git(h.repo, "branch", "--list", "troupe/b")).toBe("");
            break;
          case "mail": {
            const inbox = await h.supervisor.mail({ name: "b" });
            for (const id of run.acked) expect(inbox.map((m) => m.id)).toContain(id);
            const transcript = readFileSync(workspaceLayout(h.repo).transcriptPath("b", st!.id), "utf8");
            for (const id of run.acked) expect((transcript.match(new RegExp(`GOT [^\\n]*${id}`, "g")) ?? []).length).toBeLessThanOrEqual(1);
            break;
          }
        }
        expect(await invariantViolations(h.repo, h.supervisor)).toEqual([]);
        expect((await h.supervisor.doctor()).findings).toEqual([]);
        checked.push(`${point}×${op}`);
      } finally {
        await h.dispose();
      }
    });
  }
});

import { readFileSync } from "node:fs";

export interface ExitStatus {
  code: number | null;
  signal: string | null;
  at?: number;
}

/** The environment an agent inherits: ours, minus our own troupe identity. */
export function stringEnv(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    // The parent's own troupe identity must never leak into a child agent.
    if (value !== undefined && !key.startsWith("TROUPE_")) out[key] = value;
  }
  return out;
}

export function readExitStatus(path: string): ExitStatus | null {
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as ExitStatus;
    return { code: parsed.code ?? null, signal: parsed.signal ?? null };
  } catch {
    return null;
  }
}

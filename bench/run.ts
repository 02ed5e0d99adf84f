/**
 * `npm run bench`: runs every bench/*.bench.ts module in turn (each exports
 * `run(): Promise<void>` that prints its table). Arguments filter modules by
 * name: `npm run bench -- storage`.
 */
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ensureBenchDeps } from "./deps.js";

const here = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const modules = readdirSync(here)
  .filter((name) => name.endsWith(".bench.ts"))
  .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
  .sort();

console.log(`# troupe benchmarks — ${new Date().toISOString()} — node ${process.version}, ${process.platform}/${process.arch}`);
ensureBenchDeps();
let failed = 0;
for (const name of modules) {
  const started = Date.now();
  try {
    const mod = (await import(pathToFileURL(join(here, name)).href)) as { run?: () => Promise<void> };
    if (typeof mod.run !== "function") throw new Error(`${name} exports no run()`);
    await mod.run();
    console.log(`\n(${name}: ${((Date.now() - started) / 1000).toFixed(1)} s)`);
  } catch (error) {
    failed++;
    console.error(`\n${name} failed: ${(error as Error)?.stack ?? error}`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;

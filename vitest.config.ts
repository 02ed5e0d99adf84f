import { defineConfig } from "vitest/config";

// Tests drive real processes, PTYs and git; on a loaded 2-core machine they need
// generous deadlines (they wait for events, never for wall-clock guesses).
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    setupFiles: ["test/helpers/setup-env.ts"],
  },
});

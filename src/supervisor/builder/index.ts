/** One builder's whole life (DESIGN §2: supervisor/builder/). */
export { BuilderRuntime, type BuilderInit } from "./runtime.js";
export type { BuilderEnvironment, NoticeKind } from "./environment.js";
export { statusOf } from "./projection.js";

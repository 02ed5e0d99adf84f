import { pino, type Logger } from "pino";

export type { Logger };

/**
 * The root logger. pino JSON on stderr (or a file given by the host program);
 * `TROUPE_LOG_LEVEL` overrides the level. Child loggers carry the actor's
 * `name` and `id` so every line about a builder can be traced to it.
 */
export function createLogger(options: { level?: string; destination?: string; base?: Record<string, unknown> } = {}): Logger {
  const level = process.env.TROUPE_LOG_LEVEL ?? options.level ?? "info";
  const destination = options.destination
    ? pino.destination({ dest: options.destination, mkdir: true, sync: false })
    : pino.destination(2);
  return pino({ level, base: { pid: process.pid, ...options.base } }, destination);
}

export function actorLogger(parent: Logger, actor: { name: string; id: string }): Logger {
  return parent.child({ actor: actor.name, actorId: actor.id });
}

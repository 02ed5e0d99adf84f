/**
 * Checks of a method's params at the wire's door: each check takes a value
 * from JSON.parse and returns it typed, or throws INVALID_ARGUMENT naming the
 * field. `params(shape)` keeps only the fields of its shape, so unknown ones
 * never reach the supervisor (DESIGN §9: ignored, not passed on).
 */
import { TroupeError } from "../shared/errors.js";

export type Check<T> = (value: unknown, field: string) => T;

/** A check that lets an absent (undefined or null) value through as absent. */
export interface OptionalCheck<T> {
  (value: unknown, field: string): T | undefined;
  readonly optional: true;
}

type AnyCheck = Check<unknown> | OptionalCheck<unknown>;
type Shape = Record<string, AnyCheck>;

/** The params a shape accepts: its optional checks' fields are optional. */
export type Checked<S extends Shape> = {
  [K in keyof S as S[K] extends OptionalCheck<unknown> ? never : K]: S[K] extends Check<infer T> ? T : never;
} & {
  [K in keyof S as S[K] extends OptionalCheck<unknown> ? K : never]?: S[K] extends OptionalCheck<infer T> ? T : never;
};

/** The refusal of one field (the server replies INVALID_PARAMS with it). */
export function invalid(message: string, field: string, details: Record<string, unknown> = {}): TroupeError {
  return new TroupeError("INVALID_ARGUMENT", message, { field, ...details });
}

export function params<S extends Shape>(shape: S): (raw: Record<string, unknown>) => Checked<S> {
  return (raw) => {
    const out: Record<string, unknown> = {};
    for (const [field, check] of Object.entries(shape)) {
      const value = raw[field];
      if (value === undefined && !("optional" in check)) throw invalid(`${field} is required`, field);
      const checked = check(value, field);
      if (checked !== undefined) out[field] = checked;
    }
    return out as Checked<S>;
  };
}

export function optional<T>(check: Check<T>): OptionalCheck<T> {
  return Object.assign((value: unknown, field: string) => (value === undefined || value === null ? undefined : check(value, field)), { optional: true as const });
}

export function str(maxBytes: number, opts: { nonEmpty?: boolean } = {}): Check<string> {
  return (value, field) => {
    if (typeof value !== "string") throw invalid(`${field} must be a string`, field);
    if (opts.nonEmpty && value.length === 0) throw invalid(`${field} must not be empty`, field);
    if (Buffer.byteLength(value) > maxBytes) throw invalid(`${field} is longer than ${maxBytes} bytes`, field, { limit: maxBytes });
    return value;
  };
}

export const bool: Check<boolean> = (value, field) => {
  if (typeof value !== "boolean") throw invalid(`${field} must be true or false`, field);
  return value;
};

export function oneOf<T extends string>(values: readonly T[]): Check<T> {
  return (value, field) => {
    if (typeof value !== "string" || !(values as readonly string[]).includes(value)) throw invalid(`${field} must be one of ${values.join(", ")}`, field);
    return value as T;
  };
}

export function strArray(maxItems: number, maxItemBytes: number): Check<string[]> {
  return (value, field) => {
    if (!Array.isArray(value) || value.length === 0 || value.length > maxItems) throw invalid(`${field} must be an array of 1 to ${maxItems} strings`, field);
    for (const item of value) {
      if (typeof item !== "string" || Buffer.byteLength(item) > maxItemBytes) throw invalid(`every ${field} entry must be a string of at most ${maxItemBytes} bytes`, field);
    }
    return [...(value as string[])];
  };
}

/** A non-empty list of `values`, without repeats. */
export function choiceArray<T extends string>(values: readonly T[]): Check<T[]> {
  return (value, field) => {
    if (!Array.isArray(value) || value.length === 0 || value.some((item) => typeof item !== "string" || !(values as readonly string[]).includes(item))) {
      throw invalid(`${field} must be a non-empty array of ${values.join(", ")}`, field);
    }
    return [...new Set(value as T[])];
  };
}

export function nonNegativeInteger(unit: string): Check<number> {
  return (value, field) => {
    if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0) throw invalid(`${field} must be a whole number of ${unit} ≥ 0`, field);
    return value;
  };
}

export const integer: Check<number> = (value, field) => {
  if (typeof value !== "number" || !Number.isInteger(value)) throw invalid(`${field} must be an integer`, field);
  return value;
};

import { TroupeError } from "../shared/errors.js";

/** DESIGN §11: names are safe as path segments, branch suffixes and addresses. */
const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Addresses with a meaning of their own can never be builder names. */
const RESERVED = new Set(["operator", "parent", "root"]);

export function validateBuilderName(name: unknown): string {
  if (typeof name !== "string" || name.length === 0) {
    throw new TroupeError("INVALID_NAME", "A builder needs a name: 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit.", { name });
  }
  if (!NAME_PATTERN.test(name)) {
    throw new TroupeError(
      "INVALID_NAME",
      `Invalid builder name ${JSON.stringify(name)}: use 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit (for example "fix-login").`,
      { name },
    );
  }
  // Names become git branch suffixes (troupe/<name>): keep them valid refs.
  if (name.includes("..") || name.endsWith(".") || name.endsWith(".lock")) {
    throw new TroupeError("INVALID_NAME", `Invalid builder name ${JSON.stringify(name)}: it must not contain "..", nor end with "." or ".lock" (it becomes the git branch troupe/${name}).`, { name });
  }
  if (RESERVED.has(name)) {
    throw new TroupeError("INVALID_NAME", `"${name}" is a reserved address; pick another builder name.`, { name });
  }
  return name;
}

export function validateRole(role: unknown): string | null {
  if (role === undefined || role === null) return null;
  if (typeof role !== "string" || !NAME_PATTERN.test(role)) {
    throw new TroupeError("INVALID_ARGUMENT", `Invalid role ${JSON.stringify(role)}: use the same characters as a name (a-z, 0-9, '.', '_', '-').`, { role });
  }
  return role;
}

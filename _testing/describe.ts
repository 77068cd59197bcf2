/**
 * How the testing helpers name a wrong value in an error message.
 *
 * @module
 */

/** A value, for an error message: its type, and the value when short. */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `a string ${JSON.stringify(value)}`;
  if (typeof value === "object") {
    return `an object of type ${value.constructor?.name ?? "Object"}`;
  }
  return `${typeof value} ${String(value)}`;
}

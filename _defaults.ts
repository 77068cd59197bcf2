/**
 * Defaults, limits and the validators that check options against them,
 * each defined once for the whole package. A leaf: it imports nothing from
 * the package, so every layer may use it.
 *
 * @module
 */

/**
 * The default port of {@linkcode serve} and of the program.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_PORT, 9990);
 * ```
 */
export const DEFAULT_PORT = 9990;

/**
 * The longest delay a timer option takes, in milliseconds (2^31 - 1, about
 * 24.8 days): longer ones would fire at once in JavaScript timers.
 *
 * @example A longer timer option is refused
 * ```ts
 * import { MAX_TIMER_DELAY, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_TIMER_DELAY, 2 ** 31 - 1);
 * assert.throws(
 *   () => serve({ port: 0, idleTimeout: MAX_TIMER_DELAY + 1 }, () => new EchoStream()),
 *   RangeError,
 * );
 * ```
 */
export const MAX_TIMER_DELAY = 2147483647;

/** The largest buffer size a connection option takes (1 GiB). */
export const MAX_BUFFER_SIZE: number = 2 ** 30;

/**
 * What a value is, for an error message: `null`, a primitive's `typeof`, or
 * an object's class name.
 */
export function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ?? "object";
}

/** How {@linkcode checkNumber} bounds a value. */
export interface NumberRange {
  /** The smallest value allowed. */
  min: number;
  /** The largest finite value allowed. */
  max: number;
  /** Whether the value must be an integer. */
  integer?: boolean;
  /** Whether `Infinity` is allowed too. */
  infinity?: boolean;
  /** Words after "an integer"/"a number" that name the unit (" of milliseconds"). */
  unit?: string;
}

/**
 * Checks a numeric option: a `TypeError` when it is not a number, a
 * `RangeError` naming the range when it is out of it.
 *
 * @param action What fails ("serve", "connect"), for the message.
 * @param name The option's name.
 * @param value The value given.
 * @param range The range allowed.
 * @returns The value.
 */
export function checkNumber(
  action: string,
  name: string,
  value: unknown,
  range: NumberRange,
): number {
  const { min, max, integer = false, infinity = false, unit = "" } = range;
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot ${action} as ${name} must be a number: current type is ${typeof value}`,
    );
  }
  const ok = value === Infinity
    ? infinity
    : value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!ok) {
    throw new RangeError(
      `Cannot ${action} as ${name} must be ${
        integer ? "an integer" : "a number"
      }${unit} from ${min} to ${max}${
        infinity ? ", or Infinity" : ""
      }: current value is ${value}`,
    );
  }
  return value;
}

/**
 * Checks a timer option in milliseconds, from `min` to
 * {@linkcode MAX_TIMER_DELAY} (and `Infinity` when allowed).
 */
export function checkTimer(
  action: string,
  name: string,
  value: unknown,
  min: number,
  infinity: boolean,
): number {
  return checkNumber(action, name, value, {
    min,
    max: MAX_TIMER_DELAY,
    infinity,
    unit: " of milliseconds",
  });
}

/** Checks an optional boolean option; `undefined` is `false`. */
export function checkBoolean(
  action: string,
  name: string,
  value: unknown,
): boolean {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(
      `Cannot ${action} as ${name} must be a boolean: current type is ${typeof value}`,
    );
  }
  return value === true;
}

/** Checks a port: an integer from `min` (0 lets the OS choose) to 65535. */
export function checkPort(action: string, port: unknown, min: 0 | 1): number {
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < min ||
    port > 65535
  ) {
    throw new RangeError(
      `Cannot ${action} as the port must be an integer from ${min} to 65535: current value is ${
        typeof port === "number" ? port : describeType(port)
      }`,
    );
  }
  return port;
}

/** `host:port`, with an IPv6 address in brackets. */
export function formatHostPort(hostname: string, port: number): string {
  return hostname.includes(":") && !hostname.startsWith("[")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

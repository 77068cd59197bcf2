/**
 * Telling the network's errors from the program's: shared by the server,
 * which reports only the latter, and the services that end quietly when
 * their peer has gone.
 *
 * @module
 */

import { TruncatedFrameError } from "./framing.ts";

/**
 * Whether `error` says something about the network or the peer (a reset, a
 * hang-up, a timeout, our own close) rather than about the code.
 *
 * @param error Any error.
 * @returns `true` for the network's errors.
 *
 * @example A reset is the network's; a TypeError is the program's
 * ```ts
 * import { isNetworkError } from "./_errors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isNetworkError(new Deno.errors.ConnectionReset("reset")), true);
 * assert.equal(isNetworkError(new TypeError("bug")), false);
 * ```
 */
export function isNetworkError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    // The peer hung up in the middle of a message.
    error instanceof TruncatedFrameError ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}

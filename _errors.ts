/**
 * The errors more than one layer raises or tests, in a leaf that imports
 * nothing from the package: the frame errors (public through
 * `@x/sock/framing`), raised by the codecs and by the connection's pull
 * reader, and the test telling the network's errors from the program's,
 * shared by the server, which reports only the latter, and the services that
 * end quietly when their peer has gone.
 *
 * @module
 */

/**
 * A message longer than its limit: a line over `maxLineLength`, a message
 * over `maxLength`, or a frame over `maxFrameLength` or over what its length
 * field can express. Under `oversize: "discard"` the same error is handed to
 * `onOversize` instead of being thrown.
 *
 * @example Catch an oversized frame
 * ```ts
 * import { FrameTooLargeError, LengthPrefixDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([new Uint8Array([0, 0, 1, 0])])
 *   .pipeThrough(new LengthPrefixDecoderStream({ maxFrameLength: 16 }));
 * await assert.rejects(Array.fromAsync(frames), (error) => {
 *   assert.ok(error instanceof FrameTooLargeError);
 *   assert.equal(error.length, 256);
 *   assert.equal(error.limit, 16);
 *   return true;
 * });
 * ```
 */
export class FrameTooLargeError extends RangeError {
  /**
   * The length of the message, or for a delimited message still without its
   * delimiter a lower bound (the message then says "at least").
   */
  readonly length: number;
  /** The largest length allowed. */
  readonly limit: number;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param length The message's length (or a lower bound).
   * @param limit The largest length allowed.
   */
  constructor(message: string, length: number, limit: number) {
    super(message);
    this.name = "FrameTooLargeError";
    this.length = length;
    this.limit = limit;
  }
}

/**
 * Input that ended in the middle of a length-prefixed frame (or of its
 * header).
 *
 * @example Catch a truncated frame
 * ```ts
 * import { LengthPrefixDecoderStream, TruncatedFrameError } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([new Uint8Array([0, 0, 0, 9, 1, 2])])
 *   .pipeThrough(new LengthPrefixDecoderStream());
 * await assert.rejects(Array.fromAsync(frames), {
 *   name: "TruncatedFrameError",
 *   message: "Cannot decode frame as the input ended inside it: received 6 of 13 bytes",
 *   received: 6,
 *   expected: 13,
 * });
 * assert.ok(new TruncatedFrameError(6, 13) instanceof Error);
 * ```
 */
export class TruncatedFrameError extends Error {
  /** Bytes of the frame (header included) received before the end. */
  readonly received: number;
  /** Bytes the frame needed (header included), as far as known. */
  readonly expected: number;

  /**
   * Creates the error.
   *
   * @param received Bytes received before the end.
   * @param expected Bytes the frame needed.
   * @param message What failed; by default a sentence with both numbers.
   */
  constructor(received: number, expected: number, message?: string) {
    super(
      message ??
        `Cannot decode frame as the input ended inside it: received ${received} of ${expected} bytes`,
    );
    this.name = "TruncatedFrameError";
    this.received = received;
    this.expected = expected;
  }
}

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

/**
 * {@linkcode SyncEncoder}: an encoder that can also write a message straight
 * into a buffer it is given, which is how {@linkcode framed} encodes into
 * the connection's write buffer with no allocation per message.
 *
 * @module
 */

import type { SyncTransformer } from "../sync_transform.ts";

/**
 * A synchronous encoder, messages in and bytes out, that may also write a
 * message straight into a buffer: {@linkcode framed}'s `write()` then
 * encodes into the connection's write buffer with no allocation per
 * message. The encoders of this module ({@linkcode LineEncoder},
 * {@linkcode LengthPrefixEncoder}) have `encodeInto`; an encoder of your own
 * gets the same path by having it too, and works without it (each message
 * is then emitted by `transform()` and copied).
 *
 * @experimental
 * @typeParam In The messages.
 *
 * @example A "+"-prefixed line encoder that writes in place
 * ```ts
 * import { type SyncEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const plus: SyncEncoder<string> = {
 *   transform: (text, emit) => emit(new TextEncoder().encode(`+${text}\n`)),
 *   encodeInto(text, buffer, offset) {
 *     const { read, written } = new TextEncoder().encodeInto(
 *       `+${text}\n`,
 *       buffer.subarray(offset),
 *     );
 *     return read === text.length + 2 ? offset + written : -1;
 *   },
 * };
 * const buffer = new Uint8Array(16);
 * assert.equal(plus.encodeInto!("OK", buffer, 0), 4);
 * assert.equal(new TextDecoder().decode(buffer.subarray(0, 4)), "+OK\n");
 * assert.equal(plus.encodeInto!("far too long a line", buffer, 0), -1);
 * ```
 */
export interface SyncEncoder<In> extends SyncTransformer<In, Uint8Array> {
  /**
   * Writes the bytes `transform()` would emit for `message` into `buffer`
   * at `offset`, checking the message as `transform()` does.
   *
   * @param message The message.
   * @param buffer Where to write.
   * @param offset Where in `buffer` to start.
   * @returns The offset after the message, or -1 when it does not fit in
   * what is left of `buffer` (bytes written past `offset` are then ignored,
   * and the caller tries a larger buffer or `transform()`).
   */
  encodeInto?(message: In, buffer: Uint8Array, offset: number): number;
}

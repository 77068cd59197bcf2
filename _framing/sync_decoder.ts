/**
 * {@linkcode SyncDecoder}: a decoder that can also lend the memory of the
 * message it has under way, which is how {@linkcode framed} reads the rest of
 * a large message from the socket straight into it.
 *
 * @module
 */

import type { SyncTransformer } from "../sync_transform.ts";

/**
 * A synchronous decoder, bytes in and messages out, that may also lend the
 * memory of a message it has begun: {@linkcode framed} then reads the rest
 * of a large message from the socket straight into that memory, rather than
 * into a read buffer of its own from which `transform()` would copy it.
 * {@linkcode LengthPrefixDecoder} has `reserve` and `commit`; a decoder of
 * your own that knows how long its message is (a record of fixed size, a
 * bulk string whose length came first) gets the same path by having them
 * too, and works without them.
 *
 * `framed()` asks only while the peer sends fast (its reads fill their
 * buffer), and only for 16 KiB or more: less is read with what follows it
 * and handed to `transform()`.
 *
 * @experimental
 * @typeParam Out The messages.
 *
 * @example Records of 4 bytes, the rest of one read in place
 * ```ts
 * import { type SyncDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * class Records implements SyncDecoder<Uint8Array> {
 *   #record = new Uint8Array(4);
 *   #filled = 0;
 *   transform(chunk: Uint8Array, emit: (record: Uint8Array) => void): void {
 *     for (const byte of chunk) {
 *       this.#record[this.#filled++] = byte;
 *       if (this.#filled === 4) this.#emit(emit);
 *     }
 *   }
 *   reserve(room: number): Uint8Array | undefined {
 *     if (this.#filled === 0) return undefined; // between records
 *     return this.#record.subarray(this.#filled, Math.min(4, this.#filled + room));
 *   }
 *   commit(n: number, emit: (record: Uint8Array) => void): void {
 *     this.#filled += n;
 *     if (this.#filled === 4) this.#emit(emit);
 *   }
 *   #emit(emit: (record: Uint8Array) => void): void {
 *     emit(this.#record);
 *     this.#record = new Uint8Array(4);
 *     this.#filled = 0;
 *   }
 * }
 *
 * const records = new Records();
 * const out: Uint8Array[] = [];
 * records.transform(new Uint8Array([1, 2, 3, 4, 5]), (r) => out.push(r));
 * const rest = records.reserve(1024)!; // the 3 bytes the second one lacks
 * rest.set([6, 7, 8]);
 * records.commit(3, (r) => out.push(r));
 * assert.deepEqual(out, [
 *   new Uint8Array([1, 2, 3, 4]),
 *   new Uint8Array([5, 6, 7, 8]),
 * ]);
 * ```
 */
export interface SyncDecoder<Out> extends SyncTransformer<Uint8Array, Out> {
  /**
   * Memory for the next bytes of the message under way, or `undefined` when
   * there is none (or the decoder would rather have the bytes through
   * `transform()`). The caller writes up to its length there and then calls
   * {@linkcode SyncDecoder.commit}; it should end where the message does,
   * so that the next message's bytes still go to `transform()`.
   *
   * @param room The most the caller will write at once: memory reserved
   * ahead of the bytes is memory a peer that stalls makes the decoder hold.
   * @returns A view of at most `room` bytes, or `undefined`.
   */
  reserve?(room: number): Uint8Array | undefined;
  /**
   * Takes the `n` bytes written at the start of what
   * {@linkcode SyncDecoder.reserve} returned, as `transform()` would take
   * them, emitting the message they complete.
   *
   * @param n How many bytes were written.
   * @param emit Hands one message on.
   */
  commit?(n: number, emit: (message: Out) => void): void;
}

/**
 * The upper-case service: {@linkcode UpperCaseStream} and the byte-level
 * {@linkcode upperCase} it runs, a word at a time.
 *
 * ```ts
 * import { upperCase } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   new TextDecoder().decode(upperCase(new TextEncoder().encode("hi"))),
 *   "HI",
 * );
 * ```
 *
 * @module
 */

import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";

/** Shared by every `UpperCaseStream`: it keeps no state. */
const UPPER_IN_PLACE: SyncTransformer<Uint8Array, Uint8Array> = {
  input: "overwrite",
  transform(chunk, emit) {
    upperCaseInPlace(chunk);
    emit(chunk);
  },
};

/**
 * Upper-cases the ASCII letters `a` to `z` and passes every other byte on
 * unchanged, so UTF-8 text and binary data come through intact under any
 * chunking.
 *
 * As a connection's service (`serve()`, `Connection.serve()`) it works in
 * place, in the engine's reused read buffer (its transformer declares
 * {@linkcode SyncTransformer.input} `"overwrite"`): no allocation per read.
 * As a web stream it upper-cases a copy of each chunk and never modifies
 * the chunk it was given.
 *
 * @example Upper-case bytes
 * ```ts
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const bytes = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([0x61, 0x7a, 0xc3, 0xa9, 0x00])])
 *     .pipeThrough(new UpperCaseStream()),
 * );
 * assert.deepEqual(bytes, [new Uint8Array([0x41, 0x5a, 0xc3, 0xa9, 0x00])]);
 * ```
 */
export class UpperCaseStream
  extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super(UPPER_IN_PLACE);
  }
}

/**
 * Upper-cases the ASCII letters `a` to `z` in `bytes`, the byte-level work of
 * {@linkcode UpperCaseStream}.
 *
 * @param bytes The input; never modified.
 * @returns `bytes` itself when it holds no lower-case ASCII letter, a changed
 * copy otherwise.
 *
 * @example Upper-case a UTF-8 string's bytes
 * ```ts
 * import { upperCase } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const bytes = upperCase(new TextEncoder().encode("ça va"));
 * assert.equal(new TextDecoder().decode(bytes), "çA VA");
 * ```
 */
export function upperCase(bytes: Uint8Array): Uint8Array {
  const length = bytes.length;
  // Scan first: text that is already upper case, and most binary data,
  // needs no copy at all. Four bytes at a time where they are aligned.
  let i = 0;
  const head = Math.min(length, (4 - (bytes.byteOffset & 3)) & 3);
  while (i < head && !isLower(bytes[i]!)) i++;
  if (i === head && length - i >= 4) {
    const words = new Int32Array(
      bytes.buffer,
      bytes.byteOffset + i,
      (length - i) >>> 2,
    );
    let w = 0;
    while (w < words.length && lowerMask(words[w]!) === 0) w++;
    i += w << 2;
  }
  while (i < length && !isLower(bytes[i]!)) i++;
  if (i === length) return bytes;

  // The copy is aligned, being at offset 0 of its own buffer; the input is
  // read a word at a time too when it is aligned, else copied first.
  const out = new Uint8Array(length);
  const words = new Int32Array(out.buffer, 0, length >>> 2);
  const aligned = (bytes.byteOffset & 3) === 0;
  let source: Int32Array<ArrayBufferLike> = words;
  if (aligned) {
    source = new Int32Array(bytes.buffer, bytes.byteOffset, words.length);
  } else {
    out.set(bytes);
  }
  for (let w = 0; w < words.length; w++) {
    const word = source[w]!;
    // A letter's mask byte is 0x80; shifted right by two it is 0x20, the
    // bit that tells lower from upper case.
    words[w] = word ^ (lowerMask(word) >>> 2);
  }
  for (let j = words.length << 2; j < length; j++) {
    const byte = bytes[j]!;
    out[j] = isLower(byte) ? byte - 0x20 : byte;
  }
  return out;
}

/**
 * Upper-cases the ASCII letters `a` to `z` of `bytes` in place, a word at
 * a time where `bytes` is aligned to four bytes (as a read buffer is).
 *
 * @param bytes The bytes to change.
 */
export function upperCaseInPlace(bytes: Uint8Array): void {
  const length = bytes.length;
  let i = 0;
  const head = Math.min(length, (4 - (bytes.byteOffset & 3)) & 3);
  for (; i < head; i++) {
    const byte = bytes[i]!;
    if (isLower(byte)) bytes[i] = byte - 0x20;
  }
  const count = (length - i) >>> 2;
  if (count > 0) {
    const words = new Int32Array(bytes.buffer, bytes.byteOffset + i, count);
    for (let w = 0; w < count; w++) {
      const word = words[w]!;
      const mask = lowerMask(word);
      if (mask !== 0) words[w] = word ^ (mask >>> 2);
    }
    i += count << 2;
  }
  for (; i < length; i++) {
    const byte = bytes[i]!;
    if (isLower(byte)) bytes[i] = byte - 0x20;
  }
}

function isLower(byte: number): boolean {
  return byte >= 0x61 && byte <= 0x7a;
}

/**
 * For each of the four bytes of `word`, 0x80 if it is `a`-`z`, else 0. The
 * low seven bits plus 0x1f carry into the top bit from 0x61 up, plus 0x05
 * from 0x7b up; a byte with its top bit set is never a letter.
 */
function lowerMask(word: number): number {
  const low = word & 0x7f7f7f7f;
  return (low + 0x1f1f1f1f) & ~(low + 0x05050505) & ~word & 0x80808080;
}

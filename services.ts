/**
 * The classic per-connection services as web `TransformStream`s: upper-case
 * and echo. They work in any pipe, and over a connection through
 * {@linkcode ConnStreams}.
 *
 * ```ts
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const text = await new Response(
 *   ReadableStream.from(["héllo, ", "wörld"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new UpperCaseStream()),
 * ).text();
 * assert.equal(text, "HéLLO, WöRLD");
 * ```
 *
 * @module
 */

import { SyncTransformStream } from "./sync_transform.ts";

/**
 * Upper-cases the ASCII letters `a` to `z` and passes every other byte on
 * unchanged, so UTF-8 text and binary data come through intact under any
 * chunking. A chunk without a lower-case letter is passed on as it is;
 * otherwise a changed copy is, and the input chunk is never modified.
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
    super({ transform: (chunk, emit) => emit(upperCase(chunk)) });
  }
}

/**
 * The identity service: passes every chunk on as it is, without a copy.
 *
 * @example Echo over a connection
 * ```ts
 * import { EchoStream } from "@x/sock/services";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new ConnStreams(conn);
 *   return readable.pipeThrough(new EchoStream()).pipeTo(writable);
 * });
 * const client = new ConnStreams(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await ReadableStream.from([new Uint8Array([1, 2, 3])])
 *   .pipeTo(client.writable);
 * const echoed = await new Response(client.readable).bytes();
 * assert.deepEqual(echoed, new Uint8Array([1, 2, 3]));
 * await served;
 * ```
 */
export class EchoStream extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({ transform: (chunk, emit) => emit(chunk) });
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

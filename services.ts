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
export class UpperCaseStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({
      transform: (chunk, controller) => controller.enqueue(upperCase(chunk)),
    });
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
export class EchoStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super();
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
  let i = 0;
  // Scan first: text that is already upper case, and most binary data,
  // needs no copy at all.
  while (i < length && (bytes[i]! < 0x61 || bytes[i]! > 0x7a)) i++;
  if (i === length) return bytes;
  const out = bytes.slice();
  for (; i < length; i++) {
    const byte = out[i]!;
    if (byte >= 0x61 && byte <= 0x7a) out[i] = byte - 0x20;
  }
  return out;
}

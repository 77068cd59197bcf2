/**
 * The client program's `-C, --crlf`: each line feed of the input is sent
 * as CR LF.
 *
 * @module
 */

/**
 * Turns each line feed not already preceded by a carriage return into CR LF
 * (the client's `-C, --crlf`), across chunk boundaries.
 *
 * @example
 * ```ts
 * import { CrlfStream } from "./crlf_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = ["a\n", "b\r", "\nc\n"].map((s) => new TextEncoder().encode(s));
 * const out = ReadableStream.from(chunks).pipeThrough(new CrlfStream());
 * assert.equal(await new Response(out).text(), "a\r\nb\r\nc\r\n");
 * ```
 */
export class CrlfStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    let lastWasCr = false;
    super({
      transform(chunk, controller) {
        let extra = 0;
        for (let i = 0; i < chunk.length; i++) {
          if (
            chunk[i] === 0x0a && !(i === 0 ? lastWasCr : chunk[i - 1] === 0x0d)
          ) {
            extra++;
          }
        }
        if (chunk.length === 0) return;
        if (extra === 0) {
          lastWasCr = chunk[chunk.length - 1] === 0x0d;
          controller.enqueue(chunk);
          return;
        }
        const out = new Uint8Array(chunk.length + extra);
        let j = 0;
        for (let i = 0; i < chunk.length; i++) {
          const byte = chunk[i]!;
          if (byte === 0x0a && !(i === 0 ? lastWasCr : chunk[i - 1] === 0x0d)) {
            out[j++] = 0x0d;
          }
          out[j++] = byte;
        }
        lastWasCr = chunk[chunk.length - 1] === 0x0d;
        controller.enqueue(out);
      },
    });
  }
}

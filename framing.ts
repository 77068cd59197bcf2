/**
 * Message framing: TCP delivers bytes, not messages, and one read may hold
 * half a message or three. This module turns bytes into messages and back,
 * under any chunking, with a limit on every message read.
 *
 * For a protocol over a connection, start with {@linkcode framed}: iterate
 * the messages, `write()` the answers. Every message of one read is handed
 * out with a function call, with no further wait, each answer is encoded
 * straight into the connection's write buffer, and the answers to one read
 * leave in one system call: no stream chunk per message, and no allocation
 * per answer where the encoder writes in place, as the line and
 * length-prefix encoders do (bench/README.md has the figures against a
 * hand-written read loop).
 *
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * // A line server: "sum 1 2 3" answers "6"; an empty line answers "0".
 * await using server = serve({ port: 0 }, async (connection) => {
 *   const messages = framed(connection, lines({ text: true }));
 *   for await (const line of messages) {
 *     const words = line.split(" ").slice(1);
 *     await messages.write(`${words.reduce((sum, w) => sum + Number(w), 0)}`);
 *   }
 *   await messages.closeWrite(); // the client's FIN came: ours follows
 * });
 *
 * const client = framed(
 *   await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port }),
 *   lines({ text: true }),
 * );
 * await client.write("sum 1 2 3");
 * await client.write("");
 * await client.closeWrite();
 * assert.deepEqual(await Array.fromAsync(client), ["6", "0"]);
 * ```
 *
 * Each framing comes in three layers:
 *
 * - Messages over a connection: {@linkcode framed} with a
 *   {@linkcode lines} (`lines({ text: true })` for strings),
 *   {@linkcode delimited} or {@linkcode lengthPrefixed} codec, or a
 *   {@linkcode Codec} of your own, which gets the same fast path.
 * - A synchronous core, bytes in and messages out with no streams, for hot
 *   loops and for a connection's engine, which runs it inside its read loop:
 *   {@linkcode LineDecoder}, {@linkcode DelimiterDecoder},
 *   {@linkcode LengthPrefixDecoder} and their encoders, and
 *   {@linkcode TextLineDecoder} for lines as strings. Each is a
 *   {@linkcode SyncTransformer}.
 * - Streams wrapping the core, to compose with `pipeThrough`:
 *   {@linkcode LineDecoderStream}, {@linkcode TextLineDecoderStream},
 *   {@linkcode DelimiterDecoderStream}, {@linkcode LengthPrefixDecoderStream}
 *   and their encoders; {@linkcode BatchStream} hands on all the messages of
 *   a chunk at once. A stream chunk per message costs microseconds: for
 *   composition, not for speed.
 *
 * Lines end in "\n" or "\r\n"; other messages end in any byte sequence;
 * length prefixes are 1, 2, 3, 4 or 8 bytes of either byte order, with a field
 * offset, a length adjustment and presets for real protocols
 * ({@linkcode LENGTH_PREFIX_PRESETS}). A message read over its limit
 * (`maxLineLength`, `maxLength`, `maxFrameLength`) is an error, or with
 * `oversize: "discard"` is dropped, reported once and decoding goes on with
 * the next message. Messages written have a limit of their own,
 * `maxEncodedLength`, unlimited unless set: a short input limit never cuts
 * a long answer.
 *
 * To read text, decode lines with {@linkcode TextLineDecoderStream} (or
 * `lines({ text: true })`), not a {@linkcode LineDecoderStream} piped into
 * a `TextDecoderStream`: that skips empty chunks, so it loses every empty
 * line.
 *
 * ```ts
 * import { TextLineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const lines = await Array.fromAsync(
 *   ReadableStream.from(["one\r\ntw", "o\n\n", "three"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new TextLineDecoderStream()),
 * );
 * assert.deepEqual(lines, ["one", "two", "", "three"]);
 * ```
 *
 * The codecs use only web-standard APIs: they load and decode without the
 * `Deno` global (`framed()` needs a Deno connection only when given one).
 *
 * @module
 */

export { FrameTooLargeError, TruncatedFrameError } from "./_errors.ts";
export type { SyncEncoder } from "./_framing/sync_encoder.ts";
export type { SyncDecoder } from "./_framing/sync_decoder.ts";
export type {
  DelimiterOptions,
  LineOptions,
  OversizeOptions,
  OversizePolicy,
  TextLineOptions,
} from "./_framing/options.ts";
export {
  LENGTH_PREFIX_PRESETS,
  type LengthPrefixOptions,
  type LengthPrefixPreset,
} from "./_framing/length_prefix_layout.ts";
export {
  LineDecoder,
  LineDecoderStream,
  LineEncoder,
  LineEncoderStream,
} from "./_framing/line.ts";
export {
  TextLineDecoder,
  TextLineDecoderStream,
} from "./_framing/text_line.ts";
export {
  DelimiterDecoder,
  DelimiterDecoderStream,
  DelimiterEncoder,
  DelimiterEncoderStream,
} from "./_framing/delimiter.ts";
export {
  LengthPrefixDecoder,
  LengthPrefixDecoderStream,
  LengthPrefixEncoder,
  LengthPrefixEncoderStream,
} from "./_framing/length_prefix.ts";
export { BatchStream } from "./_framing/batch.ts";
export {
  type Codec,
  delimited,
  lengthPrefixed,
  lines,
} from "./_framing/codec.ts";
export {
  type Framed,
  framed,
  type FramedOptions,
  type FramedTarget,
} from "./_framing/framed.ts";

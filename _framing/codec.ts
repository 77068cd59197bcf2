/**
 * Codecs: the pair of stream factories {@linkcode framed} takes, and the
 * three this module makes ({@linkcode lines}, {@linkcode delimited},
 * {@linkcode lengthPrefixed}).
 *
 * @module
 */

import {
  DelimiterDecoder,
  DelimiterDecoderStream,
  DelimiterEncoder,
  DelimiterEncoderStream,
} from "./delimiter.ts";
import {
  LengthPrefixDecoder,
  LengthPrefixDecoderStream,
  LengthPrefixEncoder,
  LengthPrefixEncoderStream,
} from "./length_prefix.ts";
import type {
  LengthPrefixOptions,
  LengthPrefixPreset,
} from "./length_prefix_layout.ts";
import {
  LineDecoder,
  LineDecoderStream,
  LineEncoder,
  LineEncoderStream,
} from "./line.ts";
import type {
  DelimiterOptions,
  LineOptions,
  OversizeOptions,
  TextLineOptions,
} from "./options.ts";
import { TextLineDecoder, TextLineDecoderStream } from "./text_line.ts";
import type { SyncEncoder } from "./sync_encoder.ts";
import type { SyncDecoder } from "./sync_decoder.ts";

/**
 * A pair of factories for the two directions of a framing, as
 * {@linkcode lines}, {@linkcode delimited} and {@linkcode lengthPrefixed}
 * make. Any object of this shape works with {@linkcode framed}.
 *
 * The fast path is open to every codec: `framed()` runs a codec's
 * synchronous cores directly — one function call per read and per message,
 * no stream — when it has `syncDecoder`/`syncEncoder`, or else when its
 * streams are {@linkcode SyncTransformStream}s (it takes their
 * `transformer`). Any other stream is piped, a stream chunk per message.
 *
 * @typeParam In What the encoder accepts.
 * @typeParam Out What the decoder yields.
 *
 * @example A codec of your own: CRLF lines in, raw bytes out
 * ```ts
 * import { type Codec, LineDecoderStream } from "@x/sock/framing";
 *
 * const codec: Codec<Uint8Array> = {
 *   decoder: (overrides) => new LineDecoderStream({ ...overrides }),
 *   encoder: () => new TransformStream<Uint8Array, Uint8Array>(),
 * };
 * void codec;
 * ```
 */
export interface Codec<In = Uint8Array, Out = Uint8Array> {
  /**
   * A new stream from bytes to messages.
   *
   * @param overrides Oversize settings that replace the codec's own, as
   * {@linkcode framed} passes them; a codec without limits may ignore them.
   */
  decoder(overrides?: OversizeOptions): TransformStream<Uint8Array, Out>;
  /** A new stream from messages to bytes. */
  encoder(): TransformStream<In, Uint8Array>;
  /**
   * A new synchronous decoder, the same as `decoder()`'s without the
   * stream: what {@linkcode framed} runs when it is there.
   *
   * @param overrides As for `decoder()`.
   */
  syncDecoder?(overrides?: OversizeOptions): SyncDecoder<Out>;
  /**
   * A new synchronous encoder, the same as `encoder()`'s without the
   * stream: what {@linkcode framed} runs when it is there.
   */
  syncEncoder?(): SyncEncoder<In>;
}

function withOverrides<T extends OversizeOptions | TextLineOptions>(
  options: T,
  overrides: OversizeOptions | undefined,
): T {
  if (overrides === undefined) return options;
  const merged = { ...options };
  if (overrides.oversize !== undefined) merged.oversize = overrides.oversize;
  if (overrides.onOversize !== undefined) {
    merged.onOversize = overrides.onOversize;
  }
  return merged;
}

/**
 * The line codec in text mode, for {@linkcode framed}: each line read is a
 * string, empty lines are `""` and a character split across reads is
 * whole (see {@linkcode TextLineDecoder}); lines written are strings or
 * bytes, as in the bytes mode.
 *
 * @param options `text: true`, and the limits, delimiter handling,
 * newline, oversize policy and UTF-8 handling, checked now.
 * @returns Factories of {@linkcode TextLineDecoderStream} and
 * {@linkcode LineEncoderStream}.
 *
 * @example Text lines, the blank one kept
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const messages = framed(
 *   {
 *     readable: ReadableStream.from([new TextEncoder().encode("a: 1\r\n\r\nbody\n")]),
 *     writable: new WritableStream(),
 *   },
 *   lines({ text: true }),
 * );
 * assert.deepEqual(await Array.fromAsync(messages), ["a: 1", "", "body"]);
 * ```
 */
export function lines(
  options: TextLineOptions & { text: true },
): Codec<Uint8Array | string, string>;
/**
 * The line codec, for {@linkcode framed}: lines read are bytes; with
 * `text: true` (the other overload) they are strings.
 *
 * @param options The decoding limit (`maxLineLength`), the encoding one
 * (`maxEncodedLength`, unlimited by default), delimiter handling, newline
 * and oversize policy, checked now.
 * @returns Factories of {@linkcode LineDecoderStream} and
 * {@linkcode LineEncoderStream}.
 *
 * @example A codec's two streams
 * ```ts
 * import { lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const codec = lines({ maxLineLength: 80, newline: "\r\n" });
 * const text = await new Response(
 *   ReadableStream.from(["hi"]).pipeThrough(codec.encoder()),
 * ).text();
 * assert.equal(text, "hi\r\n");
 * ```
 */
export function lines(
  options?: LineOptions & { text?: false },
): Codec<Uint8Array | string>;
export function lines(
  options:
    | LineOptions & { text?: false }
    | TextLineOptions & { text: true } = {},
): Codec<Uint8Array | string, Uint8Array | string> {
  const { text } = options;
  if (text !== undefined && typeof text !== "boolean") {
    throw new TypeError(
      `Cannot create line codec as text must be a boolean: current type is ${
        text === null ? "null" : typeof text
      }`,
    );
  }
  if (options.text) {
    const textOptions: TextLineOptions = options;
    const encoding: LineOptions = {
      newline: options.newline,
      maxEncodedLength: options.maxEncodedLength,
    };
    new TextLineDecoder(textOptions);
    new LineEncoder(encoding);
    return {
      decoder: (overrides) =>
        new TextLineDecoderStream(withOverrides(textOptions, overrides)),
      encoder: () => new LineEncoderStream(encoding),
      syncDecoder: (overrides) =>
        new TextLineDecoder(withOverrides(textOptions, overrides)),
      syncEncoder: () => new LineEncoder(encoding),
    };
  }
  new LineDecoder(options);
  new LineEncoder(options);
  return {
    decoder: (overrides) =>
      new LineDecoderStream(withOverrides(options, overrides)),
    encoder: () => new LineEncoderStream(options),
    syncDecoder: (overrides) =>
      new LineDecoder(withOverrides(options, overrides)),
    syncEncoder: () => new LineEncoder(options),
  };
}

/**
 * The delimiter codec, for {@linkcode framed}.
 *
 * @param options The delimiter, the decoding limit (`maxLength`), the
 * encoding one (`maxEncodedLength`, unlimited by default) and oversize
 * policy, checked now.
 * @returns Factories of {@linkcode DelimiterDecoderStream} and
 * {@linkcode DelimiterEncoderStream}.
 *
 * @example NUL-terminated messages
 * ```ts
 * import { delimited } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const codec = delimited({ delimiter: "\0" });
 * const messages = await Array.fromAsync(
 *   ReadableStream.from(["a", "b"])
 *     .pipeThrough(codec.encoder())
 *     .pipeThrough(codec.decoder()),
 *   (m) => new TextDecoder().decode(m),
 * );
 * assert.deepEqual(messages, ["a", "b"]);
 * ```
 */
export function delimited(
  options: DelimiterOptions,
): Codec<Uint8Array | string> {
  new DelimiterDecoder(options);
  new DelimiterEncoder(options);
  return {
    decoder: (overrides) =>
      new DelimiterDecoderStream(withOverrides(options, overrides)),
    encoder: () => new DelimiterEncoderStream(options),
    syncDecoder: (overrides) =>
      new DelimiterDecoder(withOverrides(options, overrides)),
    syncEncoder: () => new DelimiterEncoder(options),
  };
}

/**
 * The length-prefix codec, for {@linkcode framed}.
 *
 * @param options The layout and its decoding (`maxFrameLength`) and encoding
 * (`maxEncodedLength`, by default what the field can express) limits, or a
 * preset's name, checked now (the encoder's extra rule,
 * `lengthFieldOffset` needing `keepHeader`, when it is made).
 * @returns Factories of {@linkcode LengthPrefixDecoderStream} and
 * {@linkcode LengthPrefixEncoderStream}.
 *
 * @example A codec's two streams
 * ```ts
 * import { lengthPrefixed } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const codec = lengthPrefixed({ lengthFieldBytes: 1 });
 * const bytes = await new Response(
 *   ReadableStream.from([new Uint8Array([9])]).pipeThrough(codec.encoder()),
 * ).bytes();
 * assert.deepEqual(bytes, new Uint8Array([1, 9]));
 * ```
 */
export function lengthPrefixed(
  options: LengthPrefixOptions | LengthPrefixPreset = {},
): Codec<Uint8Array | string> {
  new LengthPrefixDecoder(options);
  const resolved: LengthPrefixOptions = typeof options === "string"
    ? { preset: options }
    : options;
  return {
    decoder: (overrides) =>
      new LengthPrefixDecoderStream(withOverrides(resolved, overrides)),
    encoder: () => new LengthPrefixEncoderStream(resolved),
    syncDecoder: (overrides) =>
      new LengthPrefixDecoder(withOverrides(resolved, overrides)),
    syncEncoder: () => new LengthPrefixEncoder(resolved),
  };
}

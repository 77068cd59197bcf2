/**
 * Messages ended by a delimiter of one or more bytes:
 * {@linkcode DelimiterDecoder} and {@linkcode DelimiterEncoder}, the
 * synchronous cores, and the streams that run them.
 *
 * @module
 */

import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import {
  checkEncodeLimit,
  indexOfBytes,
  textEncoder,
  toBytes,
} from "./bytes.ts";
import {
  checkCount,
  checkEncodedLength,
  checkPolicy,
  type DelimiterOptions,
} from "./options.ts";
import { Splitter } from "./splitter.ts";

/**
 * Splits bytes into messages at a delimiter of one or more bytes: the
 * synchronous core of {@linkcode DelimiterDecoderStream}. Delimiters split
 * across chunks are found; bytes after the last delimiter are emitted by
 * `flush` as a last message. Views and copies as for
 * {@linkcode LineDecoder}.
 *
 * @example Messages ended by a NUL byte, as in STOMP
 * ```ts
 * import { DelimiterDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const decoder = new DelimiterDecoder({ delimiter: new Uint8Array([0]) });
 * const messages: string[] = [];
 * decoder.transform(
 *   new TextEncoder().encode("SEND\0CONNECT\0"),
 *   (m) => messages.push(new TextDecoder().decode(m)),
 * );
 * assert.deepEqual(messages, ["SEND", "CONNECT"]);
 * ```
 */
export class DelimiterDecoder
  implements SyncTransformer<Uint8Array, Uint8Array> {
  /**
   * It keeps nothing of a chunk past the call (a message that spans chunks
   * is copied), so a connection's engine may lend it its reused read buffer
   * (see {@linkcode SyncTransformer.input}); a message it emits as a view of
   * the chunk is then valid until the engine's next read.
   *
   * @experimental
   */
  readonly input: "borrow" = "borrow";
  readonly #splitter: Splitter;

  /**
   * Creates the decoder.
   *
   * @param options The delimiter, limit and oversize policy.
   */
  constructor(options: DelimiterOptions) {
    const what = "delimiter decoder";
    this.#splitter = new Splitter(
      "message",
      checkDelimiter(what, options?.delimiter),
      false,
      options.keepDelimiter ?? false,
      checkCount(what, "maxLength", options.maxLength ?? 65536),
      checkPolicy(what, options),
    );
  }

  /**
   * Emits every message that ends in `chunk`.
   *
   * @param chunk The next bytes; read only during this call.
   * @param emit Receives each message.
   */
  transform(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    this.#splitter.transform(chunk, emit);
  }

  /**
   * Emits the bytes after the last delimiter, if any, as a last message.
   *
   * @param emit Receives the message.
   */
  flush(emit: (message: Uint8Array) => void): void {
    this.#splitter.flush(emit);
  }
}

function checkDelimiter(what: string, delimiter: unknown): Uint8Array {
  const bytes = typeof delimiter === "string"
    ? textEncoder.encode(delimiter)
    : delimiter instanceof Uint8Array
    ? delimiter.slice() // a copy: the caller may reuse theirs
    : undefined;
  if (bytes === undefined) {
    throw new TypeError(
      `Cannot create ${what} as delimiter must be a Uint8Array or a string: current type is ${
        delimiter === null ? "null" : typeof delimiter
      }`,
    );
  }
  if (bytes.length === 0) {
    throw new RangeError(
      `Cannot create ${what} as delimiter must be at least 1 byte long: current length is 0 bytes`,
    );
  }
  return bytes;
}

/**
 * Appends `delimiter` to a message, for {@linkcode DelimiterEncoder}. A
 * message the decoder would split differently (one holding the
 * delimiter, or ending in a prefix of it) is refused.
 */
function delimit(
  what: string,
  message: Uint8Array | string,
  delimiter: Uint8Array,
  limit: number,
): Uint8Array {
  const bytes = toBytes(message, what);
  checkEncodeLimit(what, bytes, limit);
  const out = new Uint8Array(bytes.length + delimiter.length);
  out.set(bytes);
  out.set(delimiter, bytes.length);
  // Search the output: a message ending in the delimiter's prefix would
  // move the split too (with "aa", "a" + "aa" reads back as "" then "a").
  const at = delimiter.length === 1
    ? out.indexOf(delimiter[0]!)
    : indexOfBytes(out, delimiter, 0);
  if (at !== bytes.length) {
    throw new TypeError(
      `Cannot encode ${what} as it must not contain its delimiter ${
        JSON.stringify(new TextDecoder().decode(delimiter))
      }: found at index ${at}`,
    );
  }
  return out;
}

/**
 * Ends each message with a delimiter: the synchronous core of
 * {@linkcode DelimiterEncoderStream}. Strings are UTF-8 encoded. A message
 * that holds the delimiter, or ends with a start of it so that the decoder
 * would split elsewhere, is refused with a `TypeError`. Messages of any length
 * are written unless `maxEncodedLength` is set, and one over it is refused
 * with a {@linkcode FrameTooLargeError}; `maxLength` limits decoding only.
 *
 * @example Round-trip with a two-byte delimiter
 * ```ts
 * import { DelimiterDecoder, DelimiterEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options = { delimiter: "||" };
 * const wire: Uint8Array[] = [];
 * const encoder = new DelimiterEncoder(options);
 * for (const m of ["a|b", "", "c"]) encoder.transform(m, (b) => wire.push(b));
 * const decoder = new DelimiterDecoder(options);
 * const out: string[] = [];
 * for (const bytes of wire) {
 *   decoder.transform(bytes, (m) => out.push(new TextDecoder().decode(m)));
 * }
 * assert.deepEqual(out, ["a|b", "", "c"]);
 * assert.throws(() => encoder.transform("x|", () => {}), TypeError);
 * ```
 */
export class DelimiterEncoder
  implements SyncTransformer<Uint8Array | string, Uint8Array> {
  readonly #delimiter: Uint8Array;
  readonly #limit: number;

  /**
   * Creates the encoder.
   *
   * @param options The delimiter and `maxEncodedLength` (the decoding
   * options, `maxLength` among them, are ignored).
   */
  constructor(options: DelimiterOptions) {
    const what = "delimiter encoder";
    this.#delimiter = checkDelimiter(what, options?.delimiter);
    this.#limit = checkEncodedLength(what, options.maxEncodedLength);
  }

  /**
   * Emits `message` and the delimiter as one chunk.
   *
   * @param message A message without its delimiter.
   * @param emit Receives the bytes.
   */
  transform(
    message: Uint8Array | string,
    emit: (bytes: Uint8Array) => void,
  ): void {
    emit(delimit("message", message, this.#delimiter, this.#limit));
  }
}

/**
 * Splits bytes into messages at a delimiter of one or more bytes, found
 * across chunk boundaries; bytes after the last delimiter are a last
 * message. Views, copies, limit, oversize policy and errors as for
 * {@linkcode LineDecoderStream}. Runs a {@linkcode DelimiterDecoder}.
 *
 * @example Split at "\r\n\r\n", whatever the chunks
 * ```ts
 * import { DelimiterDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const messages = await Array.fromAsync(
 *   ReadableStream.from(["a: 1\r\n\r", "\nb: 2\r", "\n\r\n"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new DelimiterDecoderStream({ delimiter: "\r\n\r\n" })),
 *   (m) => new TextDecoder().decode(m),
 * );
 * assert.deepEqual(messages, ["a: 1", "b: 2"]);
 * ```
 */
export class DelimiterDecoderStream
  extends SyncTransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The delimiter, limit and oversize policy.
   */
  constructor(options: DelimiterOptions) {
    super(new DelimiterDecoder(options));
  }
}

/**
 * Ends each message with a delimiter. Strings are UTF-8 encoded; a message
 * that would not read back as itself is refused with a `TypeError`, one over
 * `maxEncodedLength` (unlimited by default) with a
 * {@linkcode FrameTooLargeError}. Runs a {@linkcode DelimiterEncoder}.
 *
 * @example NUL-terminated messages
 * ```ts
 * import { DelimiterEncoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const bytes = await new Response(
 *   ReadableStream.from(["a", "b"])
 *     .pipeThrough(new DelimiterEncoderStream({ delimiter: new Uint8Array([0]) })),
 * ).bytes();
 * assert.deepEqual(bytes, new Uint8Array([0x61, 0, 0x62, 0]));
 * ```
 */
export class DelimiterEncoderStream
  extends SyncTransformStream<Uint8Array | string, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The delimiter and `maxEncodedLength` (decoding options
   * are ignored).
   */
  constructor(options: DelimiterOptions) {
    super(new DelimiterEncoder(options));
  }
}

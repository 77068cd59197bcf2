/**
 * Lines: {@linkcode LineDecoder} and {@linkcode LineEncoder}, the
 * synchronous cores, and the streams that run them.
 *
 * @module
 */

import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import {
  checkEncodeLength,
  checkEncodeLimit,
  CRLF,
  LF,
  NEWLINE,
  toBytes,
  writeMessage,
} from "./bytes.ts";
import {
  checkCount,
  checkEncodedLength,
  checkPolicy,
  type LineOptions,
} from "./options.ts";
import { Splitter } from "./splitter.ts";
import type { SyncEncoder } from "./sync_encoder.ts";

/**
 * Splits bytes into lines at "\n", removing a "\r" before it unless
 * `keepDelimiter` is set: the synchronous core of
 * {@linkcode LineDecoderStream}, for hot loops and a connection's engine.
 *
 * Call `transform` with each chunk and `flush` at the end of input (which
 * emits a last line that has no "\n"). A line inside one chunk is emitted as
 * a view of that chunk, valid as long as the chunk's bytes are; a line that
 * spans chunks is copied. Memory held while waiting for "\n" never exceeds
 * the limit. After an error, every call throws that error again.
 *
 * @example Count the lines of chunks as they come
 * ```ts
 * import { LineDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const decoder = new LineDecoder();
 * const lines: string[] = [];
 * const push = (line: Uint8Array) => lines.push(new TextDecoder().decode(line));
 * for (const text of ["PING\r\nEC", "HO hi\r\n", "QUIT"]) {
 *   decoder.transform(new TextEncoder().encode(text), push);
 * }
 * decoder.flush(push);
 * assert.deepEqual(lines, ["PING", "ECHO hi", "QUIT"]);
 * ```
 *
 * @example A line service the connection's engine runs in its read loop
 * ```ts
 * import { LineDecoder, LineEncoder } from "@x/sock/framing";
 * import { chain, SyncTransformStream } from "@x/sock/sync-transform";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   // Decode, answer and encode in one call per read: no stream per line.
 *   const lengths = chain<Uint8Array, Uint8Array, string>(new LineDecoder(), {
 *     transform: (line, emit) => emit(`${line.length}`),
 *   });
 *   const service = chain<Uint8Array, string, Uint8Array>(
 *     lengths,
 *     new LineEncoder(),
 *   );
 *   return new Connection(conn).serve(new SyncTransformStream(service));
 * });
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await client.write(new TextEncoder().encode("a\nbb\nccc"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "1\n2\n3\n");
 * await served;
 * ```
 */
export class LineDecoder implements SyncTransformer<Uint8Array, Uint8Array> {
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
   * @param options Limit, delimiter handling and oversize policy.
   */
  constructor(options: LineOptions = {}) {
    const what = "line decoder";
    this.#splitter = new Splitter(
      "line",
      NEWLINE,
      true,
      options.keepDelimiter ?? false,
      checkCount(what, "maxLineLength", options.maxLineLength ?? 65536),
      checkPolicy(what, options),
    );
  }

  /**
   * Emits every line that ends in `chunk`.
   *
   * @param chunk The next bytes; read only during this call.
   * @param emit Receives each line.
   */
  transform(chunk: Uint8Array, emit: (line: Uint8Array) => void): void {
    this.#splitter.transform(chunk, emit);
  }

  /**
   * Emits the last line if the input did not end with "\n".
   *
   * @param emit Receives the line.
   */
  flush(emit: (line: Uint8Array) => void): void {
    this.#splitter.flush(emit);
  }
}

/**
 * Ends each message with "\n" (or "\r\n" with `newline`): the synchronous
 * core of {@linkcode LineEncoderStream}. Strings are UTF-8 encoded. A message
 * that holds "\n" would split into two lines, so it is refused with a
 * `TypeError`. Lines of any length are written unless `maxEncodedLength` is
 * set, and one over it is refused with a {@linkcode FrameTooLargeError};
 * `maxLineLength` limits decoding only, so a short input limit never cuts an
 * answer.
 *
 * @example CRLF lines
 * ```ts
 * import { LineEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const out: Uint8Array[] = [];
 * new LineEncoder({ newline: "\r\n" }).transform("+OK", (b) => out.push(b));
 * assert.deepEqual(out, [new TextEncoder().encode("+OK\r\n")]);
 * ```
 *
 * @example A limit on what is written, apart from the one on what is read
 * ```ts
 * import { LineEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options = { maxLineLength: 4, maxEncodedLength: 8 };
 * const out: Uint8Array[] = [];
 * const encoder = new LineEncoder(options);
 * encoder.transform("answer", (b) => out.push(b)); // over 4: still written
 * assert.equal(new TextDecoder().decode(out[0]), "answer\n");
 * assert.throws(() => encoder.transform("far too long", () => {}), {
 *   name: "FrameTooLargeError",
 *   message:
 *     "Cannot encode line as its length must be <= 8 bytes: current length is 12 bytes",
 * });
 * ```
 */
export class LineEncoder implements SyncEncoder<Uint8Array | string> {
  readonly #newline: Uint8Array;
  readonly #limit: number;

  /**
   * Creates the encoder.
   *
   * @param options The newline and `maxEncodedLength` (the decoding
   * options, `maxLineLength` among them, are ignored).
   */
  constructor(options: LineOptions = {}) {
    const what = "line encoder";
    this.#limit = checkEncodedLength(what, options.maxEncodedLength);
    const newline = options.newline ?? "\n";
    if (newline !== "\n" && newline !== "\r\n") {
      throw new TypeError(
        `Cannot create ${what} as newline must be "\\n" or "\\r\\n": current value is ${
          JSON.stringify(newline)
        }`,
      );
    }
    this.#newline = newline === "\n" ? NEWLINE : CRLF;
  }

  /**
   * Emits `message` and its newline as one chunk.
   *
   * @param message A line without its newline.
   * @param emit Receives the bytes.
   */
  transform(
    message: Uint8Array | string,
    emit: (bytes: Uint8Array) => void,
  ): void {
    const bytes = toBytes(message, "line");
    checkEncodeLimit("line", bytes, this.#limit);
    // Any "\n" splits a line, whichever newline this encoder writes.
    const at = bytes.indexOf(LF);
    if (at !== -1) {
      throw new TypeError(
        `Cannot encode line as it must not contain "\\n": found at index ${at}`,
      );
    }
    const out = new Uint8Array(bytes.length + this.#newline.length);
    out.set(bytes);
    out.set(this.#newline, bytes.length);
    emit(out);
  }

  /**
   * Writes `message` and its newline into `buffer` at `offset`, as
   * `transform()` would emit them, with no allocation: what
   * {@linkcode framed} calls to encode straight into the connection's write
   * buffer. See {@linkcode SyncEncoder}.
   *
   * @experimental
   * @param message A line without its newline.
   * @param buffer Where to write.
   * @param offset Where in `buffer` to start.
   * @returns The offset after the newline, or -1 when the line does not fit
   * (the caller then tries a larger buffer or `transform()`).
   * @throws {FrameTooLargeError} Over `maxEncodedLength`.
   * @throws {TypeError} The message holds "\n" or is not a string or bytes.
   */
  encodeInto(
    message: Uint8Array | string,
    buffer: Uint8Array,
    offset: number,
  ): number {
    const newline = this.#newline;
    const end = writeMessage(message, buffer, offset, newline.length, "line");
    if (end < 0) return -1;
    checkEncodeLength("line", end - offset, this.#limit);
    // Search the message only: the buffer goes on past it.
    let at = -1;
    if (end - offset <= 64) {
      for (let i = offset; i < end; i++) {
        if (buffer[i] === LF) {
          at = i - offset;
          break;
        }
      }
    } else at = buffer.subarray(offset, end).indexOf(LF);
    if (at !== -1) {
      throw new TypeError(
        `Cannot encode line as it must not contain "\\n": found at index ${at}`,
      );
    }
    buffer[end] = newline[0]!;
    if (newline.length === 2) buffer[end + 1] = newline[1]!;
    return end + newline.length;
  }
}

/**
 * Splits bytes into lines at "\n", removing a "\r" before it unless
 * `keepDelimiter` is set; a last line without "\n" is emitted at the end of
 * input. A line within one chunk is handed on as a view of it, without a
 * copy; memory held while waiting for "\n" never exceeds the limit. A line
 * over `maxLineLength` errors the stream, or with `oversize: "discard"` is
 * dropped and reported.
 *
 * Runs a {@linkcode LineDecoder}, which a connection's engine can call
 * directly (see {@linkcode SyncTransformStream}). One stream chunk per line
 * costs a few promise turns each; for many small lines per read, wrap the
 * decoder in a {@linkcode BatchStream} instead.
 *
 * An error ends a stream at once: lines decoded from the same chunk but not
 * yet read are dropped with it, as web streams drop queued chunks on error.
 * {@linkcode framed} and {@linkcode BatchStream} deliver them first.
 *
 * For strings, use {@linkcode TextLineDecoderStream}: piping this stream into
 * a `TextDecoderStream` loses every empty line, as that skips empty chunks.
 *
 * @example Decode lines from one-byte chunks
 * ```ts
 * import { LineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("a\r\n\nbc\n");
 * const lines = await Array.fromAsync(
 *   ReadableStream.from(Array.from(bytes, (b) => new Uint8Array([b])))
 *     .pipeThrough(new LineDecoderStream()),
 *   (line) => new TextDecoder().decode(line),
 * );
 * assert.deepEqual(lines, ["a", "", "bc"]);
 * ```
 */
export class LineDecoderStream
  extends SyncTransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options Limit, delimiter handling and oversize policy.
   */
  constructor(options: LineOptions = {}) {
    super(new LineDecoder(options));
  }
}

/**
 * Ends each message with "\n", or "\r\n" with `newline: "\r\n"`. Strings are
 * UTF-8 encoded. A message holding "\n" is refused with a `TypeError`; one
 * over `maxEncodedLength` (unlimited by default) with a
 * {@linkcode FrameTooLargeError}. Runs a {@linkcode LineEncoder}.
 *
 * @example Encode lines
 * ```ts
 * import { LineEncoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const text = await new Response(
 *   ReadableStream.from(["hello", new Uint8Array([0x68, 0x69]), ""])
 *     .pipeThrough(new LineEncoderStream({ newline: "\r\n" })),
 * ).text();
 * assert.equal(text, "hello\r\nhi\r\n\r\n");
 * ```
 */
export class LineEncoderStream
  extends SyncTransformStream<Uint8Array | string, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The newline and `maxEncodedLength` (decoding options
   * are ignored).
   */
  constructor(options: LineOptions = {}) {
    super(new LineEncoder(options));
  }
}

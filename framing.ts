/**
 * Message framing: TCP delivers bytes, not messages, and one read may hold
 * half a message or three. These streams turn bytes into messages and back,
 * under any chunking, with a limit on every message.
 *
 * - Lines: {@linkcode LineDecoderStream} and {@linkcode LineEncoderStream}
 *   (LF or CRLF).
 * - Length prefixes: {@linkcode LengthPrefixDecoderStream} and
 *   {@linkcode LengthPrefixEncoderStream} (1, 2 or 4 bytes, big- or
 *   little-endian).
 * - Message streams over a connection: {@linkcode framed} with a
 *   {@linkcode lines} or {@linkcode lengthPrefixed} codec.
 *
 * ```ts
 * import { LineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const lines = await Array.fromAsync(
 *   ReadableStream.from(["one\r\ntw", "o\n", "three"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new LineDecoderStream())
 *     .pipeThrough(new TextDecoderStream()),
 * );
 * assert.deepEqual(lines, ["one", "two", "three"]);
 * ```
 *
 * @module
 */

import { ConnStreams } from "./conn_streams.ts";

/**
 * A message longer than its limit: a line over `maxLineLength`, or a frame
 * over `maxFrameLength` or over what its prefix can express.
 *
 * @example Catch an oversized frame
 * ```ts
 * import { FrameTooLargeError, LengthPrefixDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([new Uint8Array([0, 0, 1, 0])])
 *   .pipeThrough(new LengthPrefixDecoderStream({ maxFrameLength: 16 }));
 * await assert.rejects(Array.fromAsync(frames), FrameTooLargeError);
 * ```
 */
export class FrameTooLargeError extends RangeError {
  /** The length of the message, or for a line the bytes seen so far. */
  readonly length: number;
  /** The largest length allowed. */
  readonly limit: number;

  /**
   * Creates the error.
   *
   * @param message What failed.
   * @param length The message's length (or a lower bound for a line).
   * @param limit The largest length allowed.
   */
  constructor(message: string, length: number, limit: number) {
    super(message);
    this.name = "FrameTooLargeError";
    this.length = length;
    this.limit = limit;
  }
}

/**
 * Input that ended in the middle of a length-prefixed frame (or of its
 * prefix).
 *
 * @example Catch a truncated frame
 * ```ts
 * import { LengthPrefixDecoderStream, TruncatedFrameError } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([new Uint8Array([0, 0, 0, 9, 1, 2])])
 *   .pipeThrough(new LengthPrefixDecoderStream());
 * await assert.rejects(Array.fromAsync(frames), TruncatedFrameError);
 * ```
 */
export class TruncatedFrameError extends Deno.errors.UnexpectedEof {
  /** Bytes of the frame (prefix included) received before the end. */
  readonly received: number;
  /** Bytes the frame needed (prefix included), as far as known. */
  readonly expected: number;

  /**
   * Creates the error.
   *
   * @param received Bytes received before the end.
   * @param expected Bytes the frame needed.
   */
  constructor(received: number, expected: number) {
    super(
      `Cannot decode frame as the input ended inside it: received ${received} of ${expected} bytes`,
    );
    this.name = "TruncatedFrameError";
    this.received = received;
    this.expected = expected;
  }
}

/** Options for {@linkcode LineDecoderStream} and {@linkcode LineEncoderStream}. */
export interface LineOptions {
  /**
   * The longest line, in bytes, not counting its "\n" or "\r\n".
   *
   * @default {65536}
   */
  maxLineLength?: number;
  /**
   * Whether decoded lines keep their "\n" or "\r\n".
   *
   * @default {false}
   */
  keepDelimiter?: boolean;
}

/** Options for the length-prefixed streams. */
export interface LengthPrefixOptions {
  /**
   * Size of the unsigned length prefix in bytes.
   *
   * @default {4}
   */
  prefixBytes?: 1 | 2 | 4;
  /**
   * Whether the prefix is little-endian.
   *
   * @default {false}
   */
  littleEndian?: boolean;
  /**
   * The longest payload in bytes, not counting the prefix.
   *
   * @default {1048576}
   */
  maxFrameLength?: number;
}

const LF = 0x0a;
const CR = 0x0d;

function checkLimit(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot create framing stream as ${name} must be a non-negative integer: current value is ${value}`,
    );
  }
  return value;
}

function concat(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * Splits bytes into lines at "\n", removing a "\r" before it unless
 * `keepDelimiter` is set. A last line without "\n" is emitted at the end of
 * input. A line within one chunk is handed on as a view of it, without a
 * copy; memory held while waiting for "\n" never exceeds the limit.
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
 * // (TextDecoderStream would drop the empty line: it skips empty chunks.)
 * assert.deepEqual(lines, ["a", "", "bc"]);
 * ```
 */
export class LineDecoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options Limit and delimiter handling.
   */
  constructor(options: LineOptions = {}) {
    const limit = checkLimit("maxLineLength", options.maxLineLength ?? 65536);
    const keep = options.keepDelimiter ?? false;
    let parts: Uint8Array[] = [];
    let pending = 0;
    // A line's length without its delimiter may exceed the limit by one
    // byte: a "\r" that turns out to belong to "\r\n".
    const tooLong = (length: number) =>
      new FrameTooLargeError(
        `Cannot decode line as its length must be <= ${limit} bytes: current length is at least ${length} bytes`,
        length,
        limit,
      );
    const emit = (
      line: Uint8Array,
      controller: TransformStreamDefaultController<Uint8Array>,
      delimited: boolean,
    ) => {
      let content = line.length;
      if (delimited) {
        content--; // "\n"
        if (content > 0 && line[content - 1] === CR) content--;
      }
      if (content > limit) throw tooLong(content);
      controller.enqueue(keep ? line : line.subarray(0, content));
    };
    super({
      transform(chunk, controller) {
        let start = 0;
        while (start < chunk.length) {
          const lf = chunk.indexOf(LF, start);
          if (lf === -1) {
            const rest = chunk.subarray(start);
            pending += rest.length;
            if (pending > limit + 1) throw tooLong(pending);
            parts.push(rest);
            return;
          }
          const piece = chunk.subarray(start, lf + 1);
          if (parts.length === 0) emit(piece, controller, true);
          else {
            parts.push(piece);
            pending += piece.length;
            const line = concat(parts, pending);
            parts = [];
            pending = 0;
            emit(line, controller, true);
          }
          start = lf + 1;
        }
      },
      flush(controller) {
        if (parts.length === 0) return;
        const line = concat(parts, pending);
        parts = [];
        pending = 0;
        emit(line, controller, false);
      },
    });
  }
}

/**
 * Ends each message with "\n". Strings are UTF-8 encoded. A message that
 * holds "\n" would split into two lines, so it is refused with a
 * `TypeError`; one over `maxLineLength` with a {@linkcode FrameTooLargeError}.
 *
 * @example Encode lines
 * ```ts
 * import { LineEncoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const text = await new Response(
 *   ReadableStream.from(["hello", ""]).pipeThrough(new LineEncoderStream()),
 * ).text();
 * assert.equal(text, "hello\n\n");
 * ```
 */
export class LineEncoderStream
  extends TransformStream<Uint8Array | string, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The line limit (`keepDelimiter` is ignored).
   */
  constructor(options: LineOptions = {}) {
    const limit = checkLimit("maxLineLength", options.maxLineLength ?? 65536);
    const encoder = new TextEncoder();
    super({
      transform(message, controller) {
        const bytes = typeof message === "string"
          ? encoder.encode(message)
          : message;
        if (bytes.length > limit) {
          throw new FrameTooLargeError(
            `Cannot encode line as its length must be <= ${limit} bytes: current length is ${bytes.length} bytes`,
            bytes.length,
            limit,
          );
        }
        if (bytes.includes(LF)) {
          throw new TypeError(
            `Cannot encode line as it must not contain "\\n": found at index ${
              bytes.indexOf(LF)
            }`,
          );
        }
        const out = new Uint8Array(bytes.length + 1);
        out.set(bytes);
        out[bytes.length] = LF;
        controller.enqueue(out);
      },
    });
  }
}

function prefixSettings(options: LengthPrefixOptions) {
  const prefixBytes = options.prefixBytes ?? 4;
  if (prefixBytes !== 1 && prefixBytes !== 2 && prefixBytes !== 4) {
    throw new RangeError(
      `Cannot create framing stream as prefixBytes must be 1, 2 or 4: current value is ${prefixBytes}`,
    );
  }
  const maxFrameLength = checkLimit(
    "maxFrameLength",
    options.maxFrameLength ?? 1048576,
  );
  const capacity = 2 ** (8 * prefixBytes) - 1;
  return {
    prefixBytes,
    littleEndian: options.littleEndian ?? false,
    limit: Math.min(maxFrameLength, capacity),
  };
}

function frameTooLarge(
  action: "decode" | "encode",
  length: number,
  limit: number,
): FrameTooLargeError {
  return new FrameTooLargeError(
    `Cannot ${action} frame as its length must be <= ${limit} bytes: current length is ${length} bytes`,
    length,
    limit,
  );
}

/**
 * Splits bytes into frames, each an unsigned length prefix then that many
 * bytes. A frame within one chunk is handed on as a view of it. A prefix over
 * `maxFrameLength` fails at once with a {@linkcode FrameTooLargeError}, before
 * its payload is buffered; input that ends inside a frame fails with a
 * {@linkcode TruncatedFrameError}. Frames before a bad one are delivered.
 *
 * @example Decode two frames from one chunk
 * ```ts
 * import { LengthPrefixDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([0, 2, 7, 8, 0, 0])])
 *     .pipeThrough(new LengthPrefixDecoderStream({ prefixBytes: 2 })),
 * );
 * assert.deepEqual(frames, [new Uint8Array([7, 8]), new Uint8Array(0)]);
 * ```
 */
export class LengthPrefixDecoderStream
  extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options Prefix size, byte order and limit.
   */
  constructor(options: LengthPrefixOptions = {}) {
    const { prefixBytes, littleEndian, limit } = prefixSettings(options);
    const header = new Uint8Array(prefixBytes);
    const view = new DataView(header.buffer);
    let headerFill = 0;
    let body: Uint8Array | undefined; // the payload being assembled
    let bodyFill = 0;
    const readLength = () =>
      prefixBytes === 1
        ? header[0]!
        : prefixBytes === 2
        ? view.getUint16(0, littleEndian)
        : view.getUint32(0, littleEndian);
    super({
      transform(chunk, controller) {
        let i = 0;
        while (i < chunk.length) {
          if (body) {
            const take = Math.min(body.length - bodyFill, chunk.length - i);
            body.set(chunk.subarray(i, i + take), bodyFill);
            bodyFill += take;
            i += take;
            if (bodyFill === body.length) {
              controller.enqueue(body);
              body = undefined;
            }
            continue;
          }
          const take = Math.min(prefixBytes - headerFill, chunk.length - i);
          header.set(chunk.subarray(i, i + take), headerFill);
          headerFill += take;
          i += take;
          if (headerFill < prefixBytes) return;
          headerFill = 0;
          const length = readLength();
          if (length > limit) throw frameTooLarge("decode", length, limit);
          if (chunk.length - i >= length) {
            controller.enqueue(chunk.subarray(i, i + length));
            i += length;
          } else {
            body = new Uint8Array(length);
            bodyFill = 0;
          }
        }
      },
      flush() {
        if (body) {
          throw new TruncatedFrameError(
            prefixBytes + bodyFill,
            prefixBytes + body.length,
          );
        }
        if (headerFill > 0) {
          throw new TruncatedFrameError(headerFill, prefixBytes);
        }
      },
    });
  }
}

/**
 * Prefixes each message with its length. A message over `maxFrameLength`, or
 * over what the prefix can express, fails with a
 * {@linkcode FrameTooLargeError}.
 *
 * @example Round-trip two messages
 * ```ts
 * import {
 *   LengthPrefixDecoderStream,
 *   LengthPrefixEncoderStream,
 * } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const messages = [new Uint8Array([1, 2, 3]), new Uint8Array(0)];
 * const decoded = await Array.fromAsync(
 *   ReadableStream.from(messages)
 *     .pipeThrough(new LengthPrefixEncoderStream({ littleEndian: true }))
 *     .pipeThrough(new LengthPrefixDecoderStream({ littleEndian: true })),
 * );
 * assert.deepEqual(decoded, messages);
 * ```
 */
export class LengthPrefixEncoderStream
  extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options Prefix size, byte order and limit.
   */
  constructor(options: LengthPrefixOptions = {}) {
    const { prefixBytes, littleEndian, limit } = prefixSettings(options);
    super({
      transform(message, controller) {
        if (message.length > limit) {
          throw frameTooLarge("encode", message.length, limit);
        }
        const out = new Uint8Array(prefixBytes + message.length);
        const view = new DataView(out.buffer);
        if (prefixBytes === 1) out[0] = message.length;
        else if (prefixBytes === 2) {
          view.setUint16(0, message.length, littleEndian);
        } else view.setUint32(0, message.length, littleEndian);
        out.set(message, prefixBytes);
        controller.enqueue(out);
      },
    });
  }
}

/** A pair of factories for the two directions of a framing. */
export interface Codec<In = Uint8Array> {
  /** A new stream from bytes to messages. */
  decoder(): TransformStream<Uint8Array, Uint8Array>;
  /** A new stream from messages to bytes. */
  encoder(): TransformStream<In, Uint8Array>;
}

/**
 * The line codec, for {@linkcode framed}.
 *
 * @param options Limit and delimiter handling.
 * @returns Factories of {@linkcode LineDecoderStream} and
 * {@linkcode LineEncoderStream}.
 *
 * @example A codec's two streams
 * ```ts
 * import { lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const codec = lines({ maxLineLength: 80 });
 * const text = await new Response(
 *   ReadableStream.from(["hi"]).pipeThrough(codec.encoder()),
 * ).text();
 * assert.equal(text, "hi\n");
 * ```
 */
export function lines(options: LineOptions = {}): Codec<Uint8Array | string> {
  return {
    decoder: () => new LineDecoderStream(options),
    encoder: () => new LineEncoderStream(options),
  };
}

/**
 * The length-prefix codec, for {@linkcode framed}.
 *
 * @param options Prefix size, byte order and limit.
 * @returns Factories of {@linkcode LengthPrefixDecoderStream} and
 * {@linkcode LengthPrefixEncoderStream}.
 *
 * @example A codec's two streams
 * ```ts
 * import { lengthPrefixed } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const codec = lengthPrefixed({ prefixBytes: 1 });
 * const bytes = await new Response(
 *   ReadableStream.from([new Uint8Array([9])]).pipeThrough(codec.encoder()),
 * ).bytes();
 * assert.deepEqual(bytes, new Uint8Array([1, 9]));
 * ```
 */
export function lengthPrefixed(options: LengthPrefixOptions = {}): Codec {
  return {
    decoder: () => new LengthPrefixDecoderStream(options),
    encoder: () => new LengthPrefixEncoderStream(options),
  };
}

/** Message-level streams over a connection, from {@linkcode framed}. */
export interface Framed<In = Uint8Array> {
  /** The messages the peer sends; ends at its FIN. */
  readonly readable: ReadableStream<Uint8Array>;
  /** The messages we send; closing it half-closes the connection. */
  readonly writable: WritableStream<In>;
}

/**
 * Message-level streams over a connection: write messages in, read messages
 * out. Closing the `writable` flushes and half-closes the connection; errors
 * of either direction surface on the stream of that direction.
 *
 * @param target A connection (wrapped in {@linkcode ConnStreams}, never its
 * bare streams) or any readable and writable byte pair, such as a
 * `ConnStreams`.
 * @param codec How messages are framed: {@linkcode lines} or
 * {@linkcode lengthPrefixed}.
 * @returns The message streams.
 *
 * @example A line exchange over loopback
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then(async (conn) => {
 *   const { readable, writable } = framed(conn, lines());
 *   const writer = writable.getWriter();
 *   for await (const line of readable) {
 *     await writer.write(`${line.length}`);
 *   }
 *   await writer.close();
 * });
 *
 * const client = framed(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   lines(),
 * );
 * await ReadableStream.from(["hello", "hi"]).pipeTo(client.writable);
 * const answers = await Array.fromAsync(
 *   client.readable.pipeThrough(new TextDecoderStream()),
 * );
 * await served;
 * assert.deepEqual(answers, ["5", "2"]);
 * ```
 */
export function framed<In>(
  target: Deno.Conn | {
    readable: ReadableStream<Uint8Array>;
    writable: WritableStream<Uint8Array>;
  },
  codec: Codec<In>,
): Framed<In> {
  // A Deno.Conn has bare `readable`/`writable` too, which break half-close:
  // tell it apart by `closeWrite` and wrap it.
  const bytes = typeof (target as Deno.Conn).closeWrite === "function"
    ? new ConnStreams(target as Deno.Conn)
    : target;
  const encoder = codec.encoder();
  // pipeTo propagates errors both ways (an encoder error aborts the byte
  // writable; a byte writable error errors the encoder); the promise itself
  // is observed there, so it is not an unhandled rejection here.
  encoder.readable.pipeTo(bytes.writable).catch(() => {});
  return {
    readable: bytes.readable.pipeThrough(codec.decoder()),
    writable: encoder.writable,
  };
}

/**
 * Message framing: TCP delivers bytes, not messages, and one read may hold
 * half a message or three. This module turns bytes into messages and back,
 * under any chunking, with a limit on every message.
 *
 * Each framing comes in three layers:
 *
 * - A synchronous core, bytes in and messages out with no streams, for hot
 *   loops and for a connection's engine, which runs it inside its read loop:
 *   {@linkcode LineDecoder}, {@linkcode DelimiterDecoder},
 *   {@linkcode LengthPrefixDecoder} and their encoders. Each is a
 *   {@linkcode SyncTransformer}.
 * - Streams wrapping the core, to compose with `pipeThrough`:
 *   {@linkcode LineDecoderStream}, {@linkcode DelimiterDecoderStream},
 *   {@linkcode LengthPrefixDecoderStream} and their encoders;
 *   {@linkcode BatchStream} hands on all the messages of a chunk at once.
 * - Message streams over a connection: {@linkcode framed} with a
 *   {@linkcode lines}, {@linkcode delimited} or {@linkcode lengthPrefixed}
 *   codec.
 *
 * Lines end in "\n" or "\r\n"; other messages end in any byte sequence;
 * length prefixes are 1, 2, 3, 4 or 8 bytes of either byte order, with a field
 * offset, a length adjustment and presets for real protocols
 * ({@linkcode LENGTH_PREFIX_PRESETS}). A message over its limit is an error,
 * or with `oversize: "discard"` is dropped, reported once and decoding goes
 * on with the next message.
 *
 * The module uses only web-standard APIs: it loads and decodes without the
 * `Deno` global (`framed()` needs a Deno connection only when given one).
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

import { Connection } from "./connection.ts";
import { type SyncTransformer, SyncTransformStream } from "./sync_transform.ts";

export { FrameTooLargeError, TruncatedFrameError } from "./_errors.ts";
import { FrameTooLargeError, TruncatedFrameError } from "./_errors.ts";

/**
 * What a decoder does with a message over its limit: `"error"` throws a
 * {@linkcode FrameTooLargeError} (the decoder is then done), `"discard"`
 * drops the message, reports it to `onOversize` and goes on with the next.
 *
 * @example Keep decoding past a line that is too long
 * ```ts
 * import { LineDecoder, type OversizePolicy } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const oversize: OversizePolicy = "discard";
 * const lines: string[] = [];
 * new LineDecoder({ maxLineLength: 3, oversize }).transform(
 *   new TextEncoder().encode("abc\nabcd\nxyz\n"),
 *   (line) => lines.push(new TextDecoder().decode(line)),
 * );
 * assert.deepEqual(lines, ["abc", "xyz"]);
 * ```
 */
export type OversizePolicy = "error" | "discard";

/**
 * How a decoder treats a message over its limit; part of every decoder's
 * options and of {@linkcode FramedOptions}.
 *
 * @example Answer "too long" in order and go on
 * ```ts
 * import { LineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const TOO_LONG = new Uint8Array(0); // a marker, told apart by identity
 * const reports: number[] = [];
 * const lines = await Array.fromAsync(
 *   ReadableStream.from([new TextEncoder().encode("ok\nway too long\nok\n")])
 *     .pipeThrough(new LineDecoderStream({
 *       maxLineLength: 4,
 *       oversize: "discard",
 *       onOversize: (error) => {
 *         reports.push(error.length);
 *         return TOO_LONG;
 *       },
 *     })),
 *   (line) => line === TOO_LONG ? "(too long)" : new TextDecoder().decode(line),
 * );
 * assert.deepEqual(lines, ["ok", "(too long)", "ok"]);
 * assert.deepEqual(reports, [12]);
 * ```
 */
export interface OversizeOptions {
  /**
   * What to do with a message over the limit.
   *
   * @default {"error"}
   */
  oversize?: OversizePolicy;
  /**
   * Called once per dropped message under `oversize: "discard"`, with the
   * error `"error"` would have thrown, as soon as the decoder knows the
   * message is too long (for a delimited message, possibly before its end:
   * `length` is then a lower bound). If it returns a message, that message is
   * handed on in the dropped one's place, in order, so a consumer can answer
   * it; return a marker object it recognises by identity. Anything but a
   * `Uint8Array` or `undefined` is a `TypeError`; throwing from it fails the
   * decoder with that error.
   *
   * @experimental
   */
  onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
}

/**
 * Options for {@linkcode LineDecoder}, {@linkcode LineEncoder} and their
 * streams; {@linkcode lines} passes the same object to both.
 *
 * @example CRLF out, lines with their endings in
 * ```ts
 * import { LineDecoder, LineEncoder, type LineOptions } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options: LineOptions = { newline: "\r\n", keepDelimiter: true };
 * const wire: Uint8Array[] = [];
 * new LineEncoder(options).transform("hi", (bytes) => wire.push(bytes));
 * const lines: string[] = [];
 * new LineDecoder(options).transform(
 *   wire[0],
 *   (line) => lines.push(new TextDecoder().decode(line)),
 * );
 * assert.deepEqual(lines, ["hi\r\n"]);
 * ```
 */
export interface LineOptions extends OversizeOptions {
  /**
   * The longest line, in bytes, not counting its "\n" or "\r\n".
   *
   * @default {65536}
   */
  maxLineLength?: number;
  /**
   * Decoding: whether decoded lines keep their "\n" or "\r\n".
   *
   * @default {false}
   */
  keepDelimiter?: boolean;
  /**
   * Encoding: what ends each line written. Decoding accepts both.
   *
   * @default {"\n"}
   */
  newline?: "\n" | "\r\n";
}

/**
 * Options for {@linkcode DelimiterDecoder}, {@linkcode DelimiterEncoder} and
 * their streams; {@linkcode delimited} passes the same object to both.
 *
 * @example Messages of at most 512 bytes, each ended by "\r\n.\r\n"
 * ```ts
 * import { DelimiterDecoder, type DelimiterOptions } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options: DelimiterOptions = { delimiter: "\r\n.\r\n", maxLength: 512 };
 * const messages: string[] = [];
 * const decoder = new DelimiterDecoder(options);
 * for (const part of ["Subject: hi\r\n\r\nbody\r\n.", "\r\n"]) {
 *   decoder.transform(
 *     new TextEncoder().encode(part),
 *     (m) => messages.push(new TextDecoder().decode(m)),
 *   );
 * }
 * assert.deepEqual(messages, ["Subject: hi\r\n\r\nbody"]);
 * ```
 */
export interface DelimiterOptions extends OversizeOptions {
  /**
   * The bytes that end each message (a string is UTF-8 encoded); at least
   * one byte.
   */
  delimiter: Uint8Array | string;
  /**
   * The longest message, in bytes, not counting its delimiter.
   *
   * @default {65536}
   */
  maxLength?: number;
  /**
   * Decoding: whether decoded messages keep their delimiter.
   *
   * @default {false}
   */
  keepDelimiter?: boolean;
}

/**
 * The named length-prefix layouts in {@linkcode LENGTH_PREFIX_PRESETS}.
 *
 * - `"uint32be"`: a 4-byte big-endian payload length; the default.
 * - `"dns"`: DNS over TCP (RFC 1035 section 4.2.2, RFC 7766 section 8), a
 *   2-byte big-endian length before each message, up to 65535 bytes.
 * - `"tls-record"`: TLS records (RFC 8446 section 5.1): type (1 byte) and
 *   version (2), then a 2-byte big-endian length; frames keep their 5-byte
 *   header; at most 2^14 + 2048 bytes of payload.
 * - `"mongodb"`: MongoDB wire messages, a 4-byte little-endian length that
 *   counts itself; frames keep it; at most 48,000,000 bytes.
 *
 * @example A preset by name
 * ```ts
 * import { LengthPrefixDecoder, type LengthPrefixPreset } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const preset: LengthPrefixPreset = "tls-record";
 * const records: Uint8Array[] = [];
 * new LengthPrefixDecoder(preset).transform(
 *   new Uint8Array([21, 3, 3, 0, 2, 2, 40]), // an alert record
 *   (record) => records.push(record),
 * );
 * assert.deepEqual(records, [new Uint8Array([21, 3, 3, 0, 2, 2, 40])]);
 * ```
 */
export type LengthPrefixPreset = "uint32be" | "dns" | "tls-record" | "mongodb";

/**
 * Options for the length-prefix decoders and encoders: the layout of the
 * header before each payload, in the spirit of a length-delimited codec
 * builder. The header is `lengthFieldOffset` bytes of anything, then the
 * length field; the payload follows it.
 *
 * The payload length is `field + lengthAdjustment`, minus the header's size
 * when `lengthIncludesHeader` is set.
 *
 * @example A 1-byte type, then a 3-byte little-endian length that counts the whole header
 * ```ts
 * import { LengthPrefixDecoder, LengthPrefixEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const layout = {
 *   lengthFieldOffset: 1,
 *   lengthFieldBytes: 3,
 *   littleEndian: true,
 *   lengthIncludesHeader: true,
 *   keepHeader: true,
 * } as const;
 * const wire: Uint8Array[] = [];
 * // With keepHeader, a message starts with its header; the encoder fills in the length.
 * new LengthPrefixEncoder(layout).transform(
 *   new Uint8Array([7, 0, 0, 0, 0xaa, 0xbb]),
 *   (bytes) => wire.push(bytes),
 * );
 * assert.deepEqual(wire, [new Uint8Array([7, 6, 0, 0, 0xaa, 0xbb])]);
 * const frames: Uint8Array[] = [];
 * new LengthPrefixDecoder(layout).transform(wire[0], (f) => frames.push(f));
 * assert.deepEqual(frames, wire);
 * ```
 */
export interface LengthPrefixOptions extends OversizeOptions {
  /**
   * A preset whose settings are the defaults for this object's others.
   *
   * @default {"uint32be"}
   */
  preset?: LengthPrefixPreset;
  /**
   * Size of the unsigned length field in bytes.
   *
   * @default {4}
   */
  lengthFieldBytes?: 1 | 2 | 3 | 4 | 8;
  /**
   * The former name of `lengthFieldBytes`.
   *
   * @deprecated Use `lengthFieldBytes`.
   */
  prefixBytes?: 1 | 2 | 4;
  /**
   * Whether the length field is little-endian.
   *
   * @default {false}
   */
  littleEndian?: boolean;
  /**
   * Bytes of header before the length field. The encoder cannot invent
   * them, so a non-zero offset needs `keepHeader` to encode.
   *
   * @default {0}
   */
  lengthFieldOffset?: number;
  /**
   * Added to the length field's value to get the payload length (may be
   * negative, as when the field also counts a trailer).
   *
   * @default {0}
   */
  lengthAdjustment?: number;
  /**
   * Whether the length field counts the header (offset bytes and the field
   * itself) as well as the payload.
   *
   * @default {false}
   */
  lengthIncludesHeader?: boolean;
  /**
   * Whether decoded frames keep their header (and encoded messages start
   * with one, whose length field the encoder fills in).
   *
   * @default {false}
   */
  keepHeader?: boolean;
  /**
   * The longest payload in bytes, not counting the header. Must be within
   * what the length field can express; by default 1 MiB or that, whichever
   * is smaller.
   *
   * @default {1048576}
   */
  maxFrameLength?: number;
}

/**
 * The settings of each {@linkcode LengthPrefixPreset}, for reading; pass the
 * name as `options` or as `preset`, overriding any setting beside it.
 *
 * @example DNS over TCP
 * ```ts
 * import { LENGTH_PREFIX_PRESETS, lengthPrefixed } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * assert.equal(LENGTH_PREFIX_PRESETS.dns.lengthFieldBytes, 2);
 * const codec = lengthPrefixed("dns");
 * const bytes = await new Response(
 *   ReadableStream.from([new Uint8Array(300)]).pipeThrough(codec.encoder()),
 * ).bytes();
 * assert.deepEqual(bytes.subarray(0, 2), new Uint8Array([1, 44]));
 * ```
 */
export const LENGTH_PREFIX_PRESETS: Readonly<
  Record<LengthPrefixPreset, Readonly<LengthPrefixOptions>>
> = Object.freeze(
  {
    "uint32be": Object.freeze({ lengthFieldBytes: 4 }),
    "dns": Object.freeze({ lengthFieldBytes: 2, maxFrameLength: 65535 }),
    "tls-record": Object.freeze({
      lengthFieldOffset: 3,
      lengthFieldBytes: 2,
      keepHeader: true,
      maxFrameLength: 16384 + 2048,
    }),
    "mongodb": Object.freeze({
      lengthFieldBytes: 4,
      littleEndian: true,
      lengthIncludesHeader: true,
      keepHeader: true,
      maxFrameLength: 48_000_000 - 4,
    }),
  } as const,
);

const LF = 0x0a;
const CR = 0x0d;
const textEncoder = new TextEncoder();
const NEWLINE = new Uint8Array([LF]);
const CRLF = new Uint8Array([CR, LF]);
/** First buffer for a message or frame that spans chunks; it then doubles. */
const INITIAL_BUFFER = 1024;

function checkCount(what: string, name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(
      `Cannot create ${what} as ${name} must be a non-negative integer: current value is ${
        String(value)
      }`,
    );
  }
  return value as number;
}

function checkPolicy(what: string, options: OversizeOptions): {
  discard: boolean;
  onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
} {
  const { oversize = "error", onOversize } = options;
  if (oversize !== "error" && oversize !== "discard") {
    throw new TypeError(
      `Cannot create ${what} as oversize must be "error" or "discard": current value is ${
        JSON.stringify(oversize)
      }`,
    );
  }
  if (onOversize !== undefined && typeof onOversize !== "function") {
    throw new TypeError(
      `Cannot create ${what} as onOversize must be a function: current type is ${typeof onOversize}`,
    );
  }
  return { discard: oversize === "discard", onOversize };
}

function toBytes(message: Uint8Array | string, what: string): Uint8Array {
  if (typeof message === "string") return textEncoder.encode(message);
  if (message instanceof Uint8Array) return message;
  throw new TypeError(
    `Cannot encode ${what} as it must be a Uint8Array or a string: current type is ${
      message === null ? "null" : typeof message
    }`,
  );
}

/** Reports a dropped message, emitting what `onOversize` returns. */
function replace(
  onOversize: ((error: FrameTooLargeError) => Uint8Array | void) | undefined,
  error: FrameTooLargeError,
  emit: (message: Uint8Array) => void,
): void {
  if (onOversize === undefined) return;
  const replacement: unknown = onOversize(error);
  if (replacement === undefined) return;
  if (!(replacement instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot hand on a dropped message's replacement as onOversize must return a Uint8Array or undefined: current type is ${
        replacement === null ? "null" : typeof replacement
      }`,
    );
  }
  emit(replacement);
}

/** The index of `needle` in `haystack` at or after `from`, or -1. */
function indexOfBytes(
  haystack: Uint8Array,
  needle: Uint8Array,
  from: number,
): number {
  const first = needle[0]!;
  const last = haystack.length - needle.length;
  let i = haystack.indexOf(first, from);
  while (i !== -1 && i <= last) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i = haystack.indexOf(first, i + 1);
  }
  return -1;
}

/**
 * The splitting engine behind the line and delimiter decoders: finds each
 * delimiter under any chunking, hands whole messages in one chunk on as views
 * of it, copies only a message that spans chunks (into a buffer that grows
 * as bytes arrive, up to the limit), and drops oversized messages when asked.
 */
class Splitter {
  readonly #what: string;
  readonly #delimiter: Uint8Array;
  readonly #first: number;
  readonly #stripCR: boolean;
  readonly #keep: boolean;
  readonly #limit: number;
  /** Bytes a held message may exceed the limit by: a delimiter's prefix or a CR. */
  readonly #slack: number;
  readonly #discard: boolean;
  readonly #onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
  /** The start of a message that began in an earlier chunk (a copy). */
  #buffer: Uint8Array | undefined = undefined;
  #fill = 0;
  /** Dropping an oversized message until its delimiter. */
  #skipping = false;
  /** The last bytes of the current message, to find a delimiter across chunks. */
  readonly #tail: Uint8Array;
  #tailLength = 0;
  #failure: unknown = undefined;
  #failed = false;

  constructor(
    what: string,
    delimiter: Uint8Array,
    stripCR: boolean,
    keep: boolean,
    limit: number,
    policy: ReturnType<typeof checkPolicy>,
  ) {
    this.#what = what;
    this.#delimiter = delimiter;
    this.#first = delimiter[0]!;
    this.#stripCR = stripCR;
    this.#keep = keep;
    this.#limit = limit;
    this.#slack = delimiter.length - 1 + (stripCR ? 1 : 0);
    this.#discard = policy.discard;
    this.#onOversize = policy.onOversize;
    this.#tail = new Uint8Array(delimiter.length - 1);
  }

  transform(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    try {
      if (this.#delimiter.length === 1 && this.#fill === 0 && !this.#skipping) {
        this.#splitFast(chunk, 0, emit);
      } else this.#split(chunk, emit);
    } catch (error) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  flush(emit: (message: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    try {
      this.#tailLength = 0;
      if (this.#skipping) {
        this.#skipping = false; // the dropped message ended with the input
        return;
      }
      const fill = this.#fill;
      if (fill === 0) return;
      const buffer = this.#buffer!;
      this.#buffer = undefined;
      this.#fill = 0;
      // Without a delimiter nothing is stripped: the bytes are the message.
      if (fill > this.#limit) this.#oversize(fill, true, emit);
      else emit(buffer.subarray(0, fill));
    } catch (error) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  /** One-byte delimiter, nothing held: the common case, kept tight. */
  #splitFast(
    chunk: Uint8Array,
    from: number,
    emit: (message: Uint8Array) => void,
  ): void {
    const first = this.#first;
    const limit = this.#limit;
    const keep = this.#keep;
    const stripCR = this.#stripCR;
    let start = from;
    let end = chunk.indexOf(first, start);
    while (end !== -1) {
      let contentEnd = end;
      if (stripCR && end > start && chunk[end - 1] === CR) contentEnd--;
      if (contentEnd - start > limit) {
        this.#oversize(contentEnd - start, true, emit);
      } else emit(chunk.subarray(start, keep ? end + 1 : contentEnd));
      start = end + 1;
      end = chunk.indexOf(first, start);
    }
    if (start < chunk.length) this.#hold(chunk, start, emit);
  }

  #split(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    const length = this.#delimiter.length;
    let start = 0;
    if (this.#tailLength > 0 && chunk.length > 0) {
      const k = this.#straddle(chunk);
      if (k > 0) {
        this.#endAcross(k, emit);
        start = length - k;
      }
    }
    while (start < chunk.length) {
      const end = length === 1
        ? chunk.indexOf(this.#first, start)
        : indexOfBytes(chunk, this.#delimiter, start);
      if (end === -1) {
        this.#hold(chunk, start, emit);
        return;
      }
      this.#end(chunk, start, end, emit);
      start = end + length;
      // The held message has ended: the rest takes the fast path.
      if (length === 1) return this.#splitFast(chunk, start, emit);
    }
  }

  /**
   * How many bytes of a delimiter that ends inside `chunk` were at the end of
   * earlier chunks (the earliest such delimiter), or 0.
   */
  #straddle(chunk: Uint8Array): number {
    const delimiter = this.#delimiter;
    const tail = this.#tail;
    const held = this.#tailLength;
    for (let k = held; k >= 1; k--) {
      const need = delimiter.length - k;
      if (chunk.length < need) continue;
      let match = true;
      for (let j = 0; match && j < k; j++) {
        match = tail[held - k + j] === delimiter[j];
      }
      for (let j = 0; match && j < need; j++) {
        match = chunk[j] === delimiter[k + j];
      }
      if (match) return k;
    }
    return 0;
  }

  /** A message ends at `end` in `chunk`, where its delimiter starts. */
  #end(
    chunk: Uint8Array,
    start: number,
    end: number,
    emit: (message: Uint8Array) => void,
  ): void {
    this.#tailLength = 0;
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    const fill = this.#fill;
    const stripCR = this.#stripCR;
    if (fill === 0) {
      let contentEnd = end;
      if (stripCR && end > start && chunk[end - 1] === CR) contentEnd--;
      if (contentEnd - start > this.#limit) {
        this.#oversize(contentEnd - start, true, emit);
      } else {
        emit(chunk.subarray(
          start,
          this.#keep ? end + this.#delimiter.length : contentEnd,
        ));
      }
      return;
    }
    // The message began in an earlier chunk: complete the copy.
    let length = fill + end - start;
    if (
      stripCR &&
      (end > start ? chunk[end - 1] : this.#buffer![fill - 1]) === CR
    ) length--;
    if (length > this.#limit) {
      this.#buffer = undefined;
      this.#fill = 0;
      this.#oversize(length, true, emit);
      return;
    }
    const piece = chunk.subarray(
      start,
      this.#keep ? end + this.#delimiter.length : end,
    );
    const total = fill + piece.length;
    const buffer = this.#reserve(total);
    buffer.set(piece, fill);
    // The consumer owns the message now: the next one gets a new buffer.
    this.#buffer = undefined;
    this.#fill = 0;
    emit(buffer.subarray(0, this.#keep ? total : length));
  }

  /** A message ends where a delimiter begins `k` bytes before this chunk. */
  #endAcross(k: number, emit: (message: Uint8Array) => void): void {
    this.#tailLength = 0;
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    const fill = this.#fill;
    const length = fill - k;
    if (length > this.#limit) {
      this.#buffer = undefined;
      this.#fill = 0;
      this.#oversize(length, true, emit);
      return;
    }
    let total = length;
    if (this.#keep) {
      total = fill + this.#delimiter.length - k;
      this.#reserve(total).set(this.#delimiter.subarray(k), fill);
    }
    const buffer = this.#buffer!;
    this.#buffer = undefined;
    this.#fill = 0;
    emit(buffer.subarray(0, total));
  }

  /** No delimiter from `start` to the end of `chunk`: keep those bytes. */
  #hold(
    chunk: Uint8Array,
    start: number,
    emit: (message: Uint8Array) => void,
  ): void {
    if (!this.#skipping) {
      const total = this.#fill + chunk.length - start;
      if (total > this.#limit + this.#slack) {
        // Too long whatever follows: what is held may be at most `slack`
        // bytes of delimiter.
        this.#buffer = undefined;
        this.#fill = 0;
        this.#oversize(total - this.#slack, false, emit);
        this.#skipping = true;
      } else {
        this.#reserve(total).set(chunk.subarray(start), this.#fill);
        this.#fill = total;
      }
    }
    if (this.#tail.length > 0) this.#remember(chunk, start);
  }

  /** Keeps the last bytes of the current message for `#straddle`. */
  #remember(chunk: Uint8Array, start: number): void {
    const tail = this.#tail;
    const rest = chunk.length - start;
    if (rest >= tail.length) {
      tail.set(chunk.subarray(chunk.length - tail.length));
      this.#tailLength = tail.length;
      return;
    }
    const kept = Math.min(this.#tailLength, tail.length - rest);
    tail.copyWithin(0, this.#tailLength - kept, this.#tailLength);
    tail.set(chunk.subarray(start), kept);
    this.#tailLength = kept + rest;
  }

  /** The held buffer, grown (doubling, as bytes arrive) to hold `total`. */
  #reserve(total: number): Uint8Array {
    const buffer = this.#buffer;
    if (buffer !== undefined && buffer.length >= total) return buffer;
    const size = Math.max(
      total,
      Math.min(
        buffer === undefined ? INITIAL_BUFFER : buffer.length * 2,
        this.#limit + this.#slack + this.#delimiter.length,
      ),
    );
    const grown = new Uint8Array(size);
    if (buffer !== undefined) grown.set(buffer.subarray(0, this.#fill));
    this.#buffer = grown;
    return grown;
  }

  #oversize(
    length: number,
    exact: boolean,
    emit: (message: Uint8Array) => void,
  ): void {
    const error = new FrameTooLargeError(
      `Cannot decode ${this.#what} as its length must be <= ${this.#limit} bytes: current length is ${
        exact ? "" : "at least "
      }${length} bytes`,
      length,
      this.#limit,
    );
    if (!this.#discard) throw error;
    replace(this.#onOversize, error, emit);
  }
}

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

function checkEncodeLimit(
  what: string,
  bytes: Uint8Array,
  limit: number,
): void {
  if (bytes.length > limit) {
    throw new FrameTooLargeError(
      `Cannot encode ${what} as its length must be <= ${limit} bytes: current length is ${bytes.length} bytes`,
      bytes.length,
      limit,
    );
  }
}

/**
 * Appends `delimiter` to each message: shared by the line and delimiter
 * encoders. A message the decoder would split differently (one holding the
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
 * Ends each message with "\n" (or "\r\n" with `newline`): the synchronous
 * core of {@linkcode LineEncoderStream}. Strings are UTF-8 encoded. A message
 * that holds "\n" would split into two lines, so it is refused with a
 * `TypeError`; one over `maxLineLength` with a {@linkcode FrameTooLargeError}.
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
 */
export class LineEncoder
  implements SyncTransformer<Uint8Array | string, Uint8Array> {
  readonly #newline: Uint8Array;
  readonly #limit: number;

  /**
   * Creates the encoder.
   *
   * @param options The line limit and the newline (the decoding options are
   * ignored).
   */
  constructor(options: LineOptions = {}) {
    const what = "line encoder";
    this.#limit = checkCount(
      what,
      "maxLineLength",
      options.maxLineLength ?? 65536,
    );
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
}

/**
 * Ends each message with a delimiter: the synchronous core of
 * {@linkcode DelimiterEncoderStream}. Strings are UTF-8 encoded. A message
 * that holds the delimiter, or ends with a start of it so that the decoder
 * would split elsewhere, is refused with a `TypeError`; one over `maxLength`
 * with a {@linkcode FrameTooLargeError}.
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
   * @param options The delimiter and limit (the decoding options are
   * ignored).
   */
  constructor(options: DelimiterOptions) {
    const what = "delimiter encoder";
    this.#delimiter = checkDelimiter(what, options?.delimiter);
    this.#limit = checkCount(what, "maxLength", options.maxLength ?? 65536);
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

/** A length-prefix layout, resolved and checked. */
interface PrefixLayout {
  offset: number;
  width: number;
  littleEndian: boolean;
  adjustment: number;
  /** What the field counts besides the payload: the header, or 0. */
  counted: number;
  header: number;
  keepHeader: boolean;
  limit: number;
  /** The largest value the field holds. */
  fieldMax: number;
  discard: boolean;
  onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
}

function prefixLayout(
  what: string,
  input: LengthPrefixOptions | LengthPrefixPreset | undefined,
): PrefixLayout {
  const options: LengthPrefixOptions = typeof input === "string"
    ? { preset: input }
    : input ?? {};
  const name = options.preset ?? "uint32be";
  if (!Object.hasOwn(LENGTH_PREFIX_PRESETS, name)) {
    throw new RangeError(
      `Cannot create ${what} as preset must be one of ${
        Object.keys(LENGTH_PREFIX_PRESETS).map((k) => `"${k}"`).join(", ")
      }: current value is ${JSON.stringify(name)}`,
    );
  }
  const preset: LengthPrefixOptions = LENGTH_PREFIX_PRESETS[name];
  if (
    options.prefixBytes !== undefined &&
    options.lengthFieldBytes !== undefined &&
    options.prefixBytes !== options.lengthFieldBytes
  ) {
    throw new TypeError(
      `Cannot create ${what} as prefixBytes and lengthFieldBytes must agree: current values are ${options.prefixBytes} and ${options.lengthFieldBytes}`,
    );
  }
  const width: number = options.lengthFieldBytes ?? options.prefixBytes ??
    preset.lengthFieldBytes ?? 4;
  if (![1, 2, 3, 4, 8].includes(width)) {
    throw new RangeError(
      `Cannot create ${what} as lengthFieldBytes must be 1, 2, 3, 4 or 8: current value is ${width}`,
    );
  }
  const offset = checkCount(
    what,
    "lengthFieldOffset",
    options.lengthFieldOffset ?? preset.lengthFieldOffset ?? 0,
  );
  const adjustment = options.lengthAdjustment ?? preset.lengthAdjustment ?? 0;
  if (!Number.isSafeInteger(adjustment)) {
    throw new RangeError(
      `Cannot create ${what} as lengthAdjustment must be an integer: current value is ${adjustment}`,
    );
  }
  const header = offset + width;
  const includes = options.lengthIncludesHeader ??
    preset.lengthIncludesHeader ?? false;
  const counted = includes ? header : 0;
  const fieldMax = 2 ** (8 * width) - 1;
  // The longest payload the field can announce.
  const expressible = Math.min(
    fieldMax + adjustment - counted,
    Number.MAX_SAFE_INTEGER,
  );
  if (expressible < 0) {
    throw new RangeError(
      `Cannot create ${what} as a ${width}-byte length field must be able to announce a payload: current largest payload is ${expressible} bytes`,
    );
  }
  const max = options.maxFrameLength ?? preset.maxFrameLength;
  const limit = max === undefined
    ? Math.min(1048576, expressible)
    : checkCount(what, "maxFrameLength", max);
  if (limit > expressible) {
    throw new RangeError(
      `Cannot create ${what} as maxFrameLength must be <= ${expressible} bytes for a ${width}-byte length field: current value is ${limit}`,
    );
  }
  return {
    offset,
    width,
    littleEndian: options.littleEndian ?? preset.littleEndian ?? false,
    adjustment,
    counted,
    header,
    keepHeader: options.keepHeader ?? preset.keepHeader ?? false,
    limit,
    fieldMax,
    ...checkPolicy(what, options),
  };
}

/** The unsigned length field at `at`, `width` bytes, in the given order. */
function readField(
  bytes: Uint8Array,
  at: number,
  width: number,
  littleEndian: boolean,
): number {
  switch (width) {
    case 1:
      return bytes[at]!;
    case 2:
      return littleEndian
        ? bytes[at]! | bytes[at + 1]! << 8
        : bytes[at]! << 8 | bytes[at + 1]!;
    case 3:
      return littleEndian
        ? bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16
        : bytes[at]! << 16 | bytes[at + 1]! << 8 | bytes[at + 2]!;
    case 4:
      return (littleEndian
        ? bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16 |
          bytes[at + 3]! << 24
        : bytes[at]! << 24 | bytes[at + 1]! << 16 | bytes[at + 2]! << 8 |
          bytes[at + 3]!) >>> 0;
    default: {
      const high = readField(
        bytes,
        littleEndian ? at + 4 : at,
        4,
        littleEndian,
      );
      const low = readField(bytes, littleEndian ? at : at + 4, 4, littleEndian);
      return high * 2 ** 32 + low;
    }
  }
}

function writeField(
  bytes: Uint8Array,
  at: number,
  width: number,
  littleEndian: boolean,
  value: number,
): void {
  let rest = value;
  for (let i = 0; i < width; i++) {
    bytes[littleEndian ? at + i : at + width - 1 - i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

/**
 * Splits bytes into frames, each a header holding a length and then that
 * many bytes of payload: the synchronous core of
 * {@linkcode LengthPrefixDecoderStream}. See {@linkcode LengthPrefixOptions}
 * for the layouts and {@linkcode LENGTH_PREFIX_PRESETS} for named ones.
 *
 * - A frame inside one chunk is emitted as a view of it, without a copy.
 * - A frame that spans chunks is copied into a buffer that grows as its bytes
 *   arrive: a header announcing 1 GiB reserves nothing up front.
 * - A length over `maxFrameLength` is a {@linkcode FrameTooLargeError} as
 *   soon as the header is read, or under `oversize: "discard"` the frame is
 *   skipped and decoding goes on after it.
 * - A length the layout cannot make sense of (below what the field must
 *   count) is a `SyntaxError`; input that ends inside a frame is a
 *   {@linkcode TruncatedFrameError} from `flush`.
 *
 * Frames before a bad one are emitted first. After an error, every call
 * throws that error again.
 *
 * @example Decode pipelined DNS-over-TCP messages
 * ```ts
 * import { LengthPrefixDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const decoder = new LengthPrefixDecoder("dns");
 * const frames: Uint8Array[] = [];
 * decoder.transform(new Uint8Array([0, 2, 7, 8, 0, 1]), (f) => frames.push(f));
 * decoder.transform(new Uint8Array([9]), (f) => frames.push(f));
 * decoder.flush(() => {});
 * assert.deepEqual(frames, [new Uint8Array([7, 8]), new Uint8Array([9])]);
 * ```
 */
export class LengthPrefixDecoder
  implements SyncTransformer<Uint8Array, Uint8Array> {
  readonly #layout: PrefixLayout;
  readonly #head: Uint8Array;
  #headFill = 0;
  /** The frame being assembled across chunks. */
  #body: Uint8Array | undefined = undefined;
  #bodyFill = 0;
  #bodyTotal = 0;
  /** Bytes of a dropped frame still to skip, and its payload length. */
  #skip = 0;
  #skipTotal = 0;
  #failure: unknown = undefined;
  #failed = false;

  /**
   * Creates the decoder.
   *
   * @param options The layout, or a preset's name.
   */
  constructor(options: LengthPrefixOptions | LengthPrefixPreset = {}) {
    this.#layout = prefixLayout("length-prefix decoder", options);
    this.#head = new Uint8Array(this.#layout.header);
  }

  /**
   * Emits every frame that ends in `chunk`.
   *
   * @param chunk The next bytes; read only during this call.
   * @param emit Receives each frame.
   */
  transform(chunk: Uint8Array, emit: (frame: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    try {
      this.#decode(chunk, emit);
    } catch (error) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  /**
   * Checks that the input did not end inside a frame.
   *
   * @param _emit Unused: a frame is never complete only at the end.
   */
  flush(_emit: (frame: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    const header = this.#layout.header;
    let error: TruncatedFrameError | undefined;
    if (this.#skip > 0) {
      error = new TruncatedFrameError(
        header + this.#skipTotal - this.#skip,
        header + this.#skipTotal,
      );
    } else if (this.#body !== undefined) {
      // With keepHeader the body holds the header already.
      const before = this.#layout.keepHeader ? 0 : header;
      error = new TruncatedFrameError(
        before + this.#bodyFill,
        before + this.#bodyTotal,
      );
    } else if (this.#headFill > 0) {
      error = new TruncatedFrameError(this.#headFill, header);
    }
    if (error !== undefined) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  #decode(chunk: Uint8Array, emit: (frame: Uint8Array) => void): void {
    const layout = this.#layout;
    const header = layout.header;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#skip > 0) {
        const take = Math.min(this.#skip, n - i);
        this.#skip -= take;
        i += take;
      } else if (this.#body !== undefined) {
        i = this.#fillBody(chunk, i, emit);
      } else if (this.#headFill === 0 && n - i >= header) {
        // The header is inside this chunk: read it in place.
        const payload = this.#payloadLength(chunk, i);
        if (payload > layout.limit) {
          this.#oversize(payload, emit);
          i += header;
          continue;
        }
        const end = i + header + payload;
        if (end <= n) {
          emit(chunk.subarray(layout.keepHeader ? i : i + header, end));
          i = end;
        } else {
          this.#startBody(payload, chunk, i, n - i - header);
          i += header;
        }
      } else {
        // The header spans chunks: collect it.
        const take = Math.min(header - this.#headFill, n - i);
        this.#head.set(chunk.subarray(i, i + take), this.#headFill);
        this.#headFill += take;
        i += take;
        if (this.#headFill < header) return;
        this.#headFill = 0;
        const payload = this.#payloadLength(this.#head, 0);
        if (payload > layout.limit) this.#oversize(payload, emit);
        else if (payload === 0) {
          emit(layout.keepHeader ? this.#head.slice() : new Uint8Array(0));
        } else this.#startBody(payload, this.#head, 0, n - i);
      }
    }
  }

  #payloadLength(bytes: Uint8Array, at: number): number {
    const layout = this.#layout;
    const field = readField(
      bytes,
      at + layout.offset,
      layout.width,
      layout.littleEndian,
    );
    const payload = field + layout.adjustment - layout.counted;
    if (payload < 0) {
      throw new SyntaxError(
        `Cannot decode frame as its length field must be >= ${
          layout.counted - layout.adjustment
        }: current value is ${field}`,
      );
    }
    return payload;
  }

  /** Starts a frame that spans chunks, reserving only what has arrived. */
  #startBody(
    payload: number,
    head: Uint8Array,
    at: number,
    available: number,
  ): void {
    const layout = this.#layout;
    const kept = layout.keepHeader ? layout.header : 0;
    const total = kept + payload;
    const body = new Uint8Array(
      Math.min(total, Math.max(INITIAL_BUFFER, kept + available)),
    );
    if (kept > 0) body.set(head.subarray(at, at + kept));
    this.#body = body;
    this.#bodyFill = kept;
    this.#bodyTotal = total;
  }

  #fillBody(
    chunk: Uint8Array,
    i: number,
    emit: (frame: Uint8Array) => void,
  ): number {
    let body = this.#body!;
    const total = this.#bodyTotal;
    const take = Math.min(total - this.#bodyFill, chunk.length - i);
    const fill = this.#bodyFill + take;
    if (fill > body.length) {
      const grown = new Uint8Array(
        Math.min(total, Math.max(fill, body.length * 2)),
      );
      grown.set(body.subarray(0, this.#bodyFill));
      body = this.#body = grown;
    }
    body.set(chunk.subarray(i, i + take), this.#bodyFill);
    this.#bodyFill = fill;
    if (fill === total) {
      this.#body = undefined;
      emit(body.length === total ? body : body.subarray(0, total));
    }
    return i + take;
  }

  #oversize(payload: number, emit: (frame: Uint8Array) => void): void {
    const layout = this.#layout;
    const error = new FrameTooLargeError(
      `Cannot decode frame as its length must be <= ${layout.limit} bytes: current length is ${payload} bytes`,
      payload,
      layout.limit,
    );
    // A length past 2^53 cannot be counted down exactly: never skip it.
    if (!layout.discard || !Number.isSafeInteger(payload)) throw error;
    replace(layout.onOversize, error, emit);
    this.#skip = payload;
    this.#skipTotal = payload;
  }
}

/**
 * Puts a header with the length before each message: the synchronous core
 * of {@linkcode LengthPrefixEncoderStream}. Strings are UTF-8 encoded. A
 * message over `maxFrameLength` (which is at most what the field can
 * express) is a {@linkcode FrameTooLargeError}; one the layout cannot
 * express otherwise is a `RangeError`.
 *
 * With `keepHeader`, each message starts with its header, whose length field
 * the encoder fills in (in a copy); otherwise the encoder writes the header,
 * which then must be just the length field (`lengthFieldOffset: 0`).
 *
 * @example A 3-byte little-endian length
 * ```ts
 * import { LengthPrefixEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const out: Uint8Array[] = [];
 * const encoder = new LengthPrefixEncoder({
 *   lengthFieldBytes: 3,
 *   littleEndian: true,
 * });
 * encoder.transform("hi", (b) => out.push(b));
 * assert.deepEqual(out, [new Uint8Array([2, 0, 0, 0x68, 0x69])]);
 * ```
 */
export class LengthPrefixEncoder
  implements SyncTransformer<Uint8Array | string, Uint8Array> {
  readonly #layout: PrefixLayout;

  /**
   * Creates the encoder.
   *
   * @param options The layout, or a preset's name (the decoding options are
   * ignored).
   */
  constructor(options: LengthPrefixOptions | LengthPrefixPreset = {}) {
    const what = "length-prefix encoder";
    this.#layout = prefixLayout(what, options);
    if (this.#layout.offset > 0 && !this.#layout.keepHeader) {
      throw new TypeError(
        `Cannot create ${what} as a lengthFieldOffset needs keepHeader, so that messages bring the bytes before the length: current offset is ${this.#layout.offset}`,
      );
    }
  }

  /**
   * Emits the framed message as one chunk.
   *
   * @param message The payload, or with `keepHeader` the header and payload.
   * @param emit Receives the bytes.
   */
  transform(
    message: Uint8Array | string,
    emit: (bytes: Uint8Array) => void,
  ): void {
    const layout = this.#layout;
    const bytes = toBytes(message, "frame");
    let out: Uint8Array;
    let payload: number;
    if (layout.keepHeader) {
      payload = bytes.length - layout.header;
      if (payload < 0) {
        throw new RangeError(
          `Cannot encode frame as it must start with its ${layout.header}-byte header: current length is ${bytes.length} bytes`,
        );
      }
      this.#check(payload);
      out = bytes.slice();
    } else {
      payload = bytes.length;
      this.#check(payload);
      out = new Uint8Array(layout.header + payload);
      out.set(bytes, layout.header);
    }
    writeField(
      out,
      layout.offset,
      layout.width,
      layout.littleEndian,
      payload - layout.adjustment + layout.counted,
    );
    emit(out);
  }

  #check(payload: number): void {
    const layout = this.#layout;
    if (payload > layout.limit) {
      throw new FrameTooLargeError(
        `Cannot encode frame as its length must be <= ${layout.limit} bytes: current length is ${payload} bytes`,
        payload,
        layout.limit,
      );
    }
    const least = layout.adjustment - layout.counted;
    if (payload < least) {
      throw new RangeError(
        `Cannot encode frame as its length must be >= ${least} bytes: current length is ${payload} bytes`,
      );
    }
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
 * over `maxLineLength` with a {@linkcode FrameTooLargeError}. Runs a
 * {@linkcode LineEncoder}.
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
   * @param options The line limit and newline (decoding options are
   * ignored).
   */
  constructor(options: LineOptions = {}) {
    super(new LineEncoder(options));
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
 * `maxLength` with a {@linkcode FrameTooLargeError}. Runs a
 * {@linkcode DelimiterEncoder}.
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
   * @param options The delimiter and limit (decoding options are ignored).
   */
  constructor(options: DelimiterOptions) {
    super(new DelimiterEncoder(options));
  }
}

/**
 * Splits bytes into length-prefixed frames. A frame within one chunk is
 * handed on as a view of it; a frame that spans chunks is assembled in a
 * buffer that grows as its bytes arrive. A length over `maxFrameLength`
 * fails at once with a {@linkcode FrameTooLargeError} (or with
 * `oversize: "discard"` the frame is skipped and reported); input that ends
 * inside a frame fails with a {@linkcode TruncatedFrameError}. Runs a
 * {@linkcode LengthPrefixDecoder}; errors as for
 * {@linkcode LineDecoderStream}.
 *
 * @example Decode two frames from one chunk
 * ```ts
 * import { LengthPrefixDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const frames = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([0, 2, 7, 8, 0, 0])])
 *     .pipeThrough(new LengthPrefixDecoderStream({ lengthFieldBytes: 2 })),
 * );
 * assert.deepEqual(frames, [new Uint8Array([7, 8]), new Uint8Array(0)]);
 * ```
 */
export class LengthPrefixDecoderStream
  extends SyncTransformStream<Uint8Array, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The layout, or a preset's name.
   */
  constructor(options: LengthPrefixOptions | LengthPrefixPreset = {}) {
    super(new LengthPrefixDecoder(options));
  }
}

/**
 * Puts a length header before each message (strings are UTF-8 encoded). A
 * message over `maxFrameLength`, or over what the field can express, fails
 * with a {@linkcode FrameTooLargeError}. Runs a
 * {@linkcode LengthPrefixEncoder}.
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
  extends SyncTransformStream<Uint8Array | string, Uint8Array> {
  /**
   * Creates the stream.
   *
   * @param options The layout, or a preset's name.
   */
  constructor(options: LengthPrefixOptions | LengthPrefixPreset = {}) {
    super(new LengthPrefixEncoder(options));
  }
}

/**
 * Hands on everything a synchronous transformer emits for one chunk as one
 * array: for a decoder, all the messages of a read in one stream chunk,
 * which saves the few promise turns each chunk costs when messages are small.
 * Chunks for which nothing is emitted produce no array.
 *
 * If the transformer throws, what it emitted before the throw is handed on
 * first, then the stream errors. Messages may be views of the input chunk,
 * as the transformer made them.
 *
 * @typeParam I The type of chunks in.
 * @typeParam O The type of the transformer's output (arrays of it come out).
 *
 * @experimental
 *
 * @example Lines in batches, one per chunk
 * ```ts
 * import { BatchStream, LineDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const batches = await Array.fromAsync(
 *   ReadableStream.from(["a\nb\nc", "\nd\n"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new BatchStream(new LineDecoder())),
 *   (batch) => batch.map((line) => new TextDecoder().decode(line)),
 * );
 * assert.deepEqual(batches, [["a", "b"], ["c", "d"]]);
 * ```
 */
export class BatchStream<I, O> extends SyncTransformStream<I, O[]> {
  /**
   * Creates the stream.
   *
   * @param transformer The work whose output is batched, such as a
   * {@linkcode LineDecoder}.
   */
  constructor(transformer: SyncTransformer<I, O>) {
    const collect = (
      run: (push: (item: O) => void) => void,
      emit: (batch: O[]) => void,
    ) => {
      const batch: O[] = [];
      try {
        run((item) => batch.push(item));
      } finally {
        // Before any error, so that nothing decoded is lost: transform runs
        // only while the consumer waits for a read, which this fulfils.
        if (batch.length > 0) emit(batch);
      }
    };
    super({
      transform: (chunk, emit) =>
        collect((push) => transformer.transform(chunk, push), emit),
      flush: (emit) => collect((push) => transformer.flush?.(push), emit),
    });
  }
}

/**
 * A pair of factories for the two directions of a framing, as
 * {@linkcode lines}, {@linkcode delimited} and {@linkcode lengthPrefixed}
 * make. Any object of this shape works with {@linkcode framed}; when its
 * streams are {@linkcode SyncTransformStream}s, `framed()` runs their
 * transformers directly.
 *
 * @typeParam In What the encoder accepts.
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
export interface Codec<In = Uint8Array> {
  /**
   * A new stream from bytes to messages.
   *
   * @param overrides Oversize settings that replace the codec's own, as
   * {@linkcode framed} passes them; a codec without limits may ignore them.
   */
  decoder(overrides?: OversizeOptions): TransformStream<Uint8Array, Uint8Array>;
  /** A new stream from messages to bytes. */
  encoder(): TransformStream<In, Uint8Array>;
}

function withOverrides<T extends OversizeOptions>(
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
 * The line codec, for {@linkcode framed}.
 *
 * @param options Limit, delimiter handling, newline and oversize policy,
 * checked now.
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
export function lines(options: LineOptions = {}): Codec<Uint8Array | string> {
  new LineDecoder(options);
  new LineEncoder(options);
  return {
    decoder: (overrides) =>
      new LineDecoderStream(withOverrides(options, overrides)),
    encoder: () => new LineEncoderStream(options),
  };
}

/**
 * The delimiter codec, for {@linkcode framed}.
 *
 * @param options The delimiter, limit and oversize policy, checked now.
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
  };
}

/**
 * The length-prefix codec, for {@linkcode framed}.
 *
 * @param options The layout or a preset's name, checked now (the encoder's
 * extra rule, `lengthFieldOffset` needing `keepHeader`, when it is made).
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
  };
}

/**
 * Message-level streams over a connection, from {@linkcode framed}.
 *
 * @typeParam In What the writable accepts.
 * @typeParam Out What the readable yields: messages, or arrays of them with
 * `batch: true`.
 *
 * @example A function that takes message streams
 * ```ts
 * import { type Framed, framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * async function firstLine(streams: Framed<string>): Promise<string> {
 *   for await (const line of streams.readable) {
 *     return new TextDecoder().decode(line);
 *   }
 *   return "";
 * }
 * const streams = framed(
 *   {
 *     readable: ReadableStream.from([new TextEncoder().encode("hello\nrest")]),
 *     writable: new WritableStream(),
 *   },
 *   lines(),
 * );
 * assert.equal(await firstLine(streams), "hello");
 * ```
 */
export interface Framed<In = Uint8Array, Out = Uint8Array> {
  /** The messages the peer sends; ends at its FIN. */
  readonly readable: ReadableStream<Out>;
  /** The messages we send; closing it half-closes the connection. */
  readonly writable: WritableStream<In>;
}

/**
 * Options for {@linkcode framed}.
 *
 * @example Batches, with oversized frames skipped
 * ```ts
 * import { framed, type FramedOptions, lengthPrefixed } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options: FramedOptions = { batch: true, oversize: "discard" };
 * const { readable } = framed(
 *   {
 *     readable: ReadableStream.from([new Uint8Array([1, 7, 3, 0, 0, 0, 1, 8])]),
 *     writable: new WritableStream(),
 *   },
 *   lengthPrefixed({ lengthFieldBytes: 1, maxFrameLength: 2 }),
 *   options,
 * );
 * assert.deepEqual(await Array.fromAsync(readable), [
 *   [new Uint8Array([7]), new Uint8Array([8])],
 * ]);
 * ```
 */
export interface FramedOptions extends OversizeOptions {
  /**
   * Whether the readable yields arrays: all the messages decoded from one
   * read at once, instead of one stream chunk per message.
   *
   * @default {false}
   */
  batch?: boolean;
}

/**
 * What {@linkcode framed} runs over: a {@linkcode Connection} (of any
 * subclass, such as the one `serve()` hands its handler), a bare `Deno.Conn`
 * (which `framed()` wraps in a `Connection`, never using its own
 * `readable`/`writable`), or any pair of byte streams.
 *
 * @example A pair of in-memory byte streams
 * ```ts
 * import { framed, type FramedTarget, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const target: FramedTarget = {
 *   readable: ReadableStream.from([]),
 *   writable: new WritableStream({
 *     write: (bytes) => void sent.push(new TextDecoder().decode(bytes)),
 *   }),
 * };
 * await ReadableStream.from(["a", "b"]).pipeTo(framed(target, lines()).writable);
 * assert.deepEqual(sent, ["a\n", "b\n"]);
 * ```
 */
export type FramedTarget = Deno.Conn | {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
};

/**
 * Message-level streams over a connection: write messages in, read messages
 * out. Closing the `writable` flushes and half-closes the connection; errors
 * of either direction surface on the stream of that direction.
 *
 * The codec's synchronous cores, when it has them (all of this module's
 * do), run right in the streams' pull and write: there is no stream hop per
 * stage, and when decoding fails, every message before the bad one is
 * delivered before the readable errors. `oversize` and `onOversize` here
 * replace the codec's own, so a line server can answer "line too long" and
 * go on; `batch: true` yields each read's messages as one array.
 *
 * @param target A {@linkcode Connection}, a bare `Deno.Conn` (wrapped in a
 * `Connection`) or any readable and writable byte pair.
 * @param codec How messages are framed: {@linkcode lines},
 * {@linkcode delimited}, {@linkcode lengthPrefixed} or your own.
 * @param options Oversize policy and batching.
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
  target: FramedTarget,
  codec: Codec<In>,
  options?: FramedOptions & { batch?: false },
): Framed<In, Uint8Array>;
/**
 * Message-level streams over a connection whose readable yields arrays: all
 * the messages decoded from one read at once. Otherwise as above.
 *
 * @param target A connection wrapper, a bare `Deno.Conn` or a byte pair.
 * @param codec How messages are framed.
 * @param options Oversize policy, and `batch: true`.
 * @returns The message streams, the readable yielding arrays.
 *
 * @example Batches of pipelined lines; a too-long line answered in order
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const TOO_LONG = new Uint8Array(0);
 * const bytes = new TextEncoder().encode("a\nbb\n" + "c".repeat(99) + "\nd\n");
 * const { readable, writable } = framed(
 *   { readable: ReadableStream.from([bytes]), writable: new WritableStream() },
 *   lines({ maxLineLength: 8 }),
 *   { batch: true, oversize: "discard", onOversize: () => TOO_LONG },
 * );
 * const answers: string[] = [];
 * for await (const batch of readable) {
 *   for (const line of batch) {
 *     answers.push(line === TOO_LONG ? "ERR too long" : `${line.length}`);
 *   }
 * }
 * await writable.close();
 * assert.deepEqual(answers, ["1", "2", "ERR too long", "1"]);
 * ```
 */
export function framed<In>(
  target: FramedTarget,
  codec: Codec<In>,
  options: FramedOptions & { batch: true },
): Framed<In, Uint8Array[]>;
/**
 * Message-level streams over a connection, with `batch` known only at run
 * time: the readable yields messages or arrays of them.
 *
 * @param target A connection wrapper, a bare `Deno.Conn` or a byte pair.
 * @param codec How messages are framed.
 * @param options Oversize policy and batching.
 * @returns The message streams.
 */
export function framed<In>(
  target: FramedTarget,
  codec: Codec<In>,
  options?: FramedOptions,
): Framed<In, Uint8Array | Uint8Array[]>;
export function framed<In>(
  target: FramedTarget,
  codec: Codec<In>,
  options: FramedOptions = {},
): Framed<In, Uint8Array | Uint8Array[]> {
  const { batch = false, oversize, onOversize } = options;
  const bytes = isBareConn(target) ? new Connection(target) : target;
  const overrides = oversize === undefined && onOversize === undefined
    ? undefined
    : { oversize, onOversize };
  const decoder = codec.decoder(overrides);
  const encoder = codec.encoder();
  let readable: ReadableStream<Uint8Array | Uint8Array[]>;
  if (decoder instanceof SyncTransformStream) {
    readable = messageReadable(
      bytes instanceof Connection ? bytes : bytes.readable,
      decoder.transformer,
      batch,
    );
  } else {
    const messages = bytes.readable.pipeThrough(decoder);
    readable = batch
      ? messages.pipeThrough(
        new TransformStream<Uint8Array, Uint8Array[]>({
          transform: (m, controller) => controller.enqueue([m]),
        }),
      )
      : messages;
  }
  let writable: WritableStream<In>;
  if (encoder instanceof SyncTransformStream) {
    writable = messageWritable(
      bytes instanceof Connection ? bytes : bytes.writable,
      encoder.transformer,
    );
  } else {
    // pipeTo propagates errors both ways; its promise is observed there.
    encoder.readable.pipeTo(bytes.writable).catch(() => {});
    writable = encoder.writable;
  }
  return { readable, writable };
}

/**
 * Whether `target` is a bare connection, which must be wrapped: its own
 * `readable` closes the whole connection at EOF and its `writable` cannot
 * half-close. A `Connection` (of any subclass) is used as it is; so is
 * any other object without `read()`, such as a plain byte pair.
 */
function isBareConn(target: FramedTarget): target is Deno.Conn {
  const conn = target as Partial<Deno.Conn>;
  return !(target instanceof Connection) &&
    typeof conn.read === "function" && typeof conn.closeWrite === "function";
}

/**
 * Messages (or batches) decoded from `source` by `decoder`, one decoded
 * read at a time as the consumer pulls. When decoding fails, the messages
 * before the failure are still delivered, then the stream errors.
 */
function messageReadable(
  source: Connection | ReadableStream<Uint8Array>,
  decoder: SyncTransformer<Uint8Array, Uint8Array>,
  batch: boolean,
): ReadableStream<Uint8Array | Uint8Array[]> {
  // Locked at the first read, not before: until then the bytes are the
  // caller's to read in some other way. A Connection is read with its pull
  // reader: no byte stream in between.
  let reader:
    | { read(): Promise<{ done: boolean; value?: Uint8Array }> }
    | undefined;
  let stop: (reason: unknown) => Promise<void> = (reason) =>
    (source instanceof Connection ? source.readable : source).cancel(reason);
  const open = () => {
    if (source instanceof ReadableStream) {
      const byteReader = source.getReader();
      stop = (reason) => byteReader.cancel(reason);
      return byteReader;
    }
    const pull = source.reader();
    stop = (reason) => {
      pull.releaseLock();
      return source.readable.cancel(reason);
    };
    return {
      read: () =>
        pull.read().then((value) =>
          value === null ? { done: true } : { done: false, value }
        ),
    };
  };
  let queue: Uint8Array[] = [];
  let next = 0;
  let ended = false;
  let failed = false;
  let failure: unknown = undefined;
  const push = (message: Uint8Array) => queue.push(message);
  return new ReadableStream<Uint8Array | Uint8Array[]>({
    async pull(controller) {
      while (true) {
        if (next < queue.length) {
          if (batch) {
            controller.enqueue(queue); // a new array after each read
            next = queue.length;
          } else controller.enqueue(queue[next++]!);
          return;
        }
        if (failed) {
          controller.error(failure);
          return;
        }
        if (ended) {
          controller.close();
          return;
        }
        reader ??= open();
        const { done, value } = await reader.read();
        queue = [];
        next = 0;
        try {
          if (done) {
            ended = true;
            decoder.flush?.(push);
          } else decoder.transform(value!, push);
        } catch (error) {
          failed = true;
          failure = error;
          // Stop the bytes as a pipe would: the connection may then close.
          if (!done) stop(error).catch(() => {});
        }
      }
    },
    cancel: (reason) => stop(reason),
  }, { highWaterMark: 0 });
}

/**
 * A writable of messages that encodes each with `encoder` and writes the
 * bytes to `sink`. An encoding error aborts the sink (as a pipe would); an
 * error of the sink errors this stream.
 */
function messageWritable<In>(
  sink: Connection | WritableStream<Uint8Array>,
  encoder: SyncTransformer<In, Uint8Array>,
): WritableStream<In> {
  let controller: WritableStreamDefaultController;
  // Locked at the first use, not before: until then the sink is the
  // caller's to write in some other way. A Connection is written directly:
  // no byte stream in between.
  let writer:
    | Pick<WritableStreamDefaultWriter<Uint8Array>, "write" | "close" | "abort">
    | undefined;
  const sinkWriter = () => {
    if (writer !== undefined) return writer;
    if (sink instanceof Connection) {
      sink.closed.catch((error) => controller.error(error));
      writer = {
        write: (bytes) => sink.write(bytes!),
        close: () => sink.closeWrite(),
        abort: (reason) => Promise.resolve(sink.close(reason)),
      };
    } else {
      const streamWriter = sink.getWriter();
      streamWriter.closed.catch((error) => controller.error(error));
      writer = streamWriter;
    }
    return writer;
  };
  const encode = (run: (push: (bytes: Uint8Array) => void) => void) => {
    const out: Uint8Array[] = [];
    try {
      run((bytes) => out.push(bytes));
    } catch (error) {
      sinkWriter().abort(error).catch(() => {});
      throw error;
    }
    return out;
  };
  return new WritableStream<In>({
    start(c) {
      controller = c;
    },
    async write(message) {
      const out = encode((push) => encoder.transform(message, push));
      for (const bytes of out) await sinkWriter().write(bytes);
    },
    async close() {
      const out = encode((push) => encoder.flush?.(push));
      for (const bytes of out) await sinkWriter().write(bytes);
      await sinkWriter().close();
    },
    abort: (reason) => sinkWriter().abort(reason),
  });
}

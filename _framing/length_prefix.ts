/**
 * Length-prefixed frames: {@linkcode LengthPrefixDecoder} and
 * {@linkcode LengthPrefixEncoder}, the synchronous cores, and the streams
 * that run them.
 *
 * @module
 */

import { FrameTooLargeError, TruncatedFrameError } from "../_errors.ts";
import { SyncTransformStream } from "../sync_transform.ts";
import { INITIAL_BUFFER, toBytes, view, writeMessage } from "./bytes.ts";
import { copyBytes } from "../_connection/bytes.ts";
import type { SyncEncoder } from "./sync_encoder.ts";
import type { SyncDecoder } from "./sync_decoder.ts";
import {
  type LengthPrefixOptions,
  type LengthPrefixPreset,
  type PrefixLayout,
  prefixLayout,
  readField,
  writeField,
} from "./length_prefix_layout.ts";
import { replace } from "./options.ts";

/**
 * Splits bytes into frames, each a header holding a length and then that
 * many bytes of payload: the synchronous core of
 * {@linkcode LengthPrefixDecoderStream}. See {@linkcode LengthPrefixOptions}
 * for the layouts and {@linkcode LENGTH_PREFIX_PRESETS} for named ones.
 *
 * - A frame inside one chunk is emitted as a view of it, without a copy.
 * - A frame that spans chunks is copied into a buffer that grows as its bytes
 *   arrive: a header announcing 1 GiB reserves nothing up front. Under
 *   `framed()` over a connection, the rest of a large frame is read from the
 *   socket straight into that buffer.
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
export class LengthPrefixDecoder implements SyncDecoder<Uint8Array> {
  /**
   * It keeps nothing of a chunk past the call (a message that spans chunks
   * is copied), so a connection's engine may lend it its reused read buffer
   * (see `input` on {@linkcode SyncDecoder}, from `SyncTransformer`); a
   * message it emits as a view of the chunk is then valid until the
   * engine's next read.
   *
   * @experimental
   */
  readonly input: "borrow" = "borrow";
  readonly #layout: PrefixLayout;
  readonly #head: Uint8Array;
  #headFill = 0;
  /** The frame being assembled across chunks. */
  #body: Uint8Array | undefined = undefined;
  #bodyFill = 0;
  #bodyTotal = 0;
  /** What the last `reserve()` lent, until bytes are added to the frame. */
  #lent = 0;
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
          emit(view(chunk, layout.keepHeader ? i : i + header, end));
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

  /**
   * Memory for the rest of a frame that spans chunks (`undefined` between
   * frames), grown to hold `room` more bytes where the frame needs them:
   * {@linkcode framed} reads a large frame's rest straight into it. See
   * {@linkcode SyncDecoder.reserve}.
   *
   * @experimental
   * @param room The most the caller will write at once.
   * @returns A view of the frame's next bytes, at most `room` of them and
   * never past its end, or `undefined`.
   *
   * @example The rest of a frame, in place
   * ```ts
   * import { LengthPrefixDecoder } from "@x/sock/framing";
   * import assert from "node:assert/strict";
   *
   * const decoder = new LengthPrefixDecoder();
   * const frames: Uint8Array[] = [];
   * decoder.transform(new Uint8Array([0, 0, 0, 3, 7]), (f) => frames.push(f));
   * const rest = decoder.reserve(1024)!;
   * assert.equal(rest.length, 2);
   * rest.set([8, 9]);
   * decoder.commit(2, (f) => frames.push(f));
   * assert.deepEqual(frames, [new Uint8Array([7, 8, 9])]);
   * assert.equal(decoder.reserve(1024), undefined); // between frames
   * ```
   */
  reserve(room: number): Uint8Array | undefined {
    if (this.#body === undefined || this.#failed) return undefined;
    const fill = this.#bodyFill;
    const want = Math.min(this.#bodyTotal, fill + room);
    this.#lent = want - fill;
    return view(this.#bodyFor(want), fill, want);
  }

  /**
   * Takes the `n` bytes written at the start of what
   * {@linkcode LengthPrefixDecoder.prototype.reserve} returned, emitting the
   * frame once it is whole. See {@linkcode SyncDecoder.commit}.
   *
   * @experimental
   * @param n How many bytes were written.
   * @param emit Receives the frame they complete.
   */
  commit(n: number, emit: (frame: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    const lent = this.#lent;
    if (!(n >= 0 && n <= lent)) {
      throw new RangeError(
        `Cannot commit ${n} bytes to the frame under way: ${lent} bytes are reserved`,
      );
    }
    this.#filled(this.#bodyFill + n, emit);
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
    const take = Math.min(this.#bodyTotal - this.#bodyFill, chunk.length - i);
    const fill = this.#bodyFill + take;
    this.#bodyFor(fill).set(chunk.subarray(i, i + take), this.#bodyFill);
    this.#filled(fill, emit);
    return i + take;
  }

  /**
   * The frame's buffer, grown to hold `length` bytes (at most the frame's)
   * by doublings at least, so that a large frame is copied a few times, not
   * at every chunk.
   */
  #bodyFor(length: number): Uint8Array {
    const body = this.#body!;
    if (length <= body.length) return body;
    const grown = new Uint8Array(
      Math.min(this.#bodyTotal, Math.max(length, body.length * 2)),
    );
    grown.set(body.subarray(0, this.#bodyFill));
    return this.#body = grown;
  }

  /** The frame's bytes now reach `fill`: it is emitted once whole. */
  #filled(fill: number, emit: (frame: Uint8Array) => void): void {
    this.#bodyFill = fill;
    this.#lent = 0; // what reserve() lent is used, or stale
    const total = this.#bodyTotal;
    if (fill < total) return;
    const body = this.#body!;
    this.#body = undefined;
    emit(body.length === total ? body : body.subarray(0, total));
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
 * of {@linkcode LengthPrefixEncoderStream}. Strings are UTF-8 encoded.
 * Payloads of any length the field can express are written unless
 * `maxEncodedLength` is set (`maxFrameLength` limits decoding only). A
 * payload over `maxEncodedLength`, or over what the length field can
 * express, is a {@linkcode FrameTooLargeError} with both numbers; one too
 * short for the layout (under a positive `lengthAdjustment`) is a
 * `RangeError`.
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
 *
 * @example What a 1-byte length field cannot express
 * ```ts
 * import { FrameTooLargeError, LengthPrefixEncoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const encoder = new LengthPrefixEncoder({ lengthFieldBytes: 1 });
 * assert.throws(() => encoder.transform(new Uint8Array(300), () => {}), {
 *   name: "FrameTooLargeError",
 *   message:
 *     "Cannot encode frame as its length must be <= 255 bytes for a 1-byte length field: current length is 300 bytes",
 * });
 * assert.ok(new FrameTooLargeError("", 300, 255) instanceof RangeError);
 * ```
 */
export class LengthPrefixEncoder implements SyncEncoder<Uint8Array | string> {
  readonly #layout: PrefixLayout;

  /**
   * Creates the encoder.
   *
   * @param options The layout and `maxEncodedLength`, or a preset's name
   * (the decoding options, `maxFrameLength` among them, are checked but
   * not applied).
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

  /**
   * Writes the frame of `message`, header and all, into `buffer` at
   * `offset`, as `transform()` would emit it, with no allocation: what
   * {@linkcode framed} calls to encode straight into the connection's write
   * buffer. See {@linkcode SyncEncoder}.
   *
   * @experimental
   * @param message The payload (with `keepHeader`, the whole frame).
   * @param buffer Where to write.
   * @param offset Where in `buffer` to start.
   * @returns The offset after the frame, or -1 when it does not fit.
   * @throws {FrameTooLargeError} The length is over `maxEncodedLength` or
   * over what the field can express.
   */
  encodeInto(
    message: Uint8Array | string,
    buffer: Uint8Array,
    offset: number,
  ): number {
    const layout = this.#layout;
    if (message instanceof Uint8Array && !layout.keepHeader) {
      // Bytes after a header of ours: the common case, kept tight.
      const length = message.length;
      const start = offset + layout.header;
      if (start + length > buffer.length) return -1;
      this.#check(length);
      copyBytes(message, buffer, start);
      writeField(
        buffer,
        offset,
        layout.width,
        layout.littleEndian,
        length - layout.adjustment + layout.counted,
      );
      return start + length;
    }
    const start = layout.keepHeader ? offset : offset + layout.header;
    if (start > buffer.length) return -1;
    const end = writeMessage(message, buffer, start, 0, "frame");
    if (end < 0) return -1;
    const payload = end - offset - layout.header;
    if (payload < 0) {
      throw new RangeError(
        `Cannot encode frame as it must start with its ${layout.header}-byte header: current length is ${
          end - offset
        } bytes`,
      );
    }
    this.#check(payload);
    writeField(
      buffer,
      offset + layout.offset,
      layout.width,
      layout.littleEndian,
      payload - layout.adjustment + layout.counted,
    );
    return end;
  }

  #check(payload: number): void {
    const layout = this.#layout;
    // The option's limit, when set, is within the field's: check it first.
    if (payload > layout.encodeLimit) {
      throw new FrameTooLargeError(
        `Cannot encode frame as its length must be <= ${layout.encodeLimit} bytes: current length is ${payload} bytes`,
        payload,
        layout.encodeLimit,
      );
    }
    if (payload > layout.expressible) {
      throw new FrameTooLargeError(
        `Cannot encode frame as its length must be <= ${layout.expressible} bytes for a ${layout.width}-byte length field: current length is ${payload} bytes`,
        payload,
        layout.expressible,
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
 * message over `maxEncodedLength` (unlimited by default), or over what the
 * field can express, fails with a {@linkcode FrameTooLargeError}. Runs a
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

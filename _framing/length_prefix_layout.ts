/**
 * The length-prefix layout: its options and named presets, resolving and
 * checking them, and reading and writing the length field.
 *
 * @module
 */

import type { FrameTooLargeError } from "../_errors.ts";
import {
  checkCount,
  checkEncodedLength,
  checkPolicy,
  type OversizeOptions,
} from "./options.ts";

/**
 * The named length-prefix layouts in {@linkcode LENGTH_PREFIX_PRESETS}.
 *
 * - `"uint32be"`: a 4-byte big-endian payload length; the default.
 * - `"dns"`: DNS over TCP (RFC 1035 section 4.2.2, RFC 7766 section 8), a
 *   2-byte big-endian length before each message, up to 65535 bytes.
 * - `"tls-record"`: TLS records (RFC 8446 section 5.1): type (1 byte) and
 *   version (2), then a 2-byte big-endian length; frames keep their 5-byte
 *   header; at most 2^14 + 2048 bytes of payload, read or written.
 * - `"mongodb"`: MongoDB wire messages, a 4-byte little-endian length that
 *   counts itself; frames keep it; at most 48,000,000 bytes, read or
 *   written.
 *
 * A preset's limits are the protocol's, so they bound both directions
 * (`maxFrameLength` and `maxEncodedLength`).
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
   * Decoding: the longest payload read, in bytes, not counting the header.
   * Must be within what the length field can express; by default 1 MiB or
   * that, whichever is smaller. It does not limit the frames written (see
   * `maxEncodedLength`).
   *
   * @default {1048576}
   */
  maxFrameLength?: number;
  /**
   * Encoding: the longest payload written, in bytes, not counting the
   * header; a longer one is refused with a {@linkcode FrameTooLargeError}.
   * Whatever it is, a payload the length field cannot express is refused
   * too, naming the field's limit. A non-negative integer within what the
   * field can express, or `Infinity`.
   *
   * @default {Infinity}
   */
  maxEncodedLength?: number;
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
      maxEncodedLength: 16384 + 2048,
    }),
    "mongodb": Object.freeze({
      lengthFieldBytes: 4,
      littleEndian: true,
      lengthIncludesHeader: true,
      keepHeader: true,
      maxFrameLength: 48_000_000 - 4,
      maxEncodedLength: 48_000_000 - 4,
    }),
  } as const,
);

/** A length-prefix layout, resolved and checked. */
export interface PrefixLayout {
  offset: number;
  width: number;
  littleEndian: boolean;
  adjustment: number;
  /** What the field counts besides the payload: the header, or 0. */
  counted: number;
  header: number;
  keepHeader: boolean;
  /** Decoding: the longest payload read. */
  limit: number;
  /** Encoding: the longest payload written (`Infinity` when unlimited). */
  encodeLimit: number;
  /** The longest payload the field can announce. */
  expressible: number;
  /** The largest value the field holds. */
  fieldMax: number;
  discard: boolean;
  onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
}

/** Resolves `input` over its preset and checks it, for `what` (the class). */
export function prefixLayout(
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
  const encodeLimit = checkEncodedLength(
    what,
    options.maxEncodedLength ?? preset.maxEncodedLength,
  );
  if (encodeLimit !== Infinity && encodeLimit > expressible) {
    throw new RangeError(
      `Cannot create ${what} as maxEncodedLength must be <= ${expressible} bytes for a ${width}-byte length field: current value is ${encodeLimit}`,
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
    encodeLimit,
    expressible,
    fieldMax,
    ...checkPolicy(what, options),
  };
}

/** The unsigned length field at `at`, `width` bytes, in the given order. */
export function readField(
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

/** Writes `value` as an unsigned length field at `at`, `width` bytes. */
export function writeField(
  bytes: Uint8Array,
  at: number,
  width: number,
  littleEndian: boolean,
  value: number,
): void {
  if (width === 4 && !littleEndian) {
    // The common case (uint32be, mongodb's is little-endian), in shifts.
    bytes[at] = value >>> 24;
    bytes[at + 1] = (value >>> 16) & 0xff;
    bytes[at + 2] = (value >>> 8) & 0xff;
    bytes[at + 3] = value & 0xff;
    return;
  }
  let rest = value;
  for (let i = 0; i < width; i++) {
    bytes[littleEndian ? at + i : at + width - 1 - i] = rest % 256;
    rest = Math.floor(rest / 256);
  }
}

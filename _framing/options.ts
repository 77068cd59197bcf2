/**
 * The options of the line and delimiter codecs and the oversize policy every
 * decoder shares, with the checks the codecs run on them and the report of a
 * dropped message.
 *
 * Each codec has two limits, one per direction: the decoding limit
 * (`maxLineLength`, `maxLength`, `maxFrameLength`) bounds what a peer can
 * make this side hold, and `maxEncodedLength` bounds what this side sends,
 * unlimited unless set. A short input limit never cuts a long answer.
 *
 * @module
 */

import type { FrameTooLargeError } from "../_errors.ts";

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
 * streams; {@linkcode lines} passes the same object to both. The decoder
 * reads `maxLineLength`, `keepDelimiter` and the oversize policy; the
 * encoder reads `newline` and `maxEncodedLength`.
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
   * Decoding: the longest line read, in bytes, not counting its "\n" or
   * "\r\n". It does not limit the lines written (see
   * `maxEncodedLength`).
   *
   * @default {65536}
   */
  maxLineLength?: number;
  /**
   * Encoding: the longest line written, in bytes, not counting its newline;
   * a longer one is refused with a {@linkcode FrameTooLargeError}. A
   * non-negative integer, or `Infinity`.
   *
   * @default {Infinity}
   */
  maxEncodedLength?: number;
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
 * Options for {@linkcode TextLineDecoder} and {@linkcode TextLineDecoderStream},
 * and for `lines({ text: true })`: the line options, with each line decoded
 * from UTF-8 into a string as a `TextDecoder` would. `maxLineLength` still
 * counts bytes.
 *
 * @example Invalid UTF-8 is an error rather than "\uFFFD"
 * ```ts
 * import { TextLineDecoder, type TextLineOptions } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options: TextLineOptions = { fatal: true, maxLineLength: 1024 };
 * const decoder = new TextLineDecoder(options);
 * assert.throws(
 *   () => decoder.transform(new Uint8Array([0xff, 0x0a]), () => {}),
 *   TypeError,
 * );
 * ```
 */
export interface TextLineOptions extends Omit<LineOptions, "onOversize"> {
  /**
   * Whether bytes that are not UTF-8 are a `TypeError` rather than
   * replaced with "\uFFFD".
   *
   * @default {false}
   */
  fatal?: boolean;
  /**
   * Whether a byte order mark at the very start of the input is kept, as
   * the first character of the first line, rather than removed (as
   * `TextDecoder`'s option of the same name). A "\uFEFF" at the start of
   * any later line is always kept.
   *
   * @default {false}
   */
  ignoreBOM?: boolean;
  /**
   * As {@linkcode OversizeOptions.onOversize}: called once per dropped line
   * under `oversize: "discard"`; a string it returns is handed on in the
   * dropped line's place, and bytes are decoded first (so one callback
   * serves both the bytes and the text mode).
   *
   * @experimental
   */
  onOversize?: (error: FrameTooLargeError) => string | Uint8Array | void;
}

/**
 * Options for {@linkcode DelimiterDecoder}, {@linkcode DelimiterEncoder} and
 * their streams; {@linkcode delimited} passes the same object to both. Both
 * read `delimiter`; the decoder reads `maxLength`, `keepDelimiter` and the
 * oversize policy, the encoder `maxEncodedLength`.
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
   * Decoding: the longest message read, in bytes, not counting its
   * delimiter. It does not limit the messages written (see
   * `maxEncodedLength`).
   *
   * @default {65536}
   */
  maxLength?: number;
  /**
   * Encoding: the longest message written, in bytes, not counting its
   * delimiter; a longer one is refused with a {@linkcode FrameTooLargeError}.
   * A non-negative integer, or `Infinity`.
   *
   * @default {Infinity}
   */
  maxEncodedLength?: number;
  /**
   * Decoding: whether decoded messages keep their delimiter.
   *
   * @default {false}
   */
  keepDelimiter?: boolean;
}

/** Checks a count option: a non-negative safe integer. */
export function checkCount(what: string, name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(
      `Cannot create ${what} as ${name} must be a non-negative integer: current value is ${
        String(value)
      }`,
    );
  }
  return value as number;
}

/**
 * Checks an encoder's limit: a non-negative safe integer or `Infinity`,
 * `Infinity` when not given.
 */
export function checkEncodedLength(what: string, value: unknown): number {
  if (value === undefined || value === Infinity) return Infinity;
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new RangeError(
      `Cannot create ${what} as maxEncodedLength must be a non-negative integer or Infinity: current value is ${
        String(value)
      }`,
    );
  }
  return value as number;
}

/** Checks the oversize policy, resolved for a decoder. */
export function checkPolicy(what: string, options: OversizeOptions): {
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

/** Reports a dropped message, emitting what `onOversize` returns. */
export function replace(
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

/**
 * Lines as strings: {@linkcode TextLineDecoder}, the synchronous core, and
 * {@linkcode TextLineDecoderStream}, the stream that runs it. Bytes in,
 * one string per line out, empty lines and characters split across chunks
 * kept.
 *
 * @module
 */

import type { FrameTooLargeError } from "../_errors.ts";
import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import { LineDecoder } from "./line.ts";
import {
  checkPolicy,
  type OversizeOptions,
  type TextLineOptions,
} from "./options.ts";

/**
 * Handed through the line decoder in a dropped line's place when
 * `onOversize` gave a replacement; never leaves this module.
 */
const DROPPED = new Uint8Array(0);

const BOM = "\uFEFF";

function noop(): void {}

/**
 * Splits bytes into lines at "\n", removing a "\r" before it unless
 * `keepDelimiter` is set, and decodes each line from UTF-8 into a string:
 * the synchronous core of {@linkcode TextLineDecoderStream}. Empty lines are
 * emitted as `""`; a character split across chunks is whole, since a line is
 * decoded only once all its bytes are in ("\n" is never part of a multi-byte
 * character). `maxLineLength` counts bytes, as for {@linkcode LineDecoder}.
 *
 * Invalid UTF-8 becomes "\uFFFD", or with `fatal: true` is a `TypeError`;
 * a byte order mark at the start of the input is removed unless
 * `ignoreBOM` is set. Call `transform` with each chunk and `flush` at the end
 * of input. After an error, every call throws that error again.
 *
 * @example Lines of a request, the blank line that ends its head included
 * ```ts
 * import { TextLineDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const decoder = new TextLineDecoder();
 * const lines: string[] = [];
 * const bytes = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: é\r\n\r\nbody");
 * // Split inside "é" (2 bytes): the line still decodes whole.
 * const at = bytes.indexOf(0xc3) + 1;
 * decoder.transform(bytes.subarray(0, at), (line) => lines.push(line));
 * decoder.transform(bytes.subarray(at), (line) => lines.push(line));
 * decoder.flush((line) => lines.push(line));
 * assert.deepEqual(lines, ["GET / HTTP/1.1", "Host: é", "", "body"]);
 * ```
 *
 * @example Answer a dropped line in order, as text
 * ```ts
 * import { TextLineDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const decoder = new TextLineDecoder({
 *   maxLineLength: 4,
 *   oversize: "discard",
 *   onOversize: (error) => `(dropped ${error.length} bytes)`,
 * });
 * const lines: string[] = [];
 * decoder.transform(
 *   new TextEncoder().encode("ok\nway too long\n\nok\n"),
 *   (line) => lines.push(line),
 * );
 * assert.deepEqual(lines, ["ok", "(dropped 12 bytes)", "", "ok"]);
 * ```
 */
export class TextLineDecoder implements SyncTransformer<Uint8Array, string> {
  /**
   * It keeps nothing of a chunk past the call (a message that spans chunks
   * is copied), so a connection's engine may lend it its reused read buffer
   * (see {@linkcode SyncTransformer.input}); a message it emits as a view of
   * the chunk is then valid until the engine's next read.
   *
   * @experimental
   */
  readonly input: "borrow" = "borrow";
  readonly #lines: LineDecoder;
  readonly #text: TextDecoder;
  readonly #fatal: boolean;
  readonly #stripBOM: boolean;
  /** No line yet: a byte order mark may start this one. */
  #first = true;
  /** What `onOversize` gave for the line being dropped. */
  #replacement = "";
  #emit: (line: string) => void = noop;

  /**
   * Creates the decoder.
   *
   * @param options Limit, delimiter handling, oversize policy and UTF-8
   * handling.
   */
  constructor(options: TextLineOptions = {}) {
    const what = "text line decoder";
    // Checked here, so that an error names this class and its option type.
    const { onOversize } = checkPolicy(what, options as OversizeOptions);
    this.#fatal = options.fatal ?? false;
    this.#stripBOM = !(options.ignoreBOM ?? false);
    for (const name of ["fatal", "ignoreBOM"] as const) {
      const value: unknown = options[name];
      if (value !== undefined && typeof value !== "boolean") {
        throw new TypeError(
          `Cannot create ${what} as ${name} must be a boolean: current type is ${
            value === null ? "null" : typeof value
          }`,
        );
      }
    }
    // The BOM is handled here, once, rather than at the start of each line.
    this.#text = new TextDecoder("utf-8", {
      fatal: this.#fatal,
      ignoreBOM: true,
    });
    this.#lines = new LineDecoder({
      maxLineLength: options.maxLineLength,
      keepDelimiter: options.keepDelimiter,
      oversize: options.oversize,
      onOversize: (error) => this.#dropped(error, onOversize),
    });
  }

  /**
   * Emits every line that ends in `chunk`, as a string.
   *
   * @param chunk The next bytes; read only during this call.
   * @param emit Receives each line.
   */
  transform(chunk: Uint8Array, emit: (line: string) => void): void {
    this.#emit = emit;
    try {
      this.#lines.transform(chunk, this.#onLine);
    } finally {
      this.#emit = noop;
    }
  }

  /**
   * Emits the last line if the input did not end with "\n".
   *
   * @param emit Receives the line.
   */
  flush(emit: (line: string) => void): void {
    this.#emit = emit;
    try {
      this.#lines.flush(this.#onLine);
    } finally {
      this.#emit = noop;
    }
  }

  readonly #onLine = (line: Uint8Array): void => {
    if (line === DROPPED) {
      const replacement = this.#replacement;
      this.#replacement = "";
      this.#emit(replacement);
      return;
    }
    let text = this.#decode(line);
    if (this.#first) {
      this.#first = false;
      if (this.#stripBOM && text.startsWith(BOM)) text = text.slice(1);
    }
    this.#emit(text);
  };

  #decode(bytes: Uint8Array): string {
    if (!this.#fatal) return this.#text.decode(bytes);
    try {
      return this.#text.decode(bytes);
    } catch (cause) {
      throw new TypeError(
        `Cannot decode line as it must be valid UTF-8: current line of ${bytes.length} bytes is not`,
        { cause },
      );
    }
  }

  /** The line decoder's `onOversize`: the user's, its answer made text. */
  #dropped(
    error: FrameTooLargeError,
    onOversize:
      | ((error: FrameTooLargeError) => string | Uint8Array | void)
      | undefined,
  ): Uint8Array | void {
    this.#first = false;
    if (onOversize === undefined) return;
    const replacement: unknown = onOversize(error);
    if (replacement === undefined) return;
    if (typeof replacement === "string") this.#replacement = replacement;
    else if (replacement instanceof Uint8Array) {
      this.#replacement = this.#decode(replacement);
    } else {
      throw new TypeError(
        `Cannot hand on a dropped line's replacement as onOversize must return a string, a Uint8Array or undefined: current type is ${
          replacement === null ? "null" : typeof replacement
        }`,
      );
    }
    return DROPPED;
  }
}

/**
 * Splits bytes into lines at "\n" (removing a "\r" before it) and hands on
 * each as a string: the stream to read text lines with. Unlike a
 * {@linkcode LineDecoderStream} piped into a `TextDecoderStream`, which skips
 * empty chunks, it keeps empty lines as `""`, and a character split across
 * chunks is decoded whole. Limit, oversize policy and errors as for
 * {@linkcode LineDecoderStream}; runs a {@linkcode TextLineDecoder}, which a
 * connection's engine can call directly.
 *
 * @example Read text lines, blank ones included, from one-byte chunks
 * ```ts
 * import { TextLineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("one\r\n\ntwo 🦕\nthree");
 * const lines = await Array.fromAsync(
 *   ReadableStream.from(Array.from(bytes, (b) => new Uint8Array([b])))
 *     .pipeThrough(new TextLineDecoderStream()),
 * );
 * assert.deepEqual(lines, ["one", "", "two 🦕", "three"]);
 * ```
 */
export class TextLineDecoderStream
  extends SyncTransformStream<Uint8Array, string> {
  /**
   * Creates the stream.
   *
   * @param options Limit, delimiter handling, oversize policy and UTF-8
   * handling.
   */
  constructor(options: TextLineOptions = {}) {
    super(new TextLineDecoder(options));
  }
}

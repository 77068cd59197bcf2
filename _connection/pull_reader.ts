/**
 * The pull reader over a connection's read side
 * ({@linkcode ConnectionReader}, public through `connection.ts`): read
 * exactly n bytes, read until a delimiter, peek, release with the unread
 * bytes. It reaches the connection only through a {@linkcode ReaderIO}.
 *
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * await using server = new Connection(await listener.accept());
 * await using peer = new Connection(await client);
 * await peer.write(new TextEncoder().encode("hi\n"));
 * const line = await server.reader().readUntil("\n");
 * assert.equal(new TextDecoder().decode(line!), "hi");
 * ```
 *
 * @module
 */

import { FrameTooLargeError, TruncatedFrameError } from "../_errors.ts";
import { describeType } from "../_defaults.ts";
import type { PumpIO } from "./engine.ts";
import { concat } from "./bytes.ts";
import type { ReadUntilOptions } from "./options.ts";

const DEFAULT_READ_UNTIL_LIMIT = 65536;
/** Shared by every pull reader with nothing buffered: it is never written. */
const EMPTY = new Uint8Array(0);

/** What the pull reader needs of a connection: the engine's, and a way out. */
export interface ReaderIO extends PumpIO {
  /** Gives the read side back. */
  release(): void;
}

/** Where `needle` first occurs in `haystack` from `from` on, or -1. */
function indexOf(
  haystack: Uint8Array,
  needle: Uint8Array,
  from: number,
): number {
  const first = needle[0];
  const last = haystack.length - needle.length;
  for (let i = haystack.indexOf(first, from); i !== -1 && i <= last;) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i = haystack.indexOf(first, i + 1);
  }
  return -1;
}

/**
 * A pull reader over a {@linkcode Connection}'s read side, from
 * {@linkcode Connection.prototype.reader}: what protocol drivers write by
 * hand (read a header of n bytes, a line up to CRLF, peek at a magic
 * number). Bytes it has read but not handed out stay in it, and go back to
 * the connection on {@linkcode ConnectionReader.prototype.releaseLock}.
 *
 * @example Read a CRLF-terminated command, then a fixed-size payload
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * await using server = new Connection(await listener.accept());
 * await using peer = new Connection(await client);
 * await peer.write(new TextEncoder().encode("SET 5\r\nhello"));
 * await peer.closeWrite();
 *
 * const reader = server.reader();
 * const command = await reader.readUntil("\r\n");
 * assert.equal(new TextDecoder().decode(command!), "SET 5");
 * const value = await reader.readExactly(5);
 * assert.equal(new TextDecoder().decode(value), "hello");
 * assert.equal(await reader.read(), null); // the peer's FIN
 * ```
 */
export interface ConnectionReader {
  /**
   * The next bytes: what is buffered, or else what the next read brings.
   *
   * @returns The bytes, or `null` at the peer's FIN.
   */
  read(): Promise<Uint8Array | null>;
  /**
   * Reads exactly `n` bytes. The buffer grows as bytes arrive, never to `n`
   * up front, so an untrusted length costs only what the peer really sends.
   *
   * @param n How many bytes.
   * @returns The bytes.
   * @throws {TruncatedFrameError} The peer finished sending first; the
   * bytes received stay unread.
   */
  readExactly(n: number): Promise<Uint8Array>;
  /**
   * Reads up to the next `delimiter` and consumes it.
   *
   * @param delimiter The bytes that end a message; a string is encoded as
   * UTF-8.
   * @param options The limit.
   * @returns The bytes before the delimiter, or `null` at the peer's FIN
   * when nothing is left.
   * @throws {FrameTooLargeError} No delimiter within `maxLength` bytes; they
   * stay unread.
   * @throws {TruncatedFrameError} The peer finished sending in the middle of
   * a message; its bytes stay unread.
   */
  readUntil(
    delimiter: Uint8Array | string,
    options?: ReadUntilOptions,
  ): Promise<Uint8Array | null>;
  /**
   * Looks at the next `n` bytes without consuming them.
   *
   * @param n How many bytes.
   * @returns `n` bytes, or fewer only when the peer finished sending first.
   */
  peek(n: number): Promise<Uint8Array>;
  /**
   * Gives the read side back to the connection. The bytes this reader had
   * read but not handed out go first to whoever reads next (`readable`, a
   * new reader, `serve()`).
   *
   * @returns A copy of those unread bytes, for code that hands the
   * connection on (such as after a protocol upgrade).
   * @throws {TypeError} A read is still pending.
   */
  releaseLock(): Uint8Array;
}

/** The implementation of {@linkcode ConnectionReader}. */
export class PullReader implements ConnectionReader {
  #io: ReaderIO;
  #buffer: Uint8Array = EMPTY;
  #released = false;
  #busy = false;

  /** Makes a reader over the connection that `io` stands for. */
  constructor(io: ReaderIO) {
    this.#io = io;
  }

  /**
   * The next bytes: what is buffered, or else what the next read brings.
   *
   * @returns The bytes, or `null` at the peer's FIN.
   */
  read(): Promise<Uint8Array | null> {
    if (!this.#released && !this.#busy && this.#buffer.length === 0) {
      // The common case, without the bookkeeping's extra promises.
      this.#busy = true;
      return this.#io.read(true).then((chunk) => {
        this.#busy = false;
        return chunk;
      }, (error) => {
        this.#busy = false;
        throw error;
      });
    }
    return this.#run(async () => {
      if (this.#buffer.length > 0) {
        const out = this.#buffer;
        this.#buffer = EMPTY;
        return out;
      }
      return await this.#io.read(true);
    });
  }

  /**
   * Reads exactly `n` bytes. The buffer grows as bytes arrive, never to `n`
   * up front, so an untrusted length costs only what the peer really sends.
   *
   * @param n How many bytes.
   * @returns The bytes.
   * @throws {TruncatedFrameError} The peer finished sending first; the
   * bytes received stay unread.
   */
  readExactly(n: number): Promise<Uint8Array> {
    if (!Number.isInteger(n) || n < 0) {
      return Promise.reject(
        new RangeError(
          `Cannot read exactly n bytes as n must be a non-negative integer: current value is ${n}`,
        ),
      );
    }
    return this.#run(async () => {
      if (!(await this.#fill(n))) {
        throw new TruncatedFrameError(this.#buffer.length, n);
      }
      return this.#take(n, 0);
    });
  }

  /**
   * Reads up to the next `delimiter` and consumes it.
   *
   * @param delimiter The bytes that end a message; a string is encoded as
   * UTF-8.
   * @param options The limit.
   * @returns The bytes before the delimiter, or `null` at the peer's FIN
   * when nothing is left.
   * @throws {FrameTooLargeError} No delimiter within `maxLength` bytes; they
   * stay unread.
   * @throws {TruncatedFrameError} The peer finished sending in the middle of
   * a message; its bytes stay unread.
   */
  readUntil(
    delimiter: Uint8Array | string,
    options: ReadUntilOptions = {},
  ): Promise<Uint8Array | null> {
    const needle = typeof delimiter === "string"
      ? new TextEncoder().encode(delimiter)
      : delimiter;
    const { maxLength: limit = options.limit ?? DEFAULT_READ_UNTIL_LIMIT } =
      options;
    if (!(needle instanceof Uint8Array) || needle.length === 0) {
      return Promise.reject(
        new TypeError(
          `Cannot read until a delimiter as it must be a non-empty string or Uint8Array: current value is ${
            describeType(delimiter)
          }`,
        ),
      );
    }
    return this.#run(async () => {
      let from = 0;
      while (true) {
        const at = indexOf(this.#buffer, needle, from);
        if (at !== -1 && at <= limit) return this.#take(at, needle.length);
        if (this.#buffer.length - needle.length >= limit) {
          throw new FrameTooLargeError(
            `Cannot read until the delimiter as the message must be <= ${limit} bytes: current length is over ${limit} bytes`,
            this.#buffer.length,
            limit,
          );
        }
        from = Math.max(0, this.#buffer.length - needle.length + 1);
        if (!(await this.#more())) {
          if (this.#buffer.length === 0) return null;
          throw new TruncatedFrameError(
            this.#buffer.length,
            this.#buffer.length + needle.length,
          );
        }
      }
    });
  }

  /**
   * Looks at the next `n` bytes without consuming them.
   *
   * @param n How many bytes.
   * @returns `n` bytes, or fewer only when the peer finished sending first.
   */
  peek(n: number): Promise<Uint8Array> {
    return this.#run(async () => {
      await this.#fill(n);
      return this.#buffer.slice(0, Math.min(n, this.#buffer.length));
    });
  }

  /**
   * Gives the read side back to the connection. The bytes this reader had
   * read but not handed out go first to whoever reads next (`readable`, a
   * new reader, `serve()`).
   *
   * @returns A copy of those unread bytes, for code that hands the
   * connection on (such as after a protocol upgrade).
   * @throws {TypeError} A read is still pending.
   */
  releaseLock(): Uint8Array {
    if (this.#released) return new Uint8Array(0);
    if (this.#busy) {
      throw new TypeError(
        "Cannot release the reader as a read is pending: await it first",
      );
    }
    this.#released = true;
    const unread = this.#buffer.slice();
    this.#io.unread(this.#buffer);
    this.#buffer = EMPTY;
    this.#io.release();
    return unread;
  }

  async #run<T>(work: () => Promise<T>): Promise<T> {
    if (this.#released) {
      throw new TypeError("Cannot read as the reader has been released");
    }
    if (this.#busy) {
      throw new TypeError(
        "Cannot read as another read is pending on this reader: await it first",
      );
    }
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  /** Reads once more into the buffer; false at EOF. */
  async #more(): Promise<boolean> {
    const chunk = await this.#io.read(true);
    if (chunk === null) return false;
    this.#buffer = this.#buffer.length === 0
      ? chunk
      : concat([this.#buffer, chunk]);
    return true;
  }

  /** Reads until `n` bytes are buffered; false if EOF came first. */
  async #fill(n: number): Promise<boolean> {
    while (this.#buffer.length < n) {
      if (!(await this.#more())) return false;
    }
    return true;
  }

  /** Hands out `n` bytes and drops `skip` more. */
  #take(n: number, skip: number): Uint8Array {
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n + skip);
    return out;
  }
}

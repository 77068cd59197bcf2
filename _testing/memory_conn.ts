/**
 * {@linkcode MemoryConn}, one end of a {@linkcode connPair}: a
 * `Deno.TcpConn` in memory that behaves as Deno's do on loopback, errors
 * included.
 *
 * @module
 */

import { describe } from "./describe.ts";
import { locked, type Pipe } from "./pipe.ts";

/**
 * One end of a {@linkcode connPair}: a `Deno.TcpConn` in memory, with a few
 * read-only facts for tests.
 *
 * Its behaviour follows Deno's TCP connections on loopback:
 *
 * - `read(p)` resolves to the bytes copied into `p` (at least 1 when
 *   `p` is not empty), or `null` once the peer has sent its FIN
 *   (`closeWrite()` or `close()`) and every byte before it has been read.
 * - `write(p)` copies what fits into the peer's buffer and resolves to that
 *   count, waiting while the buffer is full.
 * - `closeWrite()` sends our FIN; writing after it fails with
 *   `Deno.errors.BrokenPipe`, reading goes on.
 * - `close()` ends both directions: our pending `read()`s and `write()`s
 *   reject with `Deno.errors.Interrupted`, later calls (and a second
 *   `close()`) throw `Deno.errors.BadResource`; the peer reads what we
 *   wrote, then `null`; its writes, a write already waiting included, fail
 *   with `Deno.errors.BrokenPipe`, as Deno's do on Linux whether the close
 *   was clean or a reset (other systems may say `ConnectionReset`: code
 *   under test should treat both alike).
 * - `readable` and `writable` are Deno's too, with Deno's quirks: the
 *   readable closes the whole connection at end of input, and closing the
 *   writable closes both directions. Wrap the connection in a `Connection`
 *   instead when half-close matters.
 * - It has no resource id: Deno's own functions that need a socket, such
 *   as `Deno.startTls`, refuse it.
 *
 * @example Backpressure: a write waits until the peer reads
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = connPair({ bufferSize: 4 });
 * assert.equal(await a.write(new Uint8Array(10)), 4); // a partial write
 * assert.equal(a.bufferedAmount, 4);
 * const next = a.write(new Uint8Array(6)); // waits: b's buffer is full
 * assert.equal(await b.read(new Uint8Array(3)), 3);
 * assert.equal(await next, 3); // room for 3 more
 * a.close();
 * b.close();
 * ```
 */
export interface MemoryConn extends Deno.TcpConn {
  /** Bytes this end has written that the peer has not read yet. */
  readonly bufferedAmount: number;
  /** The size of each end's buffer, {@linkcode ConnPairOptions.bufferSize}. */
  readonly bufferSize: number;
  /** The last value given to `setNoDelay()`; `false` until then. */
  readonly noDelay: boolean;
  /** The last value given to `setKeepAlive()`; `false` until then. */
  readonly keepAlive: boolean;
  /** Whether `close()` has been called on this end. */
  readonly isClosed: boolean;
}

/** How many bytes one read of a pair may return. */
export interface ReadLimit {
  maxChunkSize: number;
  random: (() => number) | undefined;
}

/** One end of a pair: reads from one {@linkcode Pipe}, writes to the other. */
export class PairConn implements MemoryConn {
  #in: Pipe;
  #out: Pipe;
  #localAddr: Deno.NetAddr;
  #remoteAddr: Deno.NetAddr;
  #limit: ReadLimit;
  #closed = false;
  #noDelay = false;
  #keepAlive = false;
  #readable?: ReadableStream<Uint8Array<ArrayBuffer>>;
  #writable?: WritableStream<Uint8Array>;

  constructor(
    input: Pipe,
    output: Pipe,
    localAddr: Deno.NetAddr,
    remoteAddr: Deno.NetAddr,
    limit: ReadLimit,
  ) {
    this.#in = input;
    this.#out = output;
    this.#localAddr = localAddr;
    this.#remoteAddr = remoteAddr;
    this.#limit = limit;
  }

  get localAddr(): Deno.NetAddr {
    return this.#localAddr;
  }

  get remoteAddr(): Deno.NetAddr {
    return this.#remoteAddr;
  }

  get bufferedAmount(): number {
    return this.#out.size;
  }

  get bufferSize(): number {
    return this.#out.capacity;
  }

  get noDelay(): boolean {
    return this.#noDelay;
  }

  get keepAlive(): boolean {
    return this.#keepAlive;
  }

  get isClosed(): boolean {
    return this.#closed;
  }

  read(p: Uint8Array): Promise<number | null> {
    if (!(p instanceof Uint8Array)) return notBytes("read", "buffer", p);
    if (this.#closed) return Promise.reject(badResource("read"));
    const pipe = this.#in;
    return locked(pipe, "readLock", async () => {
      while (true) {
        if (this.#closed) throw interrupted("read");
        if (p.length === 0) return 0;
        if (pipe.size > 0) {
          const n = this.#chunkSize(Math.min(p.length, pipe.size));
          pipe.take(p, n);
          return n;
        }
        if (pipe.finished) return null;
        await pipe.wait();
      }
    });
  }

  #chunkSize(available: number): number {
    const { maxChunkSize, random } = this.#limit;
    const most = Math.min(available, maxChunkSize);
    return random ? 1 + Math.floor(random() * most) : most;
  }

  write(p: Uint8Array): Promise<number> {
    if (!(p instanceof Uint8Array)) return notBytes("write", "data", p);
    if (this.#closed) return Promise.reject(badResource("write"));
    const pipe = this.#out;
    return locked(pipe, "writeLock", async () => {
      while (true) {
        if (this.#closed) throw interrupted("write");
        if (pipe.finished) {
          throw new Deno.errors.BrokenPipe(
            "Cannot write as this end has sent its FIN (closeWrite): broken pipe",
          );
        }
        if (pipe.readerClosed) {
          // Deno on Linux says BrokenPipe here even after a reset (the peer
          // closed with unread bytes), and for a write already waiting.
          throw new Deno.errors.BrokenPipe(
            "Cannot write as the peer has closed the connection: broken pipe",
          );
        }
        if (p.length === 0) return 0;
        const room = pipe.capacity - pipe.size;
        if (room > 0) {
          const n = Math.min(room, p.length);
          pipe.push(p.slice(0, n));
          return n;
        }
        await pipe.wait();
      }
    });
  }

  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.reject(badResource("closeWrite"));
    if (!this.#out.finished) {
      this.#out.finished = true;
      this.#out.changed();
    }
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) throw badResource("close");
    this.#closed = true;
    this.#out.finished = true;
    this.#out.changed();
    this.#in.readerClosed = true;
    this.#in.drop();
    this.#in.changed();
  }

  [Symbol.dispose](): void {
    if (!this.#closed) this.close();
  }

  ref(): void {}

  unref(): void {}

  setNoDelay(noDelay = true): void {
    if (this.#closed) throw badResource("setNoDelay");
    this.#noDelay = noDelay;
  }

  setKeepAlive(keepAlive = true): void {
    if (this.#closed) throw badResource("setKeepAlive");
    this.#keepAlive = keepAlive;
  }

  /**
   * Deno's `conn.readable`: a byte stream that closes the connection when
   * it ends or is cancelled.
   */
  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    this.#readable ??= new ReadableStream({
      type: "bytes",
      autoAllocateChunkSize: 65536,
      pull: async (controller) => {
        const request = controller.byobRequest!;
        const view = request.view!;
        let n: number | null;
        try {
          n = await this.read(
            new Uint8Array(view.buffer, view.byteOffset, view.byteLength),
          );
        } catch (error) {
          this.#tryClose();
          if (
            error instanceof Deno.errors.Interrupted ||
            error instanceof Deno.errors.BadResource
          ) {
            controller.close();
            request.respond(0);
          } else {
            controller.error(error);
          }
          return;
        }
        if (n === null) {
          this.#tryClose();
          controller.close();
          request.respond(0);
        } else {
          request.respond(n);
        }
      },
      cancel: () => this.#tryClose(),
    });
    return this.#readable;
  }

  /**
   * Deno's `conn.writable`: writes every byte of each chunk; closing or
   * aborting it closes the whole connection.
   */
  get writable(): WritableStream<Uint8Array> {
    this.#writable ??= new WritableStream<Uint8Array>({
      write: async (chunk, controller) => {
        try {
          let written = 0;
          while (written < chunk.length) {
            written += await this.write(chunk.subarray(written));
          }
        } catch (error) {
          controller.error(error);
          this.#tryClose();
          throw error;
        }
      },
      close: () => this.#tryClose(),
      abort: () => this.#tryClose(),
    });
    return this.#writable;
  }

  #tryClose(): void {
    if (!this.#closed) this.close();
  }
}

/** The rejection of a read or write given something else than bytes. */
function notBytes(
  action: string,
  what: string,
  value: unknown,
): Promise<never> {
  return Promise.reject(
    new TypeError(
      `Cannot ${action} as the ${what} must be a Uint8Array: current value is ${
        describe(value)
      }`,
    ),
  );
}

function badResource(action: string): Error {
  return new Deno.errors.BadResource(
    `Cannot ${action} as the connection is closed: bad resource`,
  );
}

function interrupted(action: string): Error {
  return new Deno.errors.Interrupted(
    `Cannot finish ${action} as the connection was closed meanwhile: operation canceled`,
  );
}

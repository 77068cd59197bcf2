/**
 * Test helpers: connected in-memory connections with TCP semantics, a way
 * to run a server handler without a listener, and the chunkings every
 * byte-stream decoder should be tested under.
 *
 * - {@linkcode connPair} returns two connected {@linkcode MemoryConn}s, each
 *   a `Deno.TcpConn`: a byte stream in each direction, `closeWrite()`
 *   half-close, `close()`, bounded buffers with backpressure, partial
 *   writes, and the errors Deno gives on loopback. Anything that takes a
 *   `Deno.Conn` (a `Connection`, `framed()`, a server handler) runs over it
 *   unchanged, with no socket and no permission. Go has `net.Pipe`, tokio
 *   `io::duplex`, Node `stream.duplexPair`: this is ours.
 * - {@linkcode testHandler} serves one end of a pair with a `serve()`
 *   handler, exactly as a server would, and hands you the other end as a
 *   `Connection`.
 * - {@linkcode chunkings} splits bytes as one chunk, as one-byte chunks and
 *   at seeded random places, so a decoder test can check that the messages
 *   never depend on where the network cut the stream.
 *
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [client, server] = connPair();
 * await client.write(new TextEncoder().encode("ping"));
 * await client.closeWrite(); // FIN: the server reads the bytes, then null
 * const buffer = new Uint8Array(16);
 * const n = await server.read(buffer);
 * assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "ping");
 * assert.equal(await server.read(buffer), null);
 * // Half-closed, not closed: the server can still answer.
 * await server.write(new TextEncoder().encode("pong"));
 * server.close();
 * assert.equal(await client.read(buffer), 4);
 * assert.equal(await client.read(buffer), null);
 * client.close();
 * ```
 *
 * @module
 */

import { Connection } from "./connection.ts";
import {
  type ConnectionInfo,
  type ConnectionStats,
  type Handler,
  serveConnection,
  type ServeConnectionOptions,
} from "./server.ts";

/**
 * Options for {@linkcode connPair}.
 *
 * @example A small buffer and one byte per read
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = connPair({ bufferSize: 2, maxChunkSize: 1 });
 * assert.equal(await a.write(new Uint8Array([1, 2, 3])), 2); // what fits
 * const buffer = new Uint8Array(8);
 * assert.equal(await b.read(buffer), 1); // one byte, however large the buffer
 * a.close();
 * b.close();
 * ```
 */
export interface ConnPairOptions {
  /**
   * How many bytes each end can hold unread, like a socket's receive
   * buffer. A write that finds the peer's buffer full waits until the peer
   * reads; a write larger than the free room writes what fits and returns
   * that count (a partial write, as `Deno.Conn.write` may).
   *
   * @default {65536}
   */
  bufferSize?: number;
  /**
   * The most bytes one `read()` returns, whatever the buffer it is given:
   * set it small (down to 1) to make the reader see the stream cut into
   * small pieces, as a slow network would.
   *
   * @default {Infinity}
   */
  maxChunkSize?: number;
  /**
   * When set, each `read()` returns a random number of bytes, from 1 to
   * what is available (bounded by the buffer given and
   * {@linkcode ConnPairOptions.maxChunkSize}), drawn from a generator seeded
   * with this number: the same seed and the same calls give the same cuts.
   *
   * @default {undefined}
   */
  seed?: number;
  /**
   * The address both ends report in `localAddr` and `remoteAddr`; each end
   * gets its own port.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
}

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

/** The ports handed out to pairs, from the start of the ephemeral range. */
let nextPort = 49152;

function takePort(): number {
  const port = nextPort;
  nextPort = nextPort >= 65535 ? 49152 : nextPort + 1;
  return port;
}

/**
 * Returns two connected in-memory connections with TCP semantics: what one
 * writes, the other reads, in order, in one byte stream per direction.
 *
 * Nothing touches the network and no permission is needed. Everything is
 * promises: a read nobody will ever answer leaves the test pending (Deno
 * then reports that the event loop ended early) rather than hanging.
 *
 * @param options Buffer size, read chunking, addresses.
 * @returns The two ends, conventionally `[client, server]`; each end's
 * `remoteAddr` is the other's `localAddr`.
 * @throws {RangeError} An option is out of range.
 *
 * @example Run a `Connection` and a framing codec over a pair
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * // One byte per read: the line decoder must put the lines back together.
 * const [client, server] = connPair({ maxChunkSize: 1 });
 * const served = (async () => {
 *   const { readable, writable } = framed(server, lines());
 *   const writer = writable.getWriter();
 *   for await (const line of readable) await writer.write(`${line.length}`);
 *   await writer.close(); // answers after the client's FIN still arrive
 * })();
 * const { readable, writable } = framed(client, lines());
 * await ReadableStream.from(["hello", "hi"]).pipeTo(writable);
 * const answers = await Array.fromAsync(
 *   readable.pipeThrough(new TextDecoderStream()),
 * );
 * await served;
 * assert.deepEqual(answers, ["5", "2"]);
 * ```
 */
export function connPair(
  options: ConnPairOptions = {},
): [MemoryConn, MemoryConn] {
  const {
    bufferSize = 65536,
    maxChunkSize = Infinity,
    seed,
    hostname = "127.0.0.1",
  } = options;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new RangeError(
      `Cannot create a connection pair as bufferSize must be a positive integer: current value is ${bufferSize}`,
    );
  }
  if (
    maxChunkSize !== Infinity &&
    (!Number.isInteger(maxChunkSize) || maxChunkSize < 1)
  ) {
    throw new RangeError(
      `Cannot create a connection pair as maxChunkSize must be a positive integer or Infinity: current value is ${maxChunkSize}`,
    );
  }
  if (seed !== undefined && !Number.isInteger(seed)) {
    throw new RangeError(
      `Cannot create a connection pair as seed must be an integer: current value is ${seed}`,
    );
  }
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(
      `Cannot create a connection pair as hostname must be a non-empty string: current value is ${
        JSON.stringify(hostname)
      }`,
    );
  }
  const addrA: Deno.NetAddr = { transport: "tcp", hostname, port: takePort() };
  const addrB: Deno.NetAddr = { transport: "tcp", hostname, port: takePort() };
  const aToB = new Pipe(bufferSize);
  const bToA = new Pipe(bufferSize);
  const limits = (side: number): ReadLimit => ({
    maxChunkSize,
    random: seed === undefined ? undefined : seededRandom(seed * 2 + side),
  });
  const a = new PairConn(bToA, aToB, addrA, addrB, limits(0));
  const b = new PairConn(aToB, bToA, addrB, addrA, limits(1));
  return [a, b];
}

interface ReadLimit {
  maxChunkSize: number;
  random: (() => number) | undefined;
}

/**
 * The bytes travelling one way, as the receiving end's buffer: written
 * chunks (copies) queued in order, with one promise that settles whenever
 * anything changes, for both ends' waiting reads and writes to look again.
 */
class Pipe {
  readonly capacity: number;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  size = 0;
  /** The writer sent its FIN (`closeWrite()` or `close()`). */
  finished = false;
  /** The reader closed; unread bytes were dropped. */
  readerClosed = false;
  #waiters: (() => void)[] = [];
  /** Serialise reads and writes each in call order, as a socket does. */
  readLock: Promise<void> = Promise.resolve();
  writeLock: Promise<void> = Promise.resolve();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.size += bytes.length;
    this.changed();
  }

  /** Moves up to `n` bytes into `target`, oldest first. */
  take(target: Uint8Array, n: number): void {
    let done = 0;
    while (done < n) {
      const chunk = this.#chunks[this.#head]!;
      const count = Math.min(n - done, chunk.length - this.#offset);
      target.set(chunk.subarray(this.#offset, this.#offset + count), done);
      done += count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        this.#chunks[this.#head++] = undefined as unknown as Uint8Array;
        this.#offset = 0;
      }
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.size -= n;
    this.changed();
  }

  drop(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.size = 0;
  }

  /** Resolves at the next change. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  changed(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Runs `body` after every earlier holder of the lock has finished. */
async function locked<T>(
  pipe: Pipe,
  which: "readLock" | "writeLock",
  body: () => Promise<T>,
): Promise<T> {
  const before = pipe[which];
  let release!: () => void;
  pipe[which] = new Promise<void>((resolve) => release = resolve);
  try {
    await before;
    return await body();
  } finally {
    release();
  }
}

class PairConn implements MemoryConn {
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
    if (!(p instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(
          `Cannot read as the buffer must be a Uint8Array: current value is ${
            describe(p)
          }`,
        ),
      );
    }
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
    if (!(p instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(
          `Cannot write as the data must be a Uint8Array: current value is ${
            describe(p)
          }`,
        ),
      );
    }
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

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return `a string ${JSON.stringify(value)}`;
  if (typeof value === "object") {
    return `an object of type ${value.constructor?.name ?? "Object"}`;
  }
  return `${typeof value} ${String(value)}`;
}

/**
 * Options for {@linkcode testHandler}: the pair's, and how the server
 * serves the connection (as for `serve()`: idle timeout, hooks, PROXY
 * protocol, allow/deny, a `signal` that starts the staged shutdown).
 *
 * @example An idle timeout, and a hook
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const durations: number[] = [];
 * await using client = testHandler(() => new TransformStream(), {
 *   idleTimeout: 50,
 *   onClose: (info) => durations.push(info.duration),
 * });
 * const { error } = await client.served; // nobody spoke: timed out
 * assert.ok(error instanceof Deno.errors.TimedOut);
 * assert.ok(durations[0]! >= 50);
 * ```
 */
export interface TestHandlerOptions
  extends ConnPairOptions, ServeConnectionOptions {
  /**
   * The connection's number, for the handler and the hooks.
   *
   * @default {1}
   */
  id?: number;
}

/**
 * The client's end of a handler under test, from {@linkcode testHandler}:
 * a `Connection` (write, half-close, read the answer), plus what the
 * server side did.
 *
 * @example Read what the server did
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using client = testHandler(() => new EchoStream());
 * await client.write(new Uint8Array([1, 2, 3]));
 * await client.closeWrite();
 * assert.deepEqual(await new Response(client.readable).bytes(), new Uint8Array([1, 2, 3]));
 * const { bytesIn, bytesOut, error } = await client.served;
 * assert.deepEqual([bytesIn, bytesOut, error], [3, 3, undefined]);
 * assert.equal(client.ends[1].noDelay, true); // the server set TCP_NODELAY
 * ```
 */
export interface TestClient extends Connection {
  /**
   * Settles (never rejects) once the server side has closed the
   * connection, with what `onClose` gets: addresses, byte counts, duration,
   * and `error` when it ended abnormally (the handler's error included).
   */
  readonly served: Promise<ConnectionInfo & ConnectionStats>;
  /**
   * The two in-memory ends: the client's, wrapped by this object, and the
   * server's, given to the handler. Look, do not touch: their
   * `bufferedAmount` and `noDelay` are there for assertions.
   */
  readonly ends: readonly [client: MemoryConn, server: MemoryConn];
}

class HandlerClient extends Connection implements TestClient {
  readonly served: Promise<ConnectionInfo & ConnectionStats>;
  readonly ends: readonly [client: MemoryConn, server: MemoryConn];

  constructor(handler: Handler, options: TestHandlerOptions) {
    const { bufferSize, maxChunkSize, seed, hostname, id = 1, ...serving } =
      options;
    const [client, server] = connPair({
      bufferSize,
      maxChunkSize,
      seed,
      hostname,
    });
    super(client);
    this.ends = [client, server];
    this.served = serveConnection(server, handler, { ...serving, id });
  }

  /** Closes the client's end, then waits until the server side is done. */
  override async [Symbol.asyncDispose](): Promise<void> {
    await super[Symbol.asyncDispose]();
    await this.served;
  }
}

/**
 * Runs a `serve()` handler over an in-memory connection, with no listener,
 * socket or permission: the server side is served exactly as `serve()`
 * serves a client (see `serveConnection()` in `@x/sock/server`), and you
 * get the client's end.
 *
 * Dispose of the client (`await using`) to close it and wait for the
 * server side to finish. A handler that never returns and ignores a
 * closed connection keeps that wait pending.
 *
 * @param handler The handler under test: it returns a service, or handles
 * the connection itself.
 * @param options The pair's buffer and chunking, and the serving options.
 * @returns The client's end, as a `Connection`.
 *
 * @example Test a line-counting service, one byte per read
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const countLines = () => {
 *   let lines = 0;
 *   return new TransformStream<Uint8Array, Uint8Array>({
 *     transform(chunk) {
 *       for (const byte of chunk) if (byte === 0x0a) lines++;
 *     },
 *     flush(controller) { // after the client's FIN
 *       controller.enqueue(new TextEncoder().encode(`${lines}\n`));
 *     },
 *   });
 * };
 * await using client = testHandler(countLines, { maxChunkSize: 1 });
 * await client.write(new TextEncoder().encode("a\nb\nc\n"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "3\n");
 * assert.equal((await client.served).bytesIn, 6);
 * ```
 */
export function testHandler(
  handler: Handler,
  options: TestHandlerOptions = {},
): TestClient {
  return new HandlerClient(handler, options);
}

/**
 * A small seeded generator (xorshift32) of numbers in [0, 1): the same seed
 * gives the same sequence on every run and platform.
 */
function seededRandom(seed: number): () => number {
  // Spread nearby seeds apart; xorshift must never start at 0.
  let x = Math.imul((seed | 0) ^ 0x5bd1e995, 0x27d4eb2d) >>> 0;
  if (x === 0) x = 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 0x100000000;
  };
}

/**
 * Options for {@linkcode chunkings}.
 *
 * @example More random splittings, from another seed
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const all = chunkings("some bytes", { seed: 42, splits: 10 });
 * assert.equal(all.length, 12); // whole, one-byte, and 10 random
 * assert.equal(all[2]!.name, "random split 1 of seed 42");
 * ```
 */
export interface ChunkingsOptions {
  /**
   * Seeds the random splits: the same seed gives the same chunkings, so a
   * failure names a chunking you can replay.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * How many random splittings to make, besides the whole and one-byte
   * ones.
   *
   * @default {4}
   */
  splits?: number;
}

/**
 * One way of cutting bytes into chunks, from {@linkcode chunkings}.
 *
 * @example The chunks, and a stream of them
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [whole, bytes] = chunkings("abc");
 * assert.equal(whole!.name, "one chunk");
 * assert.equal(bytes!.chunks.length, 3);
 * const text = await new Response(bytes!.stream()).text();
 * assert.equal(text, "abc");
 * ```
 */
export interface Chunking {
  /**
   * Says how the bytes were cut, for an assertion message: `"one chunk"`,
   * `"one-byte chunks"` or `"random split 2 of seed 1"`.
   */
  readonly name: string;
  /** The chunks, in order: copies, together exactly the bytes given. */
  readonly chunks: readonly Uint8Array[];
  /** Returns a stream of fresh copies of the chunks, for `pipeThrough`. */
  stream(): ReadableStream<Uint8Array>;
}

/**
 * Cuts `bytes` in the ways a network may deliver them: as one chunk, as
 * one-byte chunks, and at seeded random places (each random splitting with
 * its own typical chunk size, from a few bytes to most of the input). A
 * decoder must give the same messages for every one of them.
 *
 * @param bytes The input, or text to encode as UTF-8.
 * @param options The seed and how many random splittings.
 * @returns The chunkings, named.
 * @throws {RangeError} `splits` is not a non-negative integer, or `seed`
 * not an integer.
 *
 * @example Test a line decoder under every chunking
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import { LineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * for (const { name, stream } of chunkings("one\ntwo\r\nthree\n")) {
 *   const lines = await Array.fromAsync(
 *     stream()
 *       .pipeThrough(new LineDecoderStream())
 *       .pipeThrough(new TextDecoderStream()),
 *   );
 *   assert.deepEqual(lines, ["one", "two", "three"], name);
 * }
 * ```
 */
export function chunkings(
  bytes: Uint8Array | string,
  options: ChunkingsOptions = {},
): Chunking[] {
  const { seed = 1, splits = 4 } = options;
  if (typeof bytes === "string") bytes = new TextEncoder().encode(bytes);
  else if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot cut bytes into chunks as the input must be a Uint8Array or a string: current value is ${
        describe(bytes)
      }`,
    );
  }
  if (!Number.isInteger(splits) || splits < 0) {
    throw new RangeError(
      `Cannot cut bytes into chunks as splits must be a non-negative integer: current value is ${splits}`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new RangeError(
      `Cannot cut bytes into chunks as seed must be an integer: current value is ${seed}`,
    );
  }
  const input = bytes;
  const cut = (sizes: Iterable<number>): Uint8Array[] => {
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const size of sizes) {
      chunks.push(input.slice(at, at + size));
      at += size;
    }
    return chunks;
  };
  const result = [
    chunking("one chunk", [input.slice()]),
    chunking("one-byte chunks", cut(Array(input.length).fill(1))),
  ];
  const random = seededRandom(seed);
  for (let i = 1; i <= splits; i++) {
    // A typical size spread evenly on a log scale from 1 byte to the whole.
    const typical = Math.max(1, Math.round((input.length || 1) ** random()));
    const sizes: number[] = [];
    for (let left = input.length; left > 0;) {
      const size = Math.min(left, 1 + Math.floor(random() * 2 * typical));
      sizes.push(size);
      left -= size;
    }
    result.push(chunking(`random split ${i} of seed ${seed}`, cut(sizes)));
  }
  return result;
}

function chunking(name: string, chunks: Uint8Array[]): Chunking {
  return {
    name,
    chunks,
    stream: () => ReadableStream.from(chunks.map((chunk) => chunk.slice())),
  };
}

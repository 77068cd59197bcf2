/**
 * One connection core: the only code in `@x/sock` that reads or writes a
 * `Deno.Conn`.
 *
 * In Deno, reading `conn.readable` to its end closes the whole connection,
 * and closing `conn.writable` is a full close rather than a half-close
 * (denoland/deno#22258). Deno also leaves Nagle's algorithm on, so a reply
 * written in two pieces can wait ~40 ms for a delayed ACK.
 * {@linkcode Connection} fixes both and adds what protocol code needs:
 *
 * - `readable` is a byte stream that ends at the peer's FIN and leaves the
 *   connection open for the answer; BYOB readers and `read(view, { min })`
 *   work.
 * - `writable` writes every byte; small writes issued back to back are
 *   coalesced into few system calls under a bounded buffer; closing it
 *   flushes and sends our FIN (`closeWrite()`).
 * - `TCP_NODELAY` is on by default; `keepAlive` on request.
 * - {@linkcode Connection.prototype.reader} is a pull reader: read exactly
 *   n bytes, read until a delimiter, peek, release with the unread bytes.
 * - {@linkcode Connection.prototype.serve} runs a service (anything
 *   `pipeThrough()` takes) over the connection; a `SyncTransformStream`
 *   runs inside the read loop with no stream hop.
 * - Read buffers start at 1 KiB, grow while reads fill them (to 1 MiB) and
 *   shrink again when the traffic does, so an idle connection costs little.
 *
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) =>
 *   new Connection(conn).serve(new UpperCaseStream())
 * );
 *
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await client.write(new TextEncoder().encode("hello"));
 * await client.closeWrite(); // FIN: the server still answers in full
 * assert.equal(await new Response(client.readable).text(), "HELLO");
 * await served;
 * ```
 *
 * @module
 */

import { describeType, MAX_BUFFER_SIZE } from "./_defaults.ts";
import { pump } from "./_connection/engine.ts";
import type {
  ConnectionOptions,
  ConnectionState,
} from "./_connection/options.ts";
import { concat, copyBytes, view } from "./_connection/bytes.ts";
import {
  type BytePort,
  type EncodesInto,
  registerBytePort,
} from "./_connection/byte_port.ts";
import {
  type ConnectionReader,
  PullReader,
  type ReaderIO,
} from "./_connection/pull_reader.ts";
import {
  ConnectionReadable,
  noop,
  type PipingSource,
} from "./_connection/readable.ts";
import {
  type DirectSink,
  DirectWritable,
  DONE,
  READ_NOW,
  RELEASED,
  type ReleaseFlag,
  WRITE_FAILED,
  WRITE_NOW,
} from "./_connection/direct_streams.ts";

export type {
  ConnectionOptions,
  ConnectionState,
  ReadUntilOptions,
} from "./_connection/options.ts";
export type { ConnectionReader } from "./_connection/pull_reader.ts";

const MIN_READ = 1024;
/** The first size of a write segment that small writes are copied into. */
const SEGMENT_START = 4096;
/**
 * Segment buffers of SEGMENT_START bytes that have been sent, for any
 * connection's next segment: a buffer lives from a write until its send,
 * so a few serve every connection, and an idle connection holds none.
 */
const spareSegments: Uint8Array[] = [];
const SPARE_SEGMENTS = 64;
/**
 * Sent segments of a default write buffer's whole size (what a reply too
 * large for SEGMENT_START takes), kept as the small ones are.
 */
const spareWhole: Uint8Array[] = [];
const SPARE_WHOLE = 16;

/**
 * Where owned reads up to a quarter of its size are carved from: one
 * allocation serves the reads of many connections, each its own window,
 * rather than one allocation for every read or two (a large ArrayBuffer
 * costs microseconds to allocate). A window is exclusive to its connection
 * and is never reused, so every chunk handed out stays valid; the price is
 * that a chunk kept alive keeps its whole arena alive, so the arena is small
 * (16 KiB: as Node's pool for small Buffers, copy what you keep for long).
 * 64 KiB measured no faster (bench/framed_bench.ts).
 */
let arena: Uint8Array | undefined;
let arenaUsed = 0;
const ARENA = 16384;

function takeWindow(size: number): Uint8Array {
  if (size > ARENA >> 2) return new Uint8Array(size);
  if (arena === undefined || ARENA - arenaUsed < size) {
    arena = new Uint8Array(ARENA);
    arenaUsed = 0;
  }
  const window = view(arena, arenaUsed, arenaUsed + size);
  arenaUsed += size;
  return window;
}

/** Keeps `data` for a later segment, if it is a spare's size and room is left. */
function spare(data: Uint8Array): void {
  if (data.length === SEGMENT_START) {
    if (spareSegments.length < SPARE_SEGMENTS) spareSegments.push(data);
  } else if (
    data.length === DEFAULT_WRITE_BUFFER && spareWhole.length < SPARE_WHOLE
  ) spareWhole.push(data);
}

/** A segment buffer of `size` bytes: a spare, or a new one. */
function takeSegment(size: number): Uint8Array {
  if (size === SEGMENT_START) {
    return spareSegments.pop() ?? new Uint8Array(SEGMENT_START);
  }
  if (size === DEFAULT_WRITE_BUFFER) {
    return spareWhole.pop() ?? new Uint8Array(size);
  }
  return new Uint8Array(size);
}
/** A direct read's "socket read" when its bytes were at hand (put back). */
const AT_HAND: Promise<number> = Promise.resolve(-1);

/** A free tail shorter than this is not worth a read of its own. */
const CARVE_MIN = 256;
const DEFAULT_MAX_READ = 1 << 20;
const DEFAULT_WRITE_BUFFER = 65536;

let nextId = 1;

/** Bytes waiting to be sent: a copy buffer, or a caller's large chunk. */
interface Segment {
  data: Uint8Array;
  length: number;
  /** Settles a large write once sent; absent on copy buffers. */
  done?: PromiseWithResolvers<void>;
  /** A caller's chunk, not ours to append to. */
  fixed?: boolean;
}

/** A write waiting for room in the buffer. */
interface Waiter extends PromiseWithResolvers<void> {
  chunk: Uint8Array;
  owned: boolean;
}

function checkChunk(chunk: unknown): asserts chunk is Uint8Array {
  if (!(chunk instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot write to connection as the chunk must be a Uint8Array: current type is ${
        describeType(chunk)
      }`,
    );
  }
}

function checkSize(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min || value > MAX_BUFFER_SIZE) {
    throw new RangeError(
      `Cannot create connection as ${name} must be an integer from ${min} to ${MAX_BUFFER_SIZE}: current value is ${value}`,
    );
  }
  return value;
}

function isTcp(conn: Deno.Conn): conn is Deno.TcpConn {
  return conn.localAddr?.transport === "tcp" &&
    typeof (conn as Deno.TcpConn).setNoDelay === "function";
}

/**
 * A TCP, TLS or Unix connection with half-close-safe web streams, coalescing
 * writes, a pull reader, TCP options, state and counters. Wrap a
 * `Deno.Conn` once and use only this object from then on, never the bare
 * `conn.readable`, `conn.writable`, `read` or `write`.
 *
 * The connection is closed exactly once: when the peer's FIN has been read
 * (or `readable` was cancelled) and our FIN has been sent; or at once on an
 * error, an abort, or {@linkcode Connection.prototype.close}.
 *
 * @example Echo one connection, answering after the peer's half-close
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const connection = new Connection(conn);
 *   return connection.readable.pipeTo(connection.writable);
 * });
 *
 * const client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * const writer = client.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close(); // FIN: the server still answers
 * const echoed = await new Response(client.readable).text();
 * await Promise.all([served, client.closed]);
 * assert.equal(echoed, "ping");
 * assert.equal(client.bytesRead, 4);
 * assert.equal(client.state, "closed");
 * ```
 */
export class Connection implements Disposable, AsyncDisposable {
  /** A number for logs, from {@linkcode ConnectionOptions.id}. */
  readonly id: number;
  /**
   * Settles once the connection has been closed: fulfils when it ended
   * cleanly (both directions done, or `close()` without a reason), rejects
   * with the first error otherwise. Awaiting it is optional: an unobserved
   * rejection does not crash the process.
   */
  readonly closed: Promise<void>;

  #conn: Deno.Conn;
  #localAddr: Deno.Addr;
  #remoteAddr: Deno.Addr;
  #maxRead: number;
  #writeBufferSize: number;
  #directWrite: number;
  /** Made when `signal` is first read: most connections never need it. */
  #controller?: AbortController;
  #signal?: AbortSignal;
  #onAbort?: () => void;
  #resolveClosed!: () => void;
  #rejectClosed!: (reason: unknown) => void;

  // State.
  #readDone = false;
  #writeDone = false;
  #connClosed = false;
  #failed = false;
  #failure: unknown = undefined;
  #bytesRead = 0;
  #bytesWritten = 0;

  // Reading.
  #owner: "readable" | "reader" | "engine" | "framed" | undefined;
  #readable?: ReadableStream<Uint8Array>;
  #readController?: ReadableByteStreamController;
  /** A pull of `readable` is reading the socket. */
  #pulling = false;
  /** A direct read for the readable's reader or iteration, under way. */
  #directRead?: Promise<IteratorResult<Uint8Array>>;
  /** Who asked for it, and how it ends (made on the first). */
  #directEnded?: () => void;
  #directReader?: ReleaseFlag;
  #directDone?: (n: number | null) => IteratorResult<Uint8Array>;
  #directFailed?: (error: unknown) => IteratorResult<Uint8Array>;
  #readSize = MIN_READ;
  #carve?: Uint8Array;
  #carved = 0;
  /**
   * The buffer and kind of the read under way (`#startRead()`); an owned
   * one goes at `#carved`, which only its end moves.
   */
  #reading?: Uint8Array;
  #readingOwned = false;
  /** What the last owned read brought: the next is likely the same. */
  #lastRead = 0;
  #loopBuffer?: Uint8Array;
  #pushback?: Uint8Array;

  // Writing.
  #writable?: WritableStream<Uint8Array>;
  #writeController?: WritableStreamDefaultController;
  /** What is waiting to be sent, in order; the first may be in flight. */
  #segments: Segment[] = [];
  /** Copied bytes not yet sent: bounded by writeBufferSize. */
  #buffered = 0;
  /** Writes waiting for room in the buffer, in order. */
  #waiters: Waiter[] = [];
  #flushing?: Promise<void>;
  /** The segment being sent: it takes no more bytes. */
  #inFlight?: Segment;
  /** The engine's send of borrowed bytes; queued writes wait for it. */
  #direct?: Promise<void>;
  #writeError: unknown = undefined;
  #writeFailed = false;
  #closingWrite?: Promise<void>;
  /** framed() holds small writes back while it hands out one read's messages. */
  #corked = false;
  /** Hands over the bytes framed() holds while corked (see `#hand`). */
  #holder?: () => void;
  /** framed()'s wait for room in the buffer, shared. */
  #roomWaiter?: PromiseWithResolvers<void>;

  /**
   * Wraps a connection. From here on, only this object may touch it.
   *
   * @param conn A TCP, TLS or Unix connection, or one end of
   * `connPair()` from `@x/sock/testing`.
   * @param options TCP options, buffer sizes, abort signal.
   */
  constructor(conn: Deno.Conn, options: ConnectionOptions = {}) {
    if (
      typeof conn?.read !== "function" || typeof conn?.write !== "function"
    ) {
      throw new TypeError(
        `Cannot create connection as conn must be a Deno.Conn: current type is ${
          describeType(conn)
        }`,
      );
    }
    const {
      id,
      noDelay = true,
      keepAlive = false,
      signal,
      readSize,
      maxReadSize = readSize ?? DEFAULT_MAX_READ,
      writeBufferSize = DEFAULT_WRITE_BUFFER,
    } = options;
    this.#maxRead = checkSize("maxReadSize", maxReadSize, 1);
    this.#writeBufferSize = checkSize("writeBufferSize", writeBufferSize, 1);
    this.#directWrite = Math.max(1, writeBufferSize >> 2);
    this.#readSize = Math.min(MIN_READ, this.#maxRead);
    this.#conn = conn;
    this.id = id ?? nextId++;
    this.#localAddr = conn.localAddr;
    this.#remoteAddr = conn.remoteAddr;
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    this.closed.catch(noop);
    if (noDelay) this.setNoDelay(true);
    if (keepAlive) this.setKeepAlive(true);
    if (signal) {
      this.#signal = signal;
      if (signal.aborted) this.#fail(signal.reason);
      else {
        this.#onAbort = () => this.#fail(signal.reason);
        signal.addEventListener("abort", this.#onAbort, { once: true });
      }
    }
  }

  /** Our end of the connection. */
  get localAddr(): Deno.Addr {
    return this.#localAddr;
  }

  /** The peer's end of the connection. */
  get remoteAddr(): Deno.Addr {
    return this.#remoteAddr;
  }

  /**
   * Aborts, with the reason, when the connection is closed abnormally: an
   * error, `close(reason)`, or the `signal` option. It does not abort after
   * a clean end.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#failed) this.#controller.abort(this.#failure);
    }
    return this.#controller.signal;
  }

  /** Where the connection stands; see {@linkcode ConnectionState}. */
  get state(): ConnectionState {
    if (this.#connClosed) return "closed";
    if (this.#readDone) return this.#writeDone ? "closed" : "read-closed";
    return this.#writeDone ? "write-closed" : "open";
  }

  /** Bytes received from the peer so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes sent to the peer so far (written to the socket, not queued). */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /**
   * Bytes accepted for writing that have not reached the socket yet, as
   * with `WebSocket.bufferedAmount`: zero once everything has been sent.
   */
  get bufferedAmount(): number {
    let amount = 0;
    for (const segment of this.#segments) amount += segment.length;
    for (const waiter of this.#waiters) amount += waiter.chunk.length;
    return amount;
  }

  /**
   * What the peer sends, as a byte stream (`type: "bytes"`): default and
   * BYOB readers both work. Ends at the peer's FIN and leaves the connection
   * open for writing; cancelling it stops reading. It reads nothing ahead of
   * its consumer.
   *
   * Its `pipeTo()` and `pipeThrough()` without options read the socket
   * straight into the destination, as {@linkcode Connection.prototype.serve}
   * does, with a pipe's outcome: each chunk is handed on without a copy
   * and no byte stream is in between. With options they are
   * `ReadableStream`'s own. Its own iteration (`for await`) and its default
   * readers read the socket directly while the stream holds nothing: a
   * chunk costs a read, not a trip through the stream's queue.
   *
   * @throws {TypeError} A {@linkcode ConnectionReader} or
   * {@linkcode Connection.prototype.serve} has taken the read side.
   */
  get readable(): ReadableStream<Uint8Array> {
    if (this.#readable) return this.#readable;
    this.#take("readable");
    this.#readable = new ConnectionReadable(new Connection.#Source(this));
    return this.#readable;
  }

  /**
   * What we send. Every byte is written; small writes are coalesced (see
   * {@linkcode ConnectionOptions.writeBufferSize}). A write error errors the
   * stream, so the writer sees it (on `closed`, `ready` and its next
   * `write()`) and `closed` rejects with it: a failed byte is never
   * silently lost. Closing it flushes and sends our FIN (see
   * {@linkcode Connection.prototype.closeWrite}); aborting it closes the
   * connection. Its writers write directly, as
   * {@linkcode Connection.prototype.write} does, while the stream has
   * nothing queued; their `ready` and `desiredSize` say when a write waits.
   */
  get writable(): WritableStream<Uint8Array> {
    if (this.#writable) return this.#writable;
    const sink = new Connection.#Sink(this);
    return this.#writable = new DirectWritable<Uint8Array>(sink, sink);
  }

  /**
   * Turns `TCP_NODELAY` on or off; does nothing on connections that are
   * not TCP.
   *
   * @param on Whether small writes leave at once.
   */
  setNoDelay(on = true): void {
    if (!isTcp(this.#conn) || this.#connClosed) return;
    try {
      this.#conn.setNoDelay(on);
    } catch { /* the socket is going away */ }
  }

  /**
   * Turns `SO_KEEPALIVE` on or off; does nothing on connections that are
   * not TCP.
   *
   * @param on Whether the kernel probes an idle peer.
   */
  setKeepAlive(on = true): void {
    if (!isTcp(this.#conn) || this.#connClosed) return;
    try {
      this.#conn.setKeepAlive(on);
    } catch { /* the socket is going away */ }
  }

  /**
   * Writes `chunk` in full, as the `writable` does, without a stream.
   *
   * @param chunk The bytes to send. A chunk smaller than a quarter of
   * {@linkcode ConnectionOptions.writeBufferSize} is copied and may resolve
   * before it is sent; a larger one resolves once sent. Either way the
   * caller may reuse it once the promise resolves.
   * @throws {TypeError} `chunk` is not a `Uint8Array`, or the write side is
   * closed.
   */
  write(chunk: Uint8Array): Promise<void> {
    return this.#write(chunk, false);
  }

  /**
   * The write behind `write()`; `owned` chunks (handed over for good, as a
   * stream's chunks are) are queued without a copy.
   */
  #write(chunk: Uint8Array, owned: boolean): Promise<void> {
    try {
      return this.#writeNow(chunk, owned) ?? Promise.resolve();
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** Waits in line, so that writes leave in the order they were made. */
  #wait(chunk: Uint8Array, owned: boolean): Promise<void> {
    const waiter = { chunk, owned, ...Promise.withResolvers<void>() };
    this.#waiters.push(waiter);
    this.#kick(true);
    return waiter.promise;
  }

  /**
   * Starts sending unless a send is under way; while corked, only when
   * `force`d (a write that must wait for the socket) or the buffer is full.
   */
  #kick(force: boolean): void {
    if (
      this.#direct === undefined &&
      (!this.#corked || force || this.#buffered >= this.#writeBufferSize)
    ) this.#flushing ??= this.#flush();
  }

  /**
   * The write behind `write()` and framed()'s: `undefined` when the bytes
   * were taken into the buffer (copied, or queued as they are when `owned`),
   * a promise when they wait for room or are sent without a copy; throws
   * where a write cannot start.
   */
  #writeNow(chunk: Uint8Array, owned: boolean): Promise<void> | undefined {
    checkChunk(chunk);
    this.#checkWritable();
    if (chunk.length === 0) return undefined;
    const copy = chunk.length < this.#directWrite;
    if (
      this.#waiters.length === 0 &&
      (!copy || this.#buffered + chunk.length <= this.#writeBufferSize)
    ) {
      const done = this.#admit(chunk, owned);
      this.#kick(!copy);
      return done;
    }
    return this.#wait(chunk, owned);
  }

  /**
   * framed()'s write: a small chunk is always copied into the buffer, even
   * past its size (by one read's replies at most: framed() reads no more
   * until there is room), so that a write costs no promise; a large one is
   * written as by `write()`. Returns the promise of room once the buffer is
   * full.
   */
  #writeMessage(chunk: Uint8Array): Promise<void> | undefined {
    if (chunk.length >= this.#directWrite || this.#waiters.length > 0) {
      return this.#writeNow(chunk, false);
    }
    checkChunk(chunk);
    this.#checkWritable();
    this.#admit(chunk, false);
    return this.#admitted();
  }

  /**
   * framed()'s encode straight into the buffer: `encoder` writes `message`
   * into the last segment (grown, or a new one, when it does not fit), then
   * as `#writeMessage`. `false` when it cannot: writes are waiting, or the
   * message needs more than a whole segment.
   */
  #encodeMessage<M>(
    encoder: EncodesInto<M>,
    message: M,
  ): Promise<void> | undefined | false {
    this.#checkWritable();
    if (this.#waiters.length > 0) return false;
    const segments = this.#segments;
    let segment: Segment | undefined = segments[segments.length - 1];
    let fresh = segment === undefined || segment.done !== undefined ||
      segment === this.#inFlight || segment.fixed === true;
    if (fresh) {
      segment = {
        data: takeSegment(Math.min(SEGMENT_START, this.#writeBufferSize)),
        length: 0,
      };
    }
    let end = encoder.encodeInto(message, segment!.data, segment!.length);
    while (end < 0) {
      const data = segment!.data;
      if (data.length < this.#writeBufferSize) {
        // A message alone too large for the segment takes a whole one at
        // once, rather than a growth (an allocation and a copy) per doubling.
        const grown = takeSegment(
          segment!.length === 0
            ? this.#writeBufferSize
            : Math.min(data.length * 2, this.#writeBufferSize),
        );
        if (segment!.length === 0) spare(data); // fresh: nobody else has it
        else grown.set(data.subarray(0, segment!.length));
        segment!.data = grown;
      } else if (segment!.length > 0) {
        // Full (and already queued, as only a queued one holds bytes).
        segment = { data: takeSegment(this.#writeBufferSize), length: 0 };
        fresh = true;
      } else return false;
      end = encoder.encodeInto(message, segment!.data, segment!.length);
    }
    this.#buffered += end - segment!.length;
    segment!.length = end;
    if (fresh) this.#segments.push(segment!);
    return this.#admitted();
  }

  /**
   * framed()'s segment, filled while corked, queued as it is (it is ours
   * again): as `#writeMessage`, or dropped where nothing can be sent.
   */
  #hand(data: Uint8Array, length: number): Promise<void> | undefined {
    if (
      this.#writeFailed || this.#failed || this.#connClosed || this.#writeDone
    ) return;
    this.#segments.push({ data, length });
    this.#buffered += length;
    return this.#admitted();
  }

  /**
   * After framed() put bytes in the buffer: sends them unless corked, and
   * says whether there is room left (`undefined`) or a promise of it.
   */
  #admitted(): Promise<void> | undefined {
    if (this.#buffered < this.#writeBufferSize) {
      if (!this.#corked) this.#kick(false);
      return undefined;
    }
    return this.#room();
  }

  /**
   * `undefined` while the write buffer has room, or else a promise that
   * resolves once it has: one promise for everyone who waits.
   */
  #room(): Promise<void> | undefined {
    if (this.#buffered < this.#writeBufferSize && this.#waiters.length === 0) {
      return undefined;
    }
    this.#kick(true);
    if (this.#roomWaiter === undefined) {
      this.#roomWaiter = Promise.withResolvers<void>();
      // Whoever waits sees the error; nobody waiting is no crash.
      this.#roomWaiter.promise.catch(noop);
    }
    return this.#roomWaiter.promise;
  }

  /** Wakes whoever waits for room, once there is. */
  #roomMade(): void {
    if (
      this.#roomWaiter !== undefined &&
      this.#buffered < this.#writeBufferSize && this.#waiters.length === 0
    ) {
      this.#roomWaiter.resolve();
      this.#roomWaiter = undefined;
    }
  }

  #uncork(): void {
    if (this.#corked) this.#holder?.();
    this.#corked = false;
    if (this.#segments.length > 0) this.#kick(true);
  }

  /**
   * Sends everything written so far, then our FIN (`shutdown(SHUT_WR)`):
   * the peer reads end-of-file and may still answer, and we may still read.
   * Calling it again returns the same promise. Closing `writable` does the
   * same.
   *
   * @returns Resolves once the FIN is sent; rejects with the write error
   * that kept buffered bytes from being sent.
   */
  closeWrite(): Promise<void> {
    return this.#closingWrite ??= this.#closeWrite();
  }

  /**
   * A pull reader over the read side, for protocol code: read exactly n
   * bytes, read until a delimiter, peek. It holds the read side until
   * {@linkcode ConnectionReader.prototype.releaseLock}.
   *
   * @returns The reader.
   * @throws {TypeError} `readable`, another reader or `serve()` holds the
   * read side.
   *
   * @example Read a length-prefixed header, then the body
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
   * await peer.write(new Uint8Array([0, 3, 0x61, 0x62, 0x63, 0x0a]));
   *
   * const reader = server.reader();
   * const header = await reader.readExactly(2);
   * const body = await reader.readExactly((header[0] << 8) | header[1]);
   * assert.equal(new TextDecoder().decode(body), "abc");
   * assert.deepEqual(reader.releaseLock(), new Uint8Array([0x0a]));
   * ```
   */
  reader(): ConnectionReader {
    this.#take("reader");
    return new PullReader(new Connection.#IO(this));
  }

  /**
   * Runs `service` over the connection: what the peer sends goes into it,
   * what it emits goes back, and once it has flushed after the peer's FIN
   * our FIN follows. A {@linkcode SyncTransformStream} whose streams are
   * unlocked runs inside the read loop, with no stream hop (in the
   * connection's reused read buffer when its transformer's
   * {@linkcode SyncTransformer.input} allows); anything else
   * `pipeThrough()` takes (a `TransformStream`, a `CompressionStream`, a
   * `{ readable, writable }` pair) is piped.
   *
   * @param service The per-connection behaviour.
   * @throws {TypeError} (as a rejection) `service` is not a readable and
   * writable pair of streams, or the read side is taken.
   * @returns Resolves when both directions have ended and the connection is
   * closed; rejects with the first error, of the service or of the network,
   * after closing the connection.
   *
   * @example An upper-case server for one connection
   * ```ts
   * import { Connection } from "@x/sock/connection";
   * import { UpperCaseStream } from "@x/sock/services";
   * import assert from "node:assert/strict";
   *
   * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
   * const served = listener.accept().then((conn) =>
   *   new Connection(conn).serve(new UpperCaseStream())
   * );
   * const client = new Connection(
   *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
   * );
   * await ReadableStream.from([new TextEncoder().encode("shout")])
   *   .pipeTo(client.writable);
   * assert.equal(await new Response(client.readable).text(), "SHOUT");
   * await served;
   * ```
   */
  serve(
    service: ReadableWritablePair<Uint8Array, Uint8Array<ArrayBuffer>>,
  ): Promise<void> {
    try {
      this.#take("engine");
    } catch (error) {
      return Promise.reject(error);
    }
    // Not an async function: it keeps no hold on `service`, so a
    // SyncTransformStream's streams, which the engine does not use, can be
    // collected while the connection lives.
    return this.#served(pump(new Connection.#IO(this), service));
  }

  async #served(pumping: Promise<void>): Promise<void> {
    try {
      await pumping;
    } catch (error) {
      this.#fail(error);
      throw this.#failed ? this.#failure : error;
    }
    await this.closed;
  }

  /**
   * Closes the connection now, in both directions; bytes not yet sent are
   * dropped. Streams still open error with `reason` (an `Interrupted` error
   * when none is given), `signal` aborts with it and `closed` rejects with
   * it. Once both directions have ended, it does nothing: the connection is
   * closed already.
   *
   * @param reason Why the connection is closed.
   */
  close(reason?: unknown): void {
    if (this.#connClosed) return;
    this.#fail(
      reason ?? new Deno.errors.Interrupted("Connection closed by close()"),
    );
  }

  /** Closes the connection now, as {@linkcode Connection.prototype.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Closes the connection now and waits until it is closed; never rejects.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed.catch(() => {});
  }

  // -------------------------------------------------------------------------
  // Reading

  #take(owner: "readable" | "reader" | "engine" | "framed"): void {
    if (this.#owner !== undefined) {
      throw new TypeError(
        `Cannot use the connection's read side for ${owner} as ${this.#owner} holds it`,
      );
    }
    this.#owner = owner;
  }

  #release(): void {
    this.#owner = undefined;
  }

  /** Lowers the largest read to `max`, for framed(), which holds the read side. */
  #capReads(max: number): void {
    if (max >= this.#maxRead) return;
    this.#maxRead = max;
    this.#readSize = Math.min(this.#readSize, max);
  }

  /**
   * A failed socket read: a read cut short by our own close reports that
   * close's reason (or the end, after a clean close); any other error
   * tears the connection down. The read paths below await the socket
   * themselves and call this, so that a read costs one promise.
   */
  #readFailed(error: unknown): null {
    this.#reading = undefined;
    if (this.#failed) throw this.#failure;
    if (this.#connClosed) return null;
    this.#fail(error);
    throw error;
  }

  /**
   * The next bytes, or null at EOF, in one call (the pull reader's and the
   * byte stream's; the busy paths take `#startRead()` and await the socket
   * themselves).
   *
   * @param owned Whether the chunk is the caller's to keep: carved one
   * after another out of a buffer and handed on without a copy, a new
   * buffer allocated when the free tail runs short. Otherwise it is lent
   * out of a buffer the next read reuses.
   */
  async #read(owned: boolean): Promise<Uint8Array | null> {
    let n: number | null;
    try {
      const reading = this.#startRead(owned);
      if (reading === undefined) return this.#readAtHand();
      n = await reading;
    } catch (error) {
      return this.#readFailed(error);
    }
    return this.#finishRead(n);
  }

  /**
   * The first half of a read, for a caller that awaits the socket itself
   * (a promise fewer per read than awaiting `#read()`): starts the
   * socket read, or returns undefined when the bytes are at hand without one
   * (`#readAtHand()`: put back, or the input is over). What the socket read
   * brings goes to `#finishRead()`, a failure to `#readFailed()`.
   *
   * @param owned Whether the chunk is the caller's to keep (carved out of a
   * window) or lent until the next read (the
   * connection's loop buffer).
   */
  #startRead(owned: boolean): Promise<number | null> | undefined {
    if (this.#pushback || this.#readDone) return undefined;
    let buffer: Uint8Array;
    let start = 0;
    if (owned) {
      // A cap on owned reads (64 or 128 KiB buffers, which the allocator
      // recycles, instead of a fresh one of up to 1 MiB) was measured and
      // did not win: reads sized by #adapt stay (bench/connection_bench.ts).
      let carve = this.#carve;
      // A tail shorter than the last read would likely split the next one
      // in two system calls (and a batch of requests in two batches of
      // replies).
      if (
        carve === undefined ||
        carve.length - this.#carved < CARVE_MIN ||
        carve.length - this.#carved < this.#lastRead ||
        carve.length > this.#readSize * 4
      ) {
        // A busy connection's reads share a window, two or more to one,
        // rather than each leaving a tail unused (fresh memory is most of
        // what an owned read costs: bench/framed_bench.ts --steps); a quiet
        // one's waits on a window of the read size, as small as its read.
        const size = this.#readSize;
        carve = this.#carve = takeWindow(
          this.#lastRead < size >> 2
            ? size
            : size <= ARENA >> 3
            ? size * 2
            : Math.max(size, ARENA >> 2),
        );
        this.#carved = 0;
      }
      buffer = carve;
      start = this.#carved;
    } else {
      const loop = this.#loopBuffer;
      buffer = loop === undefined || loop.length !== this.#readSize
        ? this.#loopBuffer = new Uint8Array(this.#readSize)
        : loop;
    }
    // Where this read goes (a close meanwhile takes the buffers away).
    this.#reading = buffer;
    this.#readingOwned = owned;
    // A window may be larger than the largest read (made for two reads, or
    // before the largest read was lowered).
    const end = Math.min(buffer.length, start + this.#maxRead);
    return this.#conn.read(
      start === 0 && end === buffer.length ? buffer : view(buffer, start, end),
    );
  }

  /**
   * A socket read into `buffer`, the caller's (the rest of a frame under
   * way, read straight into it): as `#startRead()`, and what it brings goes
   * to `#finishReadInto()`.
   */
  #startReadInto(buffer: Uint8Array): Promise<number | null> | undefined {
    if (this.#pushback || this.#readDone) return undefined;
    this.#reading = buffer;
    return this.#conn.read(
      buffer.length > this.#maxRead
        ? buffer.subarray(0, this.#maxRead)
        : buffer,
    );
  }

  /** The second half of `#startReadInto()`: `n`, or null at EOF. */
  #finishReadInto(n: number | null): number | null {
    const buffer = this.#reading!;
    this.#reading = undefined;
    if (n === null) return this.#endRead();
    this.#bytesRead += n;
    this.#adapt(n, Math.min(buffer.length, this.#maxRead));
    return n;
  }

  /** A read's bytes when `#startRead()` had no socket read to do. */
  #readAtHand(): Uint8Array | null {
    if (this.#pushback) return this.#takePushback()!;
    return this.#endedRead();
  }

  /** The second half of a read: the chunk of its `n` bytes, null at EOF. */
  #finishRead(n: number | null): Uint8Array | null {
    const buffer = this.#reading!;
    this.#reading = undefined;
    if (n === null) return this.#endRead();
    const start = this.#readingOwned ? this.#carved : 0;
    this.#bytesRead += n;
    this.#adapt(n, Math.min(buffer.length - start, this.#maxRead));
    if (!this.#readingOwned) {
      return n === buffer.length ? buffer : buffer.subarray(0, n);
    }
    this.#carved = start + n;
    this.#lastRead = n;
    return view(buffer, start, start + n);
  }

  /**
   * The next bytes for the byte stream, whose `enqueue` takes the whole
   * buffer: a large read hands its buffer on, a small one is copied out of
   * a buffer kept for the next read.
   */
  async #readForStream(): Promise<Uint8Array | null> {
    const chunk = await this.#read(false);
    const buffer = this.#loopBuffer;
    // Put-back bytes are a copy already; the end is null.
    if (chunk === null || chunk.buffer !== buffer?.buffer) return chunk;
    if (chunk.length < buffer.length >> 1) return chunk.slice();
    this.#loopBuffer = undefined; // handed on, whole
    return chunk;
  }

  #endedRead(): null {
    if (this.#failed) throw this.#failure;
    return null;
  }

  /**
   * Grows the read size fourfold while reads fill their buffer, and halves
   * it while they bring less than an eighth of it: a busy connection reads
   * in large gulps, and a quiet one ends up waiting on a small buffer,
   * without one odd read throwing a busy connection back to the start.
   *
   * @param n What the read brought.
   * @param length What it could have brought.
   */
  #adapt(n: number, length: number): void {
    if (n === length) {
      this.#readSize = Math.max(
        this.#readSize,
        Math.min(length * 4, this.#maxRead),
      );
    } else if (n < this.#readSize >> 3 && this.#readSize > MIN_READ) {
      this.#readSize = Math.max(this.#readSize >> 1, MIN_READ);
    }
  }

  #takePushback(): Uint8Array | undefined {
    const back = this.#pushback;
    this.#pushback = undefined;
    return back;
  }

  /** Puts bytes back in front of the input, for the next reader. */
  #unread(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#pushback = this.#pushback
      ? concat([bytes, this.#pushback])
      : bytes.slice();
  }

  /**
   * The readable's default readers and own iteration: while the stream
   * holds nothing and no pull is under way, a chunk comes straight from an
   * owned read, rather than through a pull and the stream's queue; the
   * stream is closed or errored as the input ends, as a pull would.
   */
  #readDirect(
    ended: (() => void) | undefined,
    reader: ReleaseFlag | undefined,
  ): Promise<IteratorResult<Uint8Array>> | undefined {
    const controller = this.#readController;
    if (
      this.#pulling || this.#directRead || this.#readDone ||
      controller?.desiredSize !== 0
    ) return undefined;
    this.#directEnded = ended;
    this.#directReader = reader;
    if (this.#directDone === undefined) {
      // Made once: what a socket read brought (-1: the bytes were at hand),
      // and a failed one.
      this.#directDone = (n) =>
        this.#directChunk(n === -1 ? this.#readAtHand() : this.#finishRead(n));
      this.#directFailed = (error) => {
        let chunk: null;
        try {
          chunk = this.#readFailed(error);
        } catch (failure) {
          this.#directRead = undefined;
          try {
            controller.error(failure);
          } catch { /* errored already */ }
          this.#directEnded?.();
          throw failure;
        }
        return this.#directChunk(chunk);
      };
    }
    // The socket read itself is awaited: a promise fewer per read.
    let reading: Promise<number | null>;
    try {
      reading = this.#startRead(true) ?? AT_HAND;
    } catch (error) {
      reading = Promise.reject(error);
    }
    return this.#directRead = reading.then(
      this.#directDone,
      this.#directFailed,
    );
  }

  /** How a direct read ends: with `chunk`, or with the input (null). */
  #directChunk(chunk: Uint8Array | null): IteratorResult<Uint8Array> {
    this.#directRead = undefined;
    if (chunk === null) {
      try {
        this.#readController!.close();
      } catch { /* closed already */ }
      this.#directEnded?.();
      return DONE;
    }
    // Its reader let go before the bytes came: they are the next reader's.
    if (this.#directReader?.[RELEASED]) this.#unread(chunk);
    return { done: false, value: chunk };
  }

  async #pull(controller: ReadableByteStreamController): Promise<void> {
    this.#pulling = true;
    try {
      // A direct read whose reader let go comes first: what it brought is
      // put back for this one.
      if (this.#directRead) await this.#directRead.catch(noop);
      await this.#pullOnce(controller);
    } finally {
      this.#pulling = false;
    }
  }

  async #pullOnce(controller: ReadableByteStreamController): Promise<void> {
    const request = controller.byobRequest;
    try {
      if (request?.view) {
        const view = new Uint8Array(
          request.view.buffer,
          request.view.byteOffset,
          request.view.byteLength,
        );
        const back = this.#takePushback();
        if (back) {
          const n = Math.min(back.length, view.length);
          view.set(back.subarray(0, n));
          this.#unread(back.subarray(n));
          request.respond(n);
          return;
        }
        if (this.#readDone) {
          this.#endedRead();
          controller.close();
          request.respond(0);
          return;
        }
        let n: number | null;
        try {
          n = await this.#conn.read(view);
        } catch (error) {
          n = this.#readFailed(error);
        }
        if (n === null) {
          this.#endRead();
          if (!this.#failed) {
            controller.close();
            request.respond(0);
          }
          return;
        }
        this.#bytesRead += n;
        request.respond(n);
        return;
      }
      const chunk = await this.#readForStream();
      if (chunk === null) {
        controller.close();
        return;
      }
      controller.enqueue(chunk);
    } catch (error) {
      try {
        controller.error(error);
      } catch { /* errored by #fail already */ }
    }
  }

  /**
   * `readable.pipeTo(destination)` and `readable.pipeThrough()`: reads the
   * socket and writes each chunk into the destination, with its
   * backpressure, as a pipe would and with a pipe's outcome (the peer's FIN
   * closes the destination, a network error aborts it, the destination
   * failing cancels the reading) but with no stream in between.
   *
   * @returns The pipe's promise; undefined, having done nothing, when the
   * generic pipe must do it: options given, either stream locked or the
   * readable not open, a pull under way.
   */
  #pipe(
    destination: unknown,
    options: StreamPipeOptions | undefined,
  ): Promise<void> | undefined {
    if (
      options !== undefined &&
      (options.preventAbort || options.preventCancel || options.preventClose ||
        options.signal !== undefined)
    ) return undefined;
    const readable = this.#readable!;
    if (
      !(destination instanceof WritableStream) || destination.locked ||
      readable.locked || this.#pulling || this.#readDone || this.#directRead ||
      this.#readController?.desiredSize !== 0
    ) return undefined;
    return this.#feed(readable.getReader(), destination.getWriter());
  }

  #feed(
    reader: ReadableStreamDefaultReader<Uint8Array>,
    writer: WritableStreamDefaultWriter<Uint8Array>,
  ): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    let ending = false;
    const end = (failure?: { error: unknown }) => {
      writer.releaseLock();
      reader.releaseLock();
      if (failure) reject(failure.error);
      else resolve();
    };
    // The destination failed (or a transform's readable was cancelled):
    // stop reading, as a pipe cancels its source, even with a socket read
    // pending.
    const stop = (error: unknown) => {
      if (ending) return;
      ending = true;
      reader.cancel(error).catch(noop);
      end({ error });
    };
    writer.closed.catch(stop);
    (async () => {
      while (true) {
        try {
          await writer.ready;
        } catch {
          return; // the destination errored: `stop` has it
        }
        if (ending) return;
        let chunk: Uint8Array | null;
        try {
          // The socket read itself is awaited: a promise fewer per read.
          try {
            const reading = this.#startRead(true);
            chunk = reading === undefined
              ? this.#readAtHand()
              : this.#finishRead(await reading);
          } catch (error) {
            chunk = this.#readFailed(error);
          }
        } catch (error) {
          // The connection failed, which errored `readable`: the
          // destination is aborted with the error, as a pipe does.
          if (ending) return;
          ending = true;
          await writer.abort(error).catch(noop);
          end({ error });
          return;
        }
        if (ending) return;
        if (chunk === null) break;
        writer.write(chunk).catch(stop);
      }
      ending = true;
      try {
        this.#readController?.close();
      } catch { /* closed already */ }
      try {
        await writer.close();
      } catch (error) {
        end({ error });
        return;
      }
      end();
    })();
    return promise;
  }

  #endRead(): null {
    if (this.#readDone) return null;
    this.#readDone = true;
    this.#loopBuffer = this.#carve = undefined;
    this.#settle();
    return null;
  }

  // -------------------------------------------------------------------------
  // Writing

  #checkWritable(): void {
    // Bytes framed() holds while corked go before this write.
    if (this.#corked) this.#holder?.();
    if (this.#writeFailed) throw this.#writeError;
    if (this.#failed) throw this.#failure;
    if (this.#connClosed || this.#closingWrite) {
      throw new TypeError(
        `Cannot write to connection as its write side is closed: current state is ${this.state}`,
      );
    }
  }

  /**
   * Queues `chunk`: a small one is copied into the last buffer segment, or
   * queued as it is when `owned` and there is none to join (its promise
   * resolves now either way); a large one is queued as it is, and its
   * promise resolves once it has been sent.
   */
  #admit(chunk: Uint8Array, owned: boolean): Promise<void> | undefined {
    if (chunk.length >= this.#directWrite) {
      const done = Promise.withResolvers<void>();
      this.#segments.push({ data: chunk, length: chunk.length, done });
      return done.promise;
    }
    const last = this.#segments.at(-1);
    // The last small segment takes more bytes until it is sent; a caller's
    // chunk queued as it was is first copied into a buffer of our own.
    const needed = (last?.length ?? 0) + chunk.length;
    // Segments grow to writeBufferSize at most: past it (framed() may go
    // past it within one read's replies) a new one starts, so that nothing
    // is copied again and again.
    if (
      last !== undefined && last.done === undefined &&
      last !== this.#inFlight &&
      (needed <= this.#writeBufferSize ||
        (!last.fixed && needed <= last.data.length))
    ) {
      if (last.fixed || needed > last.data.length) {
        const grown = new Uint8Array(
          Math.min(
            Math.max(needed, last.data.length * 2),
            Math.max(this.#writeBufferSize, needed),
          ),
        );
        grown.set(last.data.subarray(0, last.length));
        last.data = grown;
        last.fixed = false;
      }
      const data = last.data;
      const at = last.length;
      copyBytes(chunk, data, at);
      last.length = needed;
    } else if (owned) {
      this.#segments.push({ data: chunk, length: chunk.length, fixed: true });
    } else {
      const data = chunk.length <= SEGMENT_START &&
          this.#writeBufferSize >= SEGMENT_START
        ? takeSegment(SEGMENT_START)
        : new Uint8Array(chunk.length);
      data.set(chunk);
      this.#segments.push({ data, length: chunk.length });
    }
    this.#buffered += chunk.length;
    return undefined;
  }

  /** Lets waiting writes in, in order, while there is room. */
  #wake(): void {
    while (this.#waiters.length > 0) {
      const waiter = this.#waiters[0];
      const copy = waiter.chunk.length < this.#directWrite;
      if (
        copy &&
        this.#buffered + waiter.chunk.length > this.#writeBufferSize
      ) return;
      this.#waiters.shift();
      const done = this.#admit(waiter.chunk, waiter.owned);
      if (done) done.then(waiter.resolve, waiter.reject);
      else waiter.resolve();
    }
  }

  /** Sends queued segments until none is left; the first error ends it. */
  async #flush(): Promise<void> {
    let segment: Segment | undefined;
    let first = true;
    try {
      while ((segment = this.#segments[0]) !== undefined) {
        // The first write after a quiet spell leaves at once. Later ones
        // let a burst still in progress (such as a stream handing on one
        // chunk every few microtasks) join them first, as long as it grows.
        if (!first && segment.done === undefined) await this.#gather(segment);
        first = false;
        this.#inFlight = segment;
        await this.#sendBytes(
          segment.length === segment.data.length
            ? segment.data
            : view(segment.data, 0, segment.length),
        );
        this.#inFlight = undefined;
        this.#segments.shift();
        if (!segment.fixed && segment.done === undefined) spare(segment.data);
        if (segment.done) segment.done.resolve();
        else {
          this.#buffered -= segment.length;
          this.#wake();
          this.#roomMade();
        }
      }
    } catch (error) {
      this.#dropWrites(error);
    } finally {
      this.#inFlight = undefined;
      this.#flushing = undefined;
    }
  }

  /** Yields microtasks while `segment` keeps growing, within bounds. */
  async #gather(segment: Segment): Promise<void> {
    let seen = segment.length;
    for (let turn = 0, still = 0; turn < 256 && still < 16; turn++) {
      if (
        this.#segments.length > 1 || this.#buffered >= this.#writeBufferSize
      ) return;
      await undefined;
      if (segment.length === seen) still++;
      else {
        seen = segment.length;
        still = 0;
      }
    }
  }

  /** Fails every queued and waiting write with `error`. */
  #dropWrites(error: unknown): void {
    this.#writeError ??= error;
    this.#writeFailed = true;
    for (const segment of this.#segments) segment.done?.reject(error);
    for (const waiter of this.#waiters) waiter.reject(error);
    this.#segments = [];
    this.#waiters = [];
    this.#buffered = 0;
    this.#roomWaiter?.reject(error);
    this.#roomWaiter = undefined;
  }

  /** Waits until nothing is queued, waiting or being sent. */
  async #drainWrites(): Promise<void> {
    this.#uncork();
    while (this.#flushing || this.#direct) {
      await (this.#flushing ?? this.#direct)!.catch(() => {});
    }
    if (this.#writeFailed) throw this.#writeError;
  }

  /** Writes all of `bytes` to the socket, counting progress as it goes. */
  async #sendBytes(bytes: Uint8Array): Promise<void> {
    const conn = this.#conn;
    let written = 0;
    try {
      while (written < bytes.length) {
        const n = await conn.write(
          written === 0 ? bytes : bytes.subarray(written),
        );
        written += n;
        this.#bytesWritten += n;
      }
    } catch (error) {
      const reason = this.#failed ? this.#failure : error;
      this.#fail(reason);
      throw reason;
    }
  }

  /**
   * For the engine: writes borrowed chunks in full before it returns, in one
   * system call where there are several.
   */
  async #sendAll(chunks: Uint8Array[]): Promise<void> {
    let bytes: Uint8Array;
    if (chunks.length === 1) {
      bytes = chunks[0];
      checkChunk(bytes);
    } else {
      let total = 0;
      for (const chunk of chunks) {
        checkChunk(chunk);
        total += chunk.length;
      }
      bytes = concat(chunks, total);
    }
    this.#checkWritable();
    if (this.#flushing || this.#direct) await this.#drainWrites();
    // Hold the line: a write, or a closeWrite(), made meanwhile waits for it.
    const sending = this.#direct = this.#sendBytes(bytes);
    try {
      await sending;
    } finally {
      this.#direct = undefined;
      if (this.#segments.length > 0) this.#flushing ??= this.#flush();
    }
  }

  async #closeWrite(): Promise<void> {
    await this.#drainWrites();
    if (this.#failed) throw this.#failure;
    if (this.#writeDone) return;
    try {
      await this.#conn.closeWrite();
    } catch (error) {
      // The peer may have closed its side already: our FIN is moot then.
      if (!(error instanceof Deno.errors.NotConnected)) {
        this.#fail(error);
        throw error;
      }
    }
    this.#writeDone = true;
    this.#settle();
  }

  // -------------------------------------------------------------------------
  // Life cycle

  // The ways in for the streams, the engine and the pull reader: classes
  // whose methods every connection shares, rather than closures made for
  // each, as an idle connection's memory is counted in bytes.

  /** The underlying source of `readable`. */
  static readonly #Source = class implements PipingSource {
    readonly #c: Connection;

    constructor(connection: Connection) {
      this.#c = connection;
    }

    get type(): "bytes" {
      return "bytes";
    }

    start(controller: ReadableByteStreamController): void {
      const c = this.#c;
      c.#readController = controller;
      if (c.#readDone) {
        if (c.#failed) controller.error(c.#failure);
        else controller.close();
      }
    }

    pull(controller: ReadableByteStreamController): Promise<void> {
      return this.#c.#pull(controller);
    }

    cancel(): void {
      this.#c.#endRead();
    }

    pipe(
      destination: unknown,
      options: StreamPipeOptions | undefined,
    ): Promise<void> | undefined {
      return this.#c.#pipe(destination, options);
    }

    [READ_NOW](
      ended?: () => void,
      reader?: ReleaseFlag,
    ): Promise<IteratorResult<Uint8Array>> | undefined {
      return this.#c.#readDirect(ended, reader);
    }
  };

  /** The underlying sink of `writable`. */
  static readonly #Sink = class
    implements UnderlyingSink<Uint8Array>, DirectSink<Uint8Array> {
    readonly #c: Connection;

    constructor(connection: Connection) {
      this.#c = connection;
    }

    start(controller: WritableStreamDefaultController): void {
      this.#c.#writeController = controller;
    }

    write(chunk: Uint8Array): Promise<void> {
      return this.#c.write(chunk);
    }

    close(): Promise<void> {
      return this.#c.closeWrite();
    }

    abort(reason: unknown): void {
      this.#c.#fail(reason);
    }

    // A writer's write, while the stream holds nothing: as `write()`.
    [WRITE_NOW](chunk: Uint8Array): Promise<void> | undefined {
      return this.#c.#writeNow(chunk, false);
    }

    [WRITE_FAILED](error: unknown): void {
      this.#c.#writeController?.error(error);
    }
  };

  /** The engine's and the pull reader's. */
  static readonly #IO = class implements ReaderIO {
    readonly #c: Connection;

    constructor(connection: Connection) {
      this.#c = connection;
    }

    read(owned: boolean): Promise<Uint8Array | null> {
      return this.#c.#read(owned);
    }

    startRead(owned: boolean): Promise<number | null> | undefined {
      return this.#c.#startRead(owned);
    }

    finishRead(n: number | null): Uint8Array | null {
      return this.#c.#finishRead(n);
    }

    readFailed(error: unknown): null {
      return this.#c.#readFailed(error);
    }

    // What a service's stream hands on is the engine's to keep.
    write(chunk: Uint8Array): Promise<void> {
      return this.#c.#write(chunk, true);
    }

    writeAll(chunks: Uint8Array[]): Promise<void> {
      return this.#c.#sendAll(chunks);
    }

    closeWrite(): Promise<void> {
      return this.#c.closeWrite();
    }

    fail(reason: unknown): void {
      this.#c.#fail(reason);
    }

    unread(bytes: Uint8Array): void {
      this.#c.#unread(bytes);
    }

    release(): void {
      this.#c.#release();
    }
  };

  /** framed()'s way in: see `_connection/byte_port.ts`. */
  static readonly #Port = class implements BytePort {
    readonly #c: Connection;

    constructor(connection: Connection) {
      this.#c = connection;
    }

    get closed(): Promise<void> {
      return this.#c.closed;
    }

    take(maxReadSize: number): void {
      this.#c.#take("framed");
      this.#c.#capReads(maxReadSize);
    }

    read(): Promise<Uint8Array | null> {
      return this.#c.#read(true);
    }

    startRead(): Promise<number | null> | undefined {
      return this.#c.#startRead(true);
    }

    endRead(n: number | null): Uint8Array | null {
      return this.#c.#finishRead(n);
    }

    get readSize(): number {
      return this.#c.#readSize;
    }

    startReadInto(buffer: Uint8Array): Promise<number | null> | undefined {
      return this.#c.#startReadInto(buffer);
    }

    endReadInto(n: number | null): number | null {
      return this.#c.#finishReadInto(n);
    }

    readFailed(error: unknown): null {
      return this.#c.#readFailed(error);
    }

    cancel(): void {
      this.#c.#endRead();
    }

    write(bytes: Uint8Array): Promise<void> | undefined {
      return this.#c.#writeMessage(bytes);
    }

    encode<M>(
      encoder: EncodesInto<M>,
      message: M,
    ): Promise<void> | undefined | false {
      return this.#c.#encodeMessage(encoder, message);
    }

    room(): Promise<void> | undefined {
      return this.#c.#room();
    }

    segment(): Uint8Array {
      return takeSegment(Math.min(SEGMENT_START, this.#c.#writeBufferSize));
    }

    hand(segment: Uint8Array, length: number): Promise<void> | undefined {
      return this.#c.#hand(segment, length);
    }

    hold(release: () => void): void {
      this.#c.#holder = release;
    }

    cork(): void {
      this.#c.#corked = true;
    }

    uncork(): void {
      this.#c.#uncork();
    }

    closeWrite(): Promise<void> {
      return this.#c.closeWrite();
    }

    close(reason?: unknown): void {
      this.#c.close(reason);
    }
  };

  static {
    registerBytePort((connection) =>
      new Connection.#Port(connection as Connection)
    );
  }

  /** Closes the connection once both directions are done. */
  #settle(): void {
    if (this.#readDone && this.#writeDone && !this.#connClosed) {
      this.#closeConn();
      this.#resolveClosed();
    }
  }

  /** Tears everything down with `reason`; only the first failure counts. */
  #fail(reason: unknown): void {
    if (this.#connClosed) return;
    this.#failed = true;
    this.#failure = reason;
    this.#closeConn();
    this.#controller?.abort(reason);
    if (!this.#readDone) {
      this.#readDone = true;
      try {
        this.#readController?.error(reason);
      } catch { /* already closed or errored */ }
    }
    this.#writeDone = true;
    this.#dropWrites(reason);
    try {
      this.#writeController?.error(reason);
    } catch { /* already errored */ }
    this.#rejectClosed(reason);
  }

  #closeConn(): void {
    this.#connClosed = true;
    this.#loopBuffer = this.#carve = undefined;
    if (this.#onAbort) {
      this.#signal!.removeEventListener("abort", this.#onAbort);
    }
    try {
      this.#conn.close();
    } catch { /* closed by someone else already */ }
  }
}

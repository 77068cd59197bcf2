/**
 * Web streams over a Deno connection that keep TCP half-close.
 *
 * In Deno, reading `conn.readable` to its end closes the whole connection,
 * and closing `conn.writable` is a full close rather than a half-close
 * (denoland/deno#22258). So the obvious
 * `conn.readable.pipeThrough(t).pipeTo(conn.writable)` loses whatever `t`
 * emits after the peer has finished sending, such as an answer written in a
 * `flush()`.
 *
 * {@linkcode ConnStreams} is the fix. Its `readable` ends at the peer's FIN
 * and leaves the connection open for writing; closing its `writable` sends
 * our FIN with `closeWrite()`; the connection is closed exactly once, when
 * both directions are done, or at once on an error or an abort.
 *
 * ```ts
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const streams = new ConnStreams(conn);
 *   return streams.readable
 *     .pipeThrough(new UpperCaseStream())
 *     .pipeTo(streams.writable);
 * });
 *
 * const client = new ConnStreams(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * // Send, then half-close: the answer still arrives in full.
 * await ReadableStream.from([new TextEncoder().encode("hello")])
 *   .pipeTo(client.writable);
 * const answer = await new Response(client.readable).text();
 * await served;
 * await client.closed;
 * assert.equal(answer, "HELLO");
 * ```
 *
 * @module
 */

/** Options for {@linkcode ConnStreams}. */
export interface ConnStreamsOptions {
  /**
   * How many bytes to ask the connection for in one read. Chunks are carved
   * out of buffers of this size, so a read hands its bytes on without a copy.
   *
   * @default {65536}
   */
  readSize?: number;
  /**
   * Aborts both directions: the connection is closed at once and both
   * streams error with the signal's reason.
   */
  signal?: AbortSignal;
}

/**
 * The smallest free tail of a read buffer worth reading into; below it a new
 * buffer is allocated. Reads on a busy connection often return a full buffer,
 * so a small tail would only cost an extra read.
 */
const MIN_READ = 4096;

/**
 * A readable and a writable web stream over one connection that keep TCP
 * half-close, with byte counters and one `closed` promise.
 *
 * - `readable` yields what the peer sends and closes at the peer's FIN,
 *   leaving the connection open for writing.
 * - `writable` writes every chunk in full; closing it sends our FIN with
 *   `conn.closeWrite()`, leaving the connection open for reading.
 * - The connection is closed exactly once: when the readable has ended (or
 *   was cancelled) and the writable has closed, or at once when either side
 *   fails, the writable is aborted, the signal aborts or
 *   {@linkcode ConnStreams.prototype.close} is called.
 *
 * Use these streams instead of the bare `conn.readable` and `conn.writable`,
 * never beside them.
 *
 * @example Echo one connection, answering after the peer's half-close
 * ```ts
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const streams = new ConnStreams(conn);
 *   return streams.readable.pipeTo(streams.writable);
 * });
 *
 * const client = new ConnStreams(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * const writer = client.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close(); // FIN: the server still answers
 * const echoed = await new Response(client.readable).text();
 * await Promise.all([served, client.closed]);
 * assert.equal(echoed, "ping");
 * assert.equal(client.bytesRead, 4);
 * ```
 */
export class ConnStreams implements Disposable {
  /** What the peer sends; closes at the peer's FIN. */
  readonly readable: ReadableStream<Uint8Array>;
  /** What we send; closing it half-closes the connection. */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Settles once the connection has been closed: fulfils when both
   * directions ended cleanly, rejects with the first error otherwise.
   */
  readonly closed: Promise<void>;

  #conn: Deno.Conn;
  #readSize: number;
  #buffer: Uint8Array = new Uint8Array(0);
  #offset = 0;
  #bytesRead = 0;
  #bytesWritten = 0;
  #readDone = false;
  #writeDone = false;
  #connClosed = false;
  #failure: unknown = undefined;
  #failed = false;
  #readController!: ReadableStreamDefaultController<Uint8Array>;
  #writeController!: WritableStreamDefaultController;
  #resolveClosed!: () => void;
  #rejectClosed!: (reason: unknown) => void;
  #signal?: AbortSignal;
  #onAbort = () => this.#fail(this.#signal!.reason);

  /**
   * Wraps a connection. From here on, only these streams and `close()` may
   * touch it.
   *
   * @param conn A TCP, TLS or Unix connection.
   * @param options Read size and abort signal.
   */
  constructor(conn: Deno.Conn, options: ConnStreamsOptions = {}) {
    const { readSize = 65536, signal } = options;
    if (!Number.isInteger(readSize) || readSize < 1) {
      throw new RangeError(
        `Cannot create connection streams as readSize must be a positive integer: current value is ${readSize}`,
      );
    }
    this.#conn = conn;
    this.#readSize = readSize;
    this.closed = new Promise<void>((resolve, reject) => {
      this.#resolveClosed = resolve;
      this.#rejectClosed = reject;
    });
    // Nobody has to await `closed`; an unobserved rejection must not crash.
    this.closed.catch(() => {});

    this.readable = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#readController = controller;
      },
      pull: (controller) => this.#pull(controller),
      cancel: () => {
        this.#readDone = true;
        this.#settle();
      },
    }, { highWaterMark: 0 });

    this.writable = new WritableStream<Uint8Array>({
      start: (controller) => {
        this.#writeController = controller;
      },
      write: (chunk) => this.#write(chunk),
      close: () => this.#closeWrite(),
      abort: (reason) => this.#fail(reason),
    });

    if (signal) {
      this.#signal = signal;
      if (signal.aborted) this.#fail(signal.reason);
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  /** Bytes received from the peer so far. */
  get bytesRead(): number {
    return this.#bytesRead;
  }

  /** Bytes sent to the peer so far. */
  get bytesWritten(): number {
    return this.#bytesWritten;
  }

  /**
   * Closes the connection now, in both directions. Streams still open error
   * with `reason`, or with an `Interrupted` error when none is given; if both
   * directions had already ended, this does nothing.
   *
   * @param reason Why the connection is closed.
   */
  close(reason?: unknown): void {
    if (this.#connClosed) return;
    this.#fail(
      reason ?? new Deno.errors.Interrupted("Connection closed by close()"),
    );
  }

  /** Same as {@linkcode ConnStreams.prototype.close} without a reason. */
  [Symbol.dispose](): void {
    this.close();
  }

  async #pull(
    controller: ReadableStreamDefaultController<Uint8Array>,
  ): Promise<void> {
    if (this.#buffer.length - this.#offset < MIN_READ) {
      this.#buffer = new Uint8Array(this.#readSize);
      this.#offset = 0;
    }
    const start = this.#offset;
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buffer.subarray(start));
    } catch (error) {
      // A read cut short by our own close reports that close's reason.
      const reason = this.#failed ? this.#failure : error;
      this.#fail(reason);
      throw reason;
    }
    if (this.#readDone) return; // cancelled while the read was pending
    if (n === null) {
      this.#readDone = true;
      controller.close();
      this.#settle();
      return;
    }
    this.#offset = start + n;
    this.#bytesRead += n;
    controller.enqueue(this.#buffer.subarray(start, start + n));
  }

  async #write(chunk: Uint8Array): Promise<void> {
    try {
      let written = 0;
      while (written < chunk.length) {
        written += await this.#conn.write(chunk.subarray(written));
      }
      this.#bytesWritten += written;
    } catch (error) {
      const reason = this.#failed ? this.#failure : error;
      this.#fail(reason);
      throw reason;
    }
  }

  async #closeWrite(): Promise<void> {
    if (this.#connClosed) {
      if (this.#failed) throw this.#failure;
      return;
    }
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
    if (!this.#readDone) {
      this.#readDone = true;
      try {
        this.#readController.error(reason);
      } catch { /* already closed or errored */ }
    }
    if (!this.#writeDone) {
      this.#writeDone = true;
      this.#writeController.error(reason);
    }
    this.#rejectClosed(reason);
  }

  #closeConn(): void {
    this.#connClosed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn.close();
    } catch { /* closed by someone else already */ }
  }
}

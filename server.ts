/**
 * A concurrent TCP server: many clients at once on one event loop, each
 * connection its own pipeline, with half-close done right, per-connection
 * isolation, limits, graceful shutdown and accounting.
 *
 * The handler returns a per-connection `TransformStream` service, which the
 * server pipes the connection through, or handles the connection itself.
 *
 * ```ts
 * import { serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 *
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite(); // the server answers in full after our FIN
 * const buffer = new Uint8Array(16);
 * let text = "";
 * for (let n; (n = await conn.read(buffer)) !== null;) {
 *   text += new TextDecoder().decode(buffer.subarray(0, n));
 * }
 * console.log(text); // "HELLO"
 * ```
 *
 * It is also a program: `deno run -N jsr:@x/sock/server --help`.
 *
 * @module
 */

import { ConnStreams } from "./conn_streams.ts";
import { EchoStream, upperCase, UpperCaseStream } from "./services.ts";

/** Where a connection comes from and goes to, given to the hooks. */
export interface ConnectionInfo {
  /** Sequence number of the connection on its server, from 1. */
  readonly id: number;
  /** The server's end of the connection. */
  readonly localAddr: Deno.Addr;
  /** The client's end of the connection. */
  readonly remoteAddr: Deno.Addr;
}

/** What a connection did, given to {@linkcode ServeOptions.onClose}. */
export interface ConnectionStats {
  /** Bytes received from the client. */
  readonly bytesIn: number;
  /** Bytes sent to the client. */
  readonly bytesOut: number;
  /** Milliseconds from accept to close. */
  readonly duration: number;
  /**
   * Why the connection ended abnormally: a network error (such as a reset),
   * the handler's error, a `Deno.errors.TimedOut` after
   * {@linkcode ServeOptions.idleTimeout}, or a `Deno.errors.Interrupted` when
   * the server closed it on shutdown. Absent after a clean close.
   */
  readonly error?: unknown;
}

/** Options for {@linkcode serve}. */
export interface ServeOptions {
  /**
   * The address to listen on. Use `"0.0.0.0"` or `"::"` to accept clients
   * from other machines.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to listen on; `0` lets the operating system choose a free one,
   * which {@linkcode Server.addr} then reports.
   *
   * @default {9990}
   */
  port?: number;
  /**
   * Listen on a Unix socket at this path instead of `hostname` and `port`.
   * The file must not exist; it is removed when the server stops. Needs
   * `--allow-read` and `--allow-write` for the path.
   *
   * @default {undefined}
   */
  path?: string;
  /**
   * Certificate chain in PEM format: with `key`, serve TLS through
   * `Deno.listenTls`. Not available with `path`.
   *
   * @default {undefined}
   */
  cert?: string;
  /**
   * Private key in PEM format, for `cert`.
   *
   * @default {undefined}
   */
  key?: string;
  /**
   * Aborting it shuts the server down as {@linkcode Server.shutdown} does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * How many connections may be open at once. A client beyond it is
   * accepted and closed at once (it reads end-of-file, or a reset if it has
   * sent data), and `onError` gets a `RangeError` with its
   * {@linkcode ConnectionInfo}; the connections already open are not
   * disturbed.
   *
   * @default {1024}
   */
  maxConnections?: number;
  /**
   * Milliseconds a connection may go without a byte moving in either
   * direction before the server closes it; `0` means never. A client that
   * half-closed and is still receiving its answer is not idle. The check
   * runs every quarter of this period, so a connection is closed between
   * one and one and a quarter periods after it fell silent, never sooner.
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Milliseconds that open connections get to finish after
   * {@linkcode Server.shutdown}; the ones still open then are closed, their
   * {@linkcode Connection.signal} aborted. `Infinity` waits for ever.
   *
   * @default {5000}
   */
  gracePeriod?: number;
  /**
   * Called once the server listens, with its address.
   *
   * @default {undefined}
   */
  onListen?(addr: Deno.Addr): void;
  /**
   * Called when a connection has been accepted, before the handler.
   *
   * @default {undefined}
   */
  onConnect?(info: ConnectionInfo): void;
  /**
   * Called when a connection has been closed, with its accounting.
   *
   * @default {undefined}
   */
  onClose?(info: ConnectionInfo & ConnectionStats): void;
  /**
   * Called with an error of the program rather than of the network: the
   * handler or its service threw, a hook threw, the listener failed to
   * accept, or a client was refused beyond `maxConnections` (`info` is given
   * for errors of a connection). Network errors such as a client's reset, and
   * idle or shutdown closes, are reported only as
   * {@linkcode ConnectionStats.error}. Errors thrown by `onError` itself are
   * ignored.
   *
   * @default {(error) => console.error(error)}
   */
  onError?(error: unknown, info?: ConnectionInfo): void;
}

/**
 * A client connection, given to the {@linkcode Handler}.
 *
 * Its `readable` and `writable` are half-close safe (see
 * {@linkcode ConnStreams}): `readable` ends at the client's FIN and leaves
 * the connection open for the answer; closing `writable` sends our FIN.
 */
export interface Connection extends ConnectionInfo {
  /**
   * What the client sends; ends at its FIN. Not available once the handler
   * has returned a service, which the server then pipes itself.
   */
  readonly readable: ReadableStream<Uint8Array>;
  /**
   * What we send; closing it half-closes the connection. Not available once
   * the handler has returned a service.
   */
  readonly writable: WritableStream<Uint8Array>;
  /**
   * Aborts when the server closes the connection before its end: idle
   * timeout, shutdown after the grace period, or another error.
   */
  readonly signal: AbortSignal;
  /** Bytes received from the client so far. */
  readonly bytesRead: number;
  /** Bytes sent to the client so far. */
  readonly bytesWritten: number;
  /**
   * Closes the connection now in both directions; `signal` aborts with
   * `reason`.
   *
   * @param reason Why, reported as {@linkcode ConnectionStats.error}.
   */
  close(reason?: unknown): void;
}

/**
 * Serves one connection. Either return a fresh `TransformStream` service,
 * which the server pipes the connection through (its output after the
 * client's FIN, `flush()` included, is sent in full before our FIN), or
 * handle the connection yourself:
 *
 * - return a promise: when it fulfils, the server closes `writable` if you
 *   left it open (sending FIN), discards unread input and closes the
 *   connection; when it rejects, the connection is closed at once and the
 *   error goes to {@linkcode ServeOptions.onError};
 * - return nothing after starting work on `readable` / `writable`: the
 *   connection lives until both have ended; if you touched neither, it is
 *   closed at once.
 *
 * The built-in {@linkcode EchoStream} and {@linkcode UpperCaseStream} take a
 * fast path: the server applies their byte function in its own read-write
 * loop, with the same output, so they cost no more per chunk than a bare
 * `conn.read`/`conn.write` loop.
 */
export type Handler = (
  connection: Connection,
) => TransformStream<Uint8Array, Uint8Array> | void | Promise<void>;

/** A running server, returned by {@linkcode serve}. */
export interface Server extends AsyncDisposable {
  /** The address the server listens on, with the actual port. */
  readonly addr: Deno.Addr;
  /**
   * Settles (always fulfils) once the server has stopped: the listener is
   * closed and every connection is closed.
   */
  readonly finished: Promise<void>;
  /**
   * Stops accepting, lets open connections finish within
   * {@linkcode ServeOptions.gracePeriod}, then closes the rest. Calling it
   * again returns the same promise.
   *
   * @returns {@linkcode Server.finished}.
   */
  shutdown(): Promise<void>;
  /** Same as {@linkcode Server.shutdown}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** The default port of {@linkcode serve} and of the program. */
export const DEFAULT_PORT = 9990;
/** The default address of {@linkcode serve} and of the program. */
export const DEFAULT_HOSTNAME = "127.0.0.1";
/** The default of {@linkcode ServeOptions.maxConnections}. */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/** The default of {@linkcode ServeOptions.gracePeriod}, in milliseconds. */
export const DEFAULT_GRACE_PERIOD = 5000;

/**
 * Listens and serves every client concurrently with `handler`, each
 * connection isolated from the others: a reset, a timeout or an error on one
 * never disturbs another or the listener.
 *
 * Listening errors are thrown at once, such as `Deno.errors.AddrInUse`,
 * `Deno.errors.AddrNotAvailable` or `Deno.errors.NotCapable` without
 * `--allow-net`.
 *
 * @param options Address, limits, hooks.
 * @param handler Serves one connection.
 * @returns The running server.
 *
 * @example Upper-case server with accounting
 * ```ts
 * import { serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<number>();
 * await using server = serve({
 *   port: 0,
 *   onClose: (info) => closed.resolve(info.bytesOut),
 * }, () => new UpperCaseStream());
 *
 * const { port } = server.addr as Deno.NetAddr;
 * const client = new ConnStreams(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * await ReadableStream.from([new TextEncoder().encode("shout")])
 *   .pipeTo(client.writable); // sends, then half-closes
 * assert.equal(await new Response(client.readable).text(), "SHOUT");
 * assert.equal(await closed.promise, 5);
 * ```
 *
 * @example A handler of its own: a line-count service with a `flush()` answer
 * ```ts
 * import { serve } from "@x/sock/server";
 *
 * await using server = serve({ port: 0 }, () => {
 *   let lines = 0;
 *   return new TransformStream<Uint8Array, Uint8Array>({
 *     transform(chunk) {
 *       for (const byte of chunk) if (byte === 0x0a) lines++;
 *     },
 *     flush(controller) {
 *       controller.enqueue(new TextEncoder().encode(`${lines}\n`));
 *     },
 *   });
 * });
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new TextEncoder().encode("a\nb\nc\n"));
 * await conn.closeWrite();
 * const buffer = new Uint8Array(8);
 * const n = await conn.read(buffer);
 * console.log(new TextDecoder().decode(buffer.subarray(0, n ?? 0))); // "3\n"
 * ```
 *
 * @example Serve until Ctrl-C
 * ```ts ignore
 * import { serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 *
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGINT", () => controller.abort());
 * const server = serve(
 *   { port: 7, signal: controller.signal },
 *   () => new EchoStream(),
 * );
 * await server.finished;
 * ```
 */
export function serve(options: ServeOptions, handler: Handler): Server {
  return new SocketServer(options, handler);
}

// ---------------------------------------------------------------------------
// Implementation

/** Errors that say something about the network or the peer, not the code. */
function isNetworkError(error: unknown): boolean {
  return error instanceof Deno.errors.ConnectionReset ||
    error instanceof Deno.errors.ConnectionAborted ||
    error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.NotConnected ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.TimedOut ||
    error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.BadResource;
}

function checkNumber(
  name: string,
  value: number,
  min: number,
  integer: boolean,
  max = Infinity,
): void {
  if (
    typeof value !== "number" || Number.isNaN(value) || value < min ||
    value > max || (integer && !Number.isInteger(value) && value !== Infinity)
  ) {
    throw new RangeError(
      `Cannot serve as ${name} must be ${
        integer ? "an integer" : "a number"
      } >= ${min}${
        max < Infinity ? ` and <= ${max}` : ""
      }: current value is ${value}`,
    );
  }
}

/** Returns the byte function of a built-in service, if `service` is one. */
function fastPath(
  service: TransformStream<Uint8Array, Uint8Array>,
): ((bytes: Uint8Array) => Uint8Array) | undefined {
  // Exact classes only: a subclass may behave differently.
  if (service.readable.locked || service.writable.locked) return undefined;
  const type = service.constructor;
  if (type === EchoStream) return (bytes) => bytes;
  if (type === UpperCaseStream) return upperCase;
  return undefined;
}

/** A read size that starts small and grows while reads fill it. */
const FIRST_READ = 4096;
const MAX_READ = 65536;

/** The reason given to our own close of a finished connection. */
const FINISHED = Symbol("finished");

class ServerConnection implements Connection {
  readonly id: number;
  readonly localAddr: Deno.Addr;
  readonly remoteAddr: Deno.Addr;
  readonly start: number = performance.now();
  /** Activity seen by the last idle check, and since when it was the same. */
  lastActivity = 0;
  idleSince: number = this.start;
  /** The first error, and whether it is a fault of the program. */
  error: unknown = undefined;
  failed = false;
  fault = false;

  #conn: Deno.Conn;
  #controller = new AbortController();
  #streams?: ConnStreams;
  #piping = false;
  #connClosed = false;
  #bytesIn = 0;
  #bytesOut = 0;

  constructor(conn: Deno.Conn, id: number) {
    this.#conn = conn;
    this.id = id;
    this.localAddr = conn.localAddr;
    this.remoteAddr = conn.remoteAddr;
  }

  get readable(): ReadableStream<Uint8Array> {
    return this.#open().readable;
  }

  get writable(): WritableStream<Uint8Array> {
    return this.#open().writable;
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get bytesRead(): number {
    return this.#streams ? this.#streams.bytesRead : this.#bytesIn;
  }

  get bytesWritten(): number {
    return this.#streams ? this.#streams.bytesWritten : this.#bytesOut;
  }

  info(): ConnectionInfo {
    return {
      id: this.id,
      localAddr: this.localAddr,
      remoteAddr: this.remoteAddr,
    };
  }

  close(reason?: unknown): void {
    this.#fail(
      reason ?? new Deno.errors.Interrupted("Connection closed by close()"),
      false,
    );
  }

  /** Runs the handler to the end; never throws. */
  async run(handler: Handler): Promise<void> {
    let result: ReturnType<Handler>;
    try {
      result = handler(this);
    } catch (error) {
      this.#fail(error, true);
      return;
    }
    if (result instanceof TransformStream) {
      if (this.#streams) return await this.#pipeStreams(result);
      this.#piping = true;
      const bytes = fastPath(result);
      return await (bytes ? this.#pumpBytes(bytes) : this.#pumpService(result));
    }
    if (result === undefined) {
      if (!this.#streams) return this.#closeConn();
      // The handler works on the streams: their end is the connection's.
      await this.#streams.closed.catch((error) => this.#fail(error, false));
      return;
    }
    if (typeof (result as Promise<void>)?.then !== "function") {
      return this.#fail(
        new TypeError(
          `Cannot serve connection as the handler returned neither a TransformStream, a promise nor undefined: current value is ${
            Object.prototype.toString.call(result)
          }`,
        ),
        true,
      );
    }
    try {
      await result;
    } catch (error) {
      this.#fail(error, !isNetworkError(error));
      return;
    }
    await this.#finish();
  }

  /** Closes what the handler left open after its promise fulfilled. */
  async #finish(): Promise<void> {
    const streams = this.#streams;
    if (!streams) return this.#closeConn();
    if (!streams.writable.locked) {
      await streams.writable.close().catch(() => {});
    }
    if (!streams.readable.locked) {
      await streams.readable.cancel().catch(() => {});
    }
    streams.close(FINISHED);
    await streams.closed.catch((error) => {
      if (error !== FINISHED) this.#fail(error, false);
    });
  }

  /** Forces the connection closed; the first error is the one reported. */
  #fail(error: unknown, fault: boolean): void {
    if (!this.failed && !this.#connClosed) {
      this.failed = true;
      this.error = error;
      this.fault = fault;
      this.#controller.abort(error);
    }
    if (this.#streams) this.#streams.close(error);
    this.#closeConn();
  }

  #closeConn(): void {
    if (this.#connClosed) return;
    this.#connClosed = true;
    try {
      this.#conn.close();
    } catch { /* closed already */ }
  }

  #open(): ConnStreams {
    if (this.#piping) {
      throw new TypeError(
        "Cannot use the connection's streams as the server pipes them through the handler's service",
      );
    }
    return this.#streams ??= new ConnStreams(this.#conn);
  }

  async #closeWrite(): Promise<void> {
    try {
      await this.#conn.closeWrite();
    } catch (error) {
      // The client may have closed already: our FIN is moot then.
      if (!(error instanceof Deno.errors.NotConnected)) throw error;
    }
  }

  /** Writes all of `bytes`, counting progress as it goes. */
  async #writeAll(bytes: Uint8Array): Promise<void> {
    const conn = this.#conn;
    let written = await conn.write(bytes);
    this.#bytesOut += written;
    while (written < bytes.length) {
      const n = await conn.write(bytes.subarray(written));
      written += n;
      this.#bytesOut += n;
    }
  }

  /**
   * The hot path of the built-in services: one buffer, reused, and no
   * stream machinery, so a chunk costs one read and one write.
   */
  async #pumpBytes(
    transform: (bytes: Uint8Array) => Uint8Array,
  ): Promise<void> {
    const conn = this.#conn;
    let buffer = new Uint8Array(FIRST_READ);
    try {
      while (true) {
        const n = await conn.read(buffer);
        if (n === null) break;
        this.#bytesIn += n;
        const out = transform(
          n === buffer.length ? buffer : buffer.subarray(0, n),
        );
        // The write completes before the next read, so reuse is safe.
        await this.#writeAll(out);
        if (n === buffer.length && buffer.length < MAX_READ) {
          buffer = new Uint8Array(buffer.length * 4);
        }
      }
      await this.#closeWrite();
    } catch (error) {
      this.#fail(error, false);
    }
    this.#closeConn();
  }

  /**
   * Any other service: the connection is read and written by hand, without
   * `ConnStreams`, and only the service itself is a stream.
   */
  async #pumpService(
    service: TransformStream<Uint8Array, Uint8Array>,
  ): Promise<void> {
    const conn = this.#conn;
    const writer = service.writable.getWriter();
    const reader = service.readable.getReader();
    // A network error stops both loops: the service is torn down with it.
    const networkError = (error: unknown) => {
      this.#fail(error, false);
      writer.abort(error).catch(() => {});
      reader.cancel(error).catch(() => {});
    };
    const serviceError = (error: unknown) => this.#fail(error, true);

    const input = async () => {
      // Chunks are carved out of a buffer and handed on without a copy,
      // since the service may keep them.
      let size = FIRST_READ;
      let buffer = new Uint8Array(size);
      let offset = 0;
      while (true) {
        let n: number | null;
        try {
          if (buffer.length - offset < FIRST_READ) {
            buffer = new Uint8Array(size);
            offset = 0;
          }
          n = await conn.read(buffer.subarray(offset));
        } catch (error) {
          return networkError(error);
        }
        if (n === null) break;
        this.#bytesIn += n;
        const chunk = buffer.subarray(offset, offset + n);
        if (offset === 0 && n === buffer.length && size < MAX_READ) size *= 4;
        offset += n;
        try {
          await writer.write(chunk);
        } catch (error) {
          return serviceError(error);
        }
      }
      // Lets the service flush; the output loop sends what it emits.
      await writer.close().catch(serviceError);
    };

    const output = async () => {
      while (true) {
        let result: ReadableStreamReadResult<Uint8Array>;
        try {
          result = await reader.read();
        } catch (error) {
          return serviceError(error);
        }
        if (result.done) break;
        try {
          await this.#writeAll(result.value);
        } catch (error) {
          return networkError(error);
        }
      }
      try {
        await this.#closeWrite();
      } catch (error) {
        networkError(error);
      }
    };

    await Promise.all([input(), output()]);
    if (this.failed) {
      writer.abort(this.error).catch(() => {});
      reader.cancel(this.error).catch(() => {});
    }
    this.#closeConn();
  }

  /** A service for a handler that opened the streams before returning it. */
  async #pipeStreams(
    service: TransformStream<Uint8Array, Uint8Array>,
  ): Promise<void> {
    const streams = this.#streams!;
    try {
      await streams.readable.pipeThrough(service).pipeTo(streams.writable);
      await streams.closed;
    } catch (error) {
      this.#fail(error, !isNetworkError(error));
    }
  }
}

class SocketServer implements Server {
  readonly addr: Deno.Addr;
  readonly finished: Promise<void>;

  #listener: Deno.Listener;
  #handler: Handler;
  #options: ServeOptions;
  #maxConnections: number;
  #idleTimeout: number;
  #gracePeriod: number;
  #connections = new Set<ServerConnection>();
  #nextId = 1;
  #closing = false;
  #drained?: PromiseWithResolvers<void>;
  #idleTimer?: ReturnType<typeof setInterval>;
  #graceTimer?: ReturnType<typeof setTimeout>;
  #backoff?: { timer: ReturnType<typeof setTimeout>; resolve: () => void };
  #signal?: AbortSignal;
  #onAbort = () => void this.shutdown();

  constructor(options: ServeOptions, handler: Handler) {
    if (typeof handler !== "function") {
      throw new TypeError(
        `Cannot serve as the handler must be a function: current type is ${typeof handler}`,
      );
    }
    const {
      hostname = DEFAULT_HOSTNAME,
      port = DEFAULT_PORT,
      path,
      cert,
      key,
      maxConnections = DEFAULT_MAX_CONNECTIONS,
      idleTimeout = 0,
      gracePeriod = DEFAULT_GRACE_PERIOD,
    } = options;
    checkNumber("port", port, 0, true, 65535);
    checkNumber("maxConnections", maxConnections, 1, true);
    checkNumber("idleTimeout", idleTimeout, 0, false);
    checkNumber("gracePeriod", gracePeriod, 0, false);
    if ((cert === undefined) !== (key === undefined)) {
      throw new TypeError(
        `Cannot serve TLS as cert and key must be given together: current ${
          cert === undefined ? "cert" : "key"
        } is missing`,
      );
    }
    if (path !== undefined && cert !== undefined) {
      throw new TypeError(
        "Cannot serve TLS on a Unix socket: give either path, or cert and key",
      );
    }
    this.#handler = handler;
    this.#options = options;
    this.#maxConnections = maxConnections;
    this.#idleTimeout = idleTimeout === Infinity ? 0 : idleTimeout;
    this.#gracePeriod = gracePeriod;

    this.#listener = path !== undefined
      ? Deno.listen({ transport: "unix", path })
      : cert !== undefined
      ? Deno.listenTls({ hostname, port, cert, key: key! })
      : Deno.listen({ hostname, port });
    this.addr = this.#listener.addr;

    const accepting = this.#accept();
    this.finished = accepting.then(() => this.#drain()).then(() => {
      clearTimeout(this.#graceTimer);
      this.#signal?.removeEventListener("abort", this.#onAbort);
    });

    if (options.signal) {
      this.#signal = options.signal;
      if (options.signal.aborted) this.shutdown();
      else options.signal.addEventListener("abort", this.#onAbort);
    }
  }

  shutdown(): Promise<void> {
    if (this.#closing) return this.finished;
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    if (this.#backoff) {
      clearTimeout(this.#backoff.timer);
      this.#backoff.resolve();
    }
    if (this.#connections.size > 0 && this.#gracePeriod !== Infinity) {
      const closeAll = () => {
        const error = new Deno.errors.Interrupted(
          `Connection closed as the server shut down: grace period of ${this.#gracePeriod} ms is over`,
        );
        for (const connection of this.#connections) connection.close(error);
      };
      if (this.#gracePeriod === 0) closeAll();
      else this.#graceTimer = setTimeout(closeAll, this.#gracePeriod);
    }
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  #report(error: unknown, info?: ConnectionInfo): void {
    try {
      if (this.#options.onError) this.#options.onError(error, info);
      else console.error(error);
    } catch { /* see ServeOptions.onError */ }
  }

  #hook<T>(
    hook: ((arg: T) => void) | undefined,
    arg: T,
    info?: ConnectionInfo,
  ): boolean {
    if (!hook) return true;
    try {
      hook.call(this.#options, arg);
      return true;
    } catch (error) {
      this.#report(error, info);
      return false;
    }
  }

  async #accept(): Promise<void> {
    this.#hook(this.#options.onListen, this.addr);
    let delay = 0;
    while (!this.#closing) {
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) break;
        this.#report(error);
        if (error instanceof Deno.errors.BadResource) {
          // The listener is gone for good.
          this.shutdown();
          break;
        }
        // Such as EMFILE: wait for connections to close, doubling the wait.
        delay = Math.min(delay ? delay * 2 : 5, 1000);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, delay);
          this.#backoff = { timer, resolve };
        });
        this.#backoff = undefined;
        continue;
      }
      delay = 0;
      if (this.#closing) {
        conn.close();
        break;
      }
      const id = this.#nextId++;
      if (this.#connections.size >= this.#maxConnections) {
        const info = {
          id,
          localAddr: conn.localAddr,
          remoteAddr: conn.remoteAddr,
        };
        conn.close();
        this.#report(
          new RangeError(
            `Cannot accept connection as maxConnections is reached: current count is ${this.#connections.size}, limit is ${this.#maxConnections}`,
          ),
          info,
        );
        continue;
      }
      this.#serve(new ServerConnection(conn, id));
    }
  }

  async #serve(connection: ServerConnection): Promise<void> {
    this.#connections.add(connection);
    if (this.#idleTimeout > 0 && this.#idleTimer === undefined) {
      this.#idleTimer = setInterval(
        () => this.#checkIdle(),
        Math.max(1, this.#idleTimeout / 4),
      );
    }
    const info = connection.info();
    if (this.#hook(this.#options.onConnect, info, info)) {
      await connection.run(this.#handler);
    } else {
      connection.close(new Error("Connection closed as onConnect threw"));
    }
    if (connection.fault) this.#report(connection.error, info);
    this.#connections.delete(connection);
    if (this.#connections.size === 0) {
      clearInterval(this.#idleTimer);
      this.#idleTimer = undefined;
      this.#drained?.resolve();
    }
    const stats: ConnectionInfo & ConnectionStats = {
      ...info,
      bytesIn: connection.bytesRead,
      bytesOut: connection.bytesWritten,
      duration: performance.now() - connection.start,
      ...(connection.failed ? { error: connection.error } : {}),
    };
    this.#hook(this.#options.onClose, stats, info);
  }

  #checkIdle(): void {
    const now = performance.now();
    for (const connection of this.#connections) {
      const activity = connection.bytesRead + connection.bytesWritten;
      if (activity !== connection.lastActivity) {
        connection.lastActivity = activity;
        connection.idleSince = now;
      } else if (now - connection.idleSince >= this.#idleTimeout) {
        connection.close(
          new Deno.errors.TimedOut(
            `Connection closed as it was idle for ${
              Math.round(now - connection.idleSince)
            } ms: idleTimeout is ${this.#idleTimeout} ms`,
          ),
        );
      }
    }
  }

  #drain(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    this.#drained = Promise.withResolvers<void>();
    return this.#drained.promise;
  }
}

if (import.meta.main) {
  // Not awaited: the program module imports this one, which must finish
  // loading first.
  import("./_server_cli.ts").then(({ main }) => main(Deno.args)).then(
    (code) => {
      Deno.exitCode = code;
    },
  );
}

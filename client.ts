/**
 * A TCP client with split I/O and half-close: the classic client that sends
 * its input on one side, prints what comes back on the other, and ends its
 * sending side with `shutdown(SHUT_WR)` while it keeps reading.
 *
 * {@linkcode connect} opens a connection (TCP over IPv4 or IPv6, TLS, or a
 * Unix socket) and returns it as a {@linkcode Connection};
 * {@linkcode exchange} is the split-I/O client as one call.
 *
 * ```ts
 * import { connect, exchange } from "@x/sock/client";
 * import { serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
 * const answer = exchange(conn, ReadableStream.from(["hello"]).pipeThrough(new TextEncoderStream()));
 * assert.equal(await new Response(answer).text(), "HELLO");
 * ```
 *
 * It is also a program, the netcat of this package:
 * `deno run -N jsr:@x/sock/client --help`.
 *
 * @module
 */

import { Connection, type ConnectionOptions } from "./connection.ts";

/**
 * Options for {@linkcode connect}.
 *
 * @example IPv6, a short deadline, keep-alive and a signal
 * ```ts
 * import { connect, type ConnectOptions } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "::1", port: 0 });
 * const controller = new AbortController();
 * const options: ConnectOptions = {
 *   hostname: "::1",
 *   port: listener.addr.port,
 *   connectTimeout: 2000,
 *   keepAlive: true,
 *   signal: controller.signal,
 * };
 * const conn = await connect(options);
 * using _accepted = await listener.accept();
 * assert.equal((conn.remoteAddr as Deno.NetAddr).port, listener.addr.port);
 * controller.abort(new Error("done")); // closes the connection
 * await assert.rejects(conn.closed, { message: "done" });
 * ```
 */
export interface ConnectOptions {
  /**
   * Host name or address to connect to; names are resolved.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to connect to.
   *
   * @default {9990}
   */
  port?: number;
  /**
   * Path of a Unix socket to connect to instead of `hostname` and `port`.
   *
   * @default {undefined}
   */
  path?: string;
  /**
   * Whether to speak TLS. The name checked against the server's certificate
   * is `hostname`.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * PEM certificates to trust besides the system's, for TLS servers with a
   * self-signed certificate.
   *
   * @default {undefined}
   */
  caCerts?: string[];
  /**
   * Milliseconds to wait for the connection and, with `tls`, the TLS
   * handshake (both under this one deadline) before giving up with a
   * {@linkcode ConnectError} caused by a `Deno.errors.TimedOut`. At most
   * 2^31 - 1; `Infinity` waits for ever.
   *
   * On a TLS handshake timeout the connection is closed at once on our
   * side, but in Deno 2.9 the operating-system socket stays open until the
   * server answers or closes it: Deno runs the handshake in a task that
   * closing the connection does not cancel.
   *
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Sets `TCP_NODELAY` so that small writes leave at once (no Nagle delay).
   * Ignored for Unix sockets.
   *
   * @default {true}
   */
  noDelay?: boolean;
  /**
   * Sets `SO_KEEPALIVE` so that a peer that vanished is noticed. Ignored for
   * Unix sockets.
   *
   * @default {false}
   */
  keepAlive?: boolean;
  /**
   * Aborts the attempt to connect, and later closes the connection.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * A failure to connect, naming the target; its `cause` is Deno's error,
 * such as `ConnectionRefused`, `TimedOut`, `NotFound` (host not found),
 * `ConnectionReset`, `NotCapable` (no permission) or `InvalidData` (a TLS
 * handshake that failed).
 *
 * @example Tell a refused connection apart
 * ```ts
 * import { ConnectError, connect } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close(); // nobody listens there now
 * await assert.rejects(connect({ port }), (error) => {
 *   assert.ok(error instanceof ConnectError);
 *   assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
 *   assert.equal(error.target, `127.0.0.1:${port}`);
 *   return true;
 * });
 * ```
 */
export class ConnectError extends Error {
  /** `host:port` or the Unix socket path that could not be reached. */
  readonly target: string;
  /** Whether the failure came in the TLS handshake, after TCP connected. */
  readonly tlsHandshake: boolean;

  /**
   * Creates the error.
   *
   * @param target What could not be reached.
   * @param cause Why.
   * @param tlsHandshake Whether it failed in the TLS handshake.
   */
  constructor(target: string, cause: unknown, tlsHandshake = false) {
    super(
      `Cannot connect to ${target}: ${
        tlsHandshake ? describeTlsFailure(cause) : describe(cause)
      }`,
      { cause },
    );
    this.name = "ConnectError";
    this.target = target;
    this.tlsHandshake = tlsHandshake;
  }
}

/**
 * The 0.1 name of the connection {@linkcode connect} returns; it is now a
 * {@linkcode Connection}.
 *
 * @deprecated Use {@linkcode Connection}; this subclass goes in 0.3.
 *
 * @example The 0.1 form still works
 * ```ts
 * import { ClientConnection } from "@x/sock/client";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const controller = new AbortController();
 * using conn = new ClientConnection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   controller.signal, // 0.2: { signal: controller.signal }
 * );
 * using _accepted = await listener.accept();
 * assert.ok(conn instanceof Connection);
 * ```
 */
export class ClientConnection extends Connection {
  /**
   * Wraps a connection from `Deno.connect` or the like.
   *
   * @param conn The connection to wrap.
   * @param options Options, or (as in 0.1) a signal that closes the
   * connection when it aborts.
   */
  constructor(conn: Deno.Conn, options?: ConnectionOptions | AbortSignal) {
    super(
      conn,
      options instanceof AbortSignal ? { signal: options } : options,
    );
  }
}

/**
 * The default port of {@linkcode connect}, the server's default too.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_PORT, 9990); // connect() with no port goes there
 * ```
 */
export const DEFAULT_PORT = 9990;

const MAX_TIMER = 2 ** 31 - 1;

function formatTarget(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Connects to a server, over TCP (IPv4 or IPv6, names resolved), TLS or a
 * Unix socket. The TCP connect and the TLS handshake run under one deadline
 * (`connectTimeout`) and one `signal`.
 *
 * @param options Where to connect and how long to try.
 * @returns The connection, half-close safe, with `TCP_NODELAY` on unless
 * `noDelay` is `false`.
 * @throws {ConnectError} The connection failed; `cause` says why.
 * @throws {RangeError} An option is out of range.
 * @throws {TypeError} `path` and `tls` are both given.
 * @throws When `signal` aborts first: its reason, as it is.
 *
 * @example Send, half-close, read the whole answer
 * ```ts
 * import { connect } from "@x/sock/client";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const peer = new Connection(conn);
 *   return peer.readable.pipeTo(peer.writable); // echo
 * });
 * await using conn = await connect({ port: listener.addr.port });
 * await conn.write(new TextEncoder().encode("ping"));
 * await conn.closeWrite(); // shutdown(SHUT_WR)
 * assert.equal(await new Response(conn.readable).text(), "ping");
 * await served;
 * ```
 */
export async function connect(
  options: ConnectOptions = {},
): Promise<Connection> {
  const {
    hostname = "127.0.0.1",
    port = DEFAULT_PORT,
    path,
    tls = false,
    caCerts,
    connectTimeout = 10_000,
    noDelay = true,
    keepAlive = false,
    signal,
  } = options;
  if (
    path === undefined && (!Number.isInteger(port) || port < 1 || port > 65535)
  ) {
    throw new RangeError(
      `Cannot connect as port must be an integer from 1 to 65535: current value is ${port}`,
    );
  }
  if (
    !(connectTimeout > 0) ||
    (connectTimeout > MAX_TIMER && connectTimeout !== Infinity)
  ) {
    throw new RangeError(
      `Cannot connect as connectTimeout must be a number of milliseconds from 1 to ${MAX_TIMER} or Infinity: current value is ${connectTimeout}`,
    );
  }
  if (path !== undefined && tls) {
    throw new TypeError(
      "Cannot connect as tls is not available with path: use a TCP host and port for TLS",
    );
  }
  const target = path ?? formatTarget(hostname, port);
  signal?.throwIfAborted();

  const timeout = connectTimeout === Infinity
    ? undefined
    : AbortSignal.timeout(connectTimeout);
  const signals = [signal, timeout].filter((s) => s !== undefined);
  const stop = signals.length > 0 ? AbortSignal.any(signals) : undefined;
  // The one error for every way the deadline or the signal can end it.
  const stopReason = () =>
    signal?.aborted
      ? signal.reason
      : new Deno.errors.TimedOut(`no answer within ${connectTimeout} ms`);

  // Phase 1: the transport. Deno.connect takes the signal for TCP; a Unix
  // connect is raced, and a connection arriving too late is closed.
  let conn: Deno.Conn;
  try {
    conn = await untilStopped<Deno.Conn>(
      path !== undefined
        ? Deno.connect({ transport: "unix", path })
        : Deno.connect({ hostname, port, signal: stop }),
      stop,
      stopReason,
    );
  } catch (error) {
    if (signal?.aborted && error === signal.reason) throw error;
    throw new ConnectError(
      target,
      timeout?.aborted && !(error instanceof Deno.errors.NotCapable)
        ? stopReason()
        : error,
    );
  }
  if (path === undefined) {
    // TCP options go on the TCP socket, before TLS wraps it.
    try {
      (conn as Deno.TcpConn).setNoDelay(noDelay);
      if (keepAlive) (conn as Deno.TcpConn).setKeepAlive(true);
    } catch { /* the socket is already gone: the next read says so */ }
  }
  if (!tls) {
    return new Connection(conn, { noDelay, keepAlive, signal });
  }

  // Phase 2: the TLS handshake, under the same deadline. It is lazy in
  // Deno; doing it now makes an untrusted certificate fail here, with the
  // target named, not at the first read.
  let tlsConn: Deno.TlsConn | undefined;
  try {
    tlsConn = await Deno.startTls(conn as Deno.TcpConn, { hostname, caCerts });
    await untilStopped(tlsConn.handshake(), stop, stopReason);
  } catch (error) {
    try {
      (tlsConn ?? conn).close();
    } catch { /* already closed */ }
    if (signal?.aborted && error === signal.reason) throw error;
    throw new ConnectError(target, error, true);
  }
  return new Connection(tlsConn, { noDelay, keepAlive, signal });
}

/** Waits for `promise`, or rejects when `stop` aborts. */
async function untilStopped<T>(
  promise: Promise<T>,
  stop: AbortSignal | undefined,
  reason: () => unknown,
): Promise<T> {
  if (!stop) return await promise;
  const stopped = Promise.withResolvers<never>();
  const onStop = () => stopped.reject(reason());
  if (stop.aborted) onStop();
  else stop.addEventListener("abort", onStop, { once: true });
  try {
    return await Promise.race([promise, stopped.promise]);
  } catch (error) {
    // A late success must not leak its connection.
    promise.then((late) => {
      const conn = late as unknown as { close?: () => void } | undefined;
      try {
        conn?.close?.();
      } catch { /* closed */ }
    }, () => {});
    throw error;
  } finally {
    stop.removeEventListener("abort", onStop);
  }
}

/**
 * The split-I/O client as one call: sends `input` to the peer, half-closes
 * when it ends, and gives back the peer's bytes until the peer closes. Both
 * directions run at once, so a peer that answers as it reads never waits on
 * us. An error on either side errors the returned stream.
 *
 * @param connection From {@linkcode connect}, or any {@linkcode Connection}.
 * @param input What to send.
 * @returns What the peer sends back.
 *
 * @example Pipe a file through a server
 * ```ts
 * import { connect, exchange } from "@x/sock/client";
 * import { serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "from a file\n");
 * using file = await Deno.open(path);
 * await using conn = await connect({
 *   port: (server.addr as Deno.NetAddr).port,
 * });
 * // To a terminal: .pipeTo(Deno.stdout.writable)
 * const answer = await new Response(exchange(conn, file.readable)).text();
 * assert.equal(answer, "FROM A FILE\n");
 * await Deno.remove(path);
 * ```
 */
export function exchange(
  connection: Connection,
  input: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  // pipeTo closes the writable at the end of input: closeWrite(), our FIN.
  // A failure on the way aborts the writable, which closes the connection
  // and errors its readable: the caller sees it there.
  input.pipeTo(connection.writable).catch(() => {});
  return connection.readable;
}

/**
 * Says in a few words why a connection failed.
 *
 * @param error The error from connecting, or from the connection later.
 * @returns A short description, such as `connection refused (is a server
 * listening there?)`.
 *
 * @example Describe an error for a person
 * ```ts
 * import { describe } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   describe(new Deno.errors.ConnectionReset("os error 104")),
 *   "connection reset by the peer",
 * );
 * ```
 */
export function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is a server listening there?)";
  }
  if (error instanceof Deno.errors.TimedOut) {
    return `timed out: ${error.message}`;
  }
  if (error instanceof Deno.errors.NotFound) {
    return `not found (${error.message})`;
  }
  if (error instanceof Deno.errors.ConnectionReset) {
    return "connection reset by the peer";
  }
  if (error instanceof Deno.errors.BrokenPipe) {
    return "the peer closed the connection while we were sending";
  }
  if (error instanceof Deno.errors.NotCapable) {
    const kind = error.message.match(/Requires (\w+) access/)?.[1] ?? "net";
    return `${kind} access is not allowed (${error.message})`;
  }
  return error instanceof Error ? error.message : String(error);
}

function describeTlsFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/certificate|UnknownIssuer|NotValidForName|Expired/i.test(message)) {
    return `the TLS handshake failed: ${message} (is the server's CA trusted? see caCerts / --ca)`;
  }
  if (
    error instanceof Deno.errors.InvalidData ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.ConnectionReset
  ) {
    return `the TLS handshake failed: ${message} (does the server speak TLS on that port?)`;
  }
  return `the TLS handshake failed: ${describe(error)}`;
}

if (import.meta.main) {
  // Not awaited: the program module imports this one, which must finish
  // loading first. Exit explicitly: a terminal read still pending at the end
  // must not keep the process alive.
  import("./_client_cli.ts").then(({ main }) => main(Deno.args)).then(
    Deno.exit,
  );
}

/**
 * {@linkcode connect}: opens a TCP (IPv4 or IPv6), TLS or Unix-socket
 * connection under one deadline and one signal, and returns it as a
 * {@linkcode Connection}.
 *
 * @module
 */

import { Connection } from "../connection.ts";
import { DEFAULT_PORT, formatHostPort, MAX_TIMER_DELAY } from "../_defaults.ts";
import { ConnectError } from "./errors.ts";

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
    (connectTimeout > MAX_TIMER_DELAY && connectTimeout !== Infinity)
  ) {
    throw new RangeError(
      `Cannot connect as connectTimeout must be a number of milliseconds from 1 to ${MAX_TIMER_DELAY} or Infinity: current value is ${connectTimeout}`,
    );
  }
  if (path !== undefined && tls) {
    throw new TypeError(
      "Cannot connect as tls is not available with path: use a TCP host and port for TLS",
    );
  }
  const target = path ?? formatHostPort(hostname, port);
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

/**
 * A TCP client with split I/O and half-close: the classic client that sends
 * its input on one side, prints what comes back on the other, and ends its
 * sending side with `shutdown(SHUT_WR)` while it keeps reading.
 *
 * {@linkcode connect} opens a connection (TCP over IPv4 or IPv6, TLS, or a
 * Unix socket) as half-close-safe streams; {@linkcode exchange} is the
 * split-I/O client as one call.
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
 * It is also a program: `deno run -N jsr:@x/sock/client --help`.
 *
 * @module
 */

import { ConnStreams } from "./conn_streams.ts";

/** Options for {@linkcode connect}. */
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
   * Whether to speak TLS.
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
   * Milliseconds to wait for the connection (and the TLS handshake) before
   * giving up with a {@linkcode ConnectError} caused by a `TimedOut` error.
   *
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Aborts the attempt to connect, and later the connection.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * A failure to connect, naming the target; its `cause` is Deno's error,
 * such as `ConnectionRefused`, `TimedOut`, `NotFound` (host not found) or
 * `ConnectionReset`.
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

  /**
   * Creates the error.
   *
   * @param target What could not be reached.
   * @param cause Why.
   */
  constructor(target: string, cause: unknown) {
    super(`Cannot connect to ${target}: ${describe(cause)}`, { cause });
    this.name = "ConnectError";
    this.target = target;
  }
}

/**
 * An open client connection: half-close-safe streams (see
 * {@linkcode ConnStreams}) and the two addresses.
 */
export class ClientConnection extends ConnStreams {
  /**
   * Wraps a connection from `Deno.connect` or the like.
   *
   * @param conn The connection to wrap.
   * @param signal Closes the connection when it aborts.
   */
  constructor(conn: Deno.Conn, signal?: AbortSignal) {
    super(conn, { signal });
  }
}

/** The default port, the server's default too. */
export const DEFAULT_PORT = 9990;

/**
 * Connects to a server, over TCP (IPv4 or IPv6, names resolved), TLS or a
 * Unix socket.
 *
 * @param options Where to connect and how long to try.
 * @returns The connection as half-close-safe streams.
 * @throws {ConnectError} The connection failed; `cause` says why.
 * @throws {RangeError} An option is out of range.
 *
 * @example Send, half-close, read the whole answer
 * ```ts
 * import { connect } from "@x/sock/client";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new ConnStreams(conn);
 *   return readable.pipeTo(writable); // echo
 * });
 * const conn = await connect({ port: listener.addr.port });
 * const writer = conn.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close(); // shutdown(SHUT_WR)
 * assert.equal(await new Response(conn.readable).text(), "ping");
 * await served;
 * ```
 */
export async function connect(
  options: ConnectOptions = {},
): Promise<ClientConnection> {
  const {
    hostname = "127.0.0.1",
    port = DEFAULT_PORT,
    path,
    tls = false,
    caCerts,
    connectTimeout = 10_000,
    signal,
  } = options;
  if (
    path === undefined && (!Number.isInteger(port) || port < 1 || port > 65535)
  ) {
    throw new RangeError(
      `Cannot connect as port must be an integer from 1 to 65535: current value is ${port}`,
    );
  }
  if (!(connectTimeout > 0)) {
    throw new RangeError(
      `Cannot connect as connectTimeout must be > 0 ms: current value is ${connectTimeout}`,
    );
  }
  const target = path ??
    (hostname.includes(":") ? `[${hostname}]:${port}` : `${hostname}:${port}`);
  signal?.throwIfAborted();

  const timeout = AbortSignal.timeout(
    Number.isFinite(connectTimeout) ? connectTimeout : 2 ** 31 - 1,
  );
  const stop = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const attempt: Promise<Deno.Conn> = path !== undefined
    ? Deno.connect({ transport: "unix", path })
    : tls
    ? Deno.connectTls({ hostname, port, caCerts }).then(async (conn) => {
      // The handshake is lazy; do it now so that an untrusted certificate
      // fails here, with the target named, not at the first read.
      try {
        await conn.handshake();
        return conn;
      } catch (error) {
        conn.close();
        throw error;
      }
    })
    : Deno.connect({ hostname, port, signal: stop });

  // Not every kind of connect takes a signal: race it, and close a
  // connection that arrives too late.
  const stopped = Promise.withResolvers<never>();
  const onStop = () => {
    stopped.reject(
      signal?.aborted
        ? signal.reason
        : new Deno.errors.TimedOut(`no answer within ${connectTimeout} ms`),
    );
  };
  stop.addEventListener("abort", onStop, { once: true });
  let conn: Deno.Conn;
  try {
    conn = await Promise.race([attempt, stopped.promise]);
  } catch (error) {
    attempt.then((late) => late.close(), () => {});
    if (signal?.aborted && error === signal.reason) throw error;
    throw new ConnectError(
      target,
      timeout.aborted && !(error instanceof Deno.errors.NotCapable)
        ? new Deno.errors.TimedOut(`no answer within ${connectTimeout} ms`)
        : error,
    );
  } finally {
    stop.removeEventListener("abort", onStop);
  }
  try {
    if (conn.remoteAddr.transport === "tcp") {
      (conn as Deno.TcpConn).setNoDelay(true);
    }
  } catch { /* not a TCP socket */ }
  return new ClientConnection(conn, signal);
}

/**
 * The split-I/O client as one call: sends `input` to the peer, half-closes
 * when it ends, and gives back the peer's bytes until the peer closes. Both
 * directions run at once, so a peer that answers as it reads never waits on
 * us. An error on either side errors the returned stream.
 *
 * @param connection From {@linkcode connect}, or any {@linkcode ConnStreams}.
 * @param input What to send.
 * @returns What the peer sends back.
 *
 * @example Pipe a file through a server
 * ```ts ignore
 * import { connect, exchange } from "@x/sock/client";
 *
 * using file = await Deno.open("input.txt");
 * const conn = await connect({ port: 9990 });
 * await exchange(conn, file.readable).pipeTo(Deno.stdout.writable);
 * ```
 */
export function exchange(
  connection: ConnStreams,
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
 * @param error The error from connecting.
 * @returns A short description.
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
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.NotCapable) {
    return `${error.message}; run with --allow-net (or -N)`;
  }
  return error instanceof Error ? error.message : String(error);
}

if (import.meta.main) {
  // Not awaited: the program module imports this one, which must finish
  // loading first. Exit explicitly: a terminal read still pending after "q"
  // must not keep the process alive.
  import("./_client_cli.ts").then(({ main }) => main(Deno.args)).then(
    Deno.exit,
  );
}

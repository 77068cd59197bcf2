/**
 * A concurrent TCP server: many clients at once on one event loop, each
 * connection its own pipeline, with half-close done right, per-connection
 * isolation, connection limits that queue, staged shutdown, the PROXY
 * protocol, allow/deny lists and server-wide figures.
 *
 * The handler gets each client as a {@linkcode Connection} and returns a
 * per-connection `TransformStream` service, which the server runs over the
 * connection, or handles the connection itself.
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
 * ## What a client sees when a service fails
 *
 * Deno cannot end a TCP connection abortively: `Deno.Conn` has no way to
 * set `SO_LINGER` to zero, so a reset (RST) cannot be asked for (only
 * `node:net` sockets have `resetAndDestroy()`). When a handler or its
 * service throws, the server closes the connection at once and drops the
 * output not yet sent, and the error goes to
 * {@linkcode ServeOptions.onError}; the client reads end-of-file after
 * whatever part of the answer had left — exactly what it reads after a
 * complete answer — or a reset only when it had sent bytes the server never
 * read. A protocol whose clients must tell a failed answer from a complete
 * one has to say so in its own bytes: a length prefix, a terminator line or
 * a status trailer (see `@x/sock/framing`).
 *
 * ## Several processes on one port
 *
 * On Linux, `reusePort: true` lets N processes listen on the same address
 * and port; the kernel spreads new connections among them. It needs
 * `--unstable-net`. Start one process per core:
 *
 * ```sh
 * for i in 1 2 3 4; do
 *   deno run -N --unstable-net my_server.ts &   # serve({ port: 9990, reusePort: true }, ...)
 * done
 * wait
 * ```
 *
 * Each process has its own limits and {@linkcode Server.stats}; stop them
 * all with `kill -TERM` for a staged shutdown of each.
 *
 * @module
 */

import { Connection } from "./connection.ts";
import { isNetworkError } from "./_errors.ts";
import { AddressList } from "./_address_list.ts";
import { type ProxyHeader, readProxyHeader } from "./_proxy.ts";

/**
 * Where a connection comes from and goes to, given to the hooks.
 *
 * @example The client's address, as the server sees it
 * ```ts
 * import { type ConnectionInfo, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const connected = Promise.withResolvers<ConnectionInfo>();
 * await using server = serve(
 *   { port: 0, onConnect: (info) => connected.resolve(info) },
 *   () => new EchoStream(),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const info = await connected.promise;
 * assert.equal(info.id, 1);
 * assert.deepEqual(info.remoteAddr, conn.localAddr);
 * assert.deepEqual(info.localAddr, conn.remoteAddr);
 * assert.equal(info.proxyAddr, undefined); // no proxyProtocol
 * ```
 */
export interface ConnectionInfo {
  /** Sequence number of the connection on its server, from 1. */
  readonly id: number;
  /** The server's end of the connection. */
  readonly localAddr: Deno.Addr;
  /**
   * The client's end of the connection: with
   * {@linkcode ServeOptions.proxyProtocol}, the real client that the PROXY
   * header names.
   */
  readonly remoteAddr: Deno.Addr;
  /**
   * With {@linkcode ServeOptions.proxyProtocol}: the address of the proxy
   * (the load balancer) the connection actually came from.
   */
  readonly proxyAddr?: Deno.Addr;
}

/**
 * What a connection did, given to {@linkcode ServeOptions.onClose}.
 *
 * @example The accounting of one clean exchange
 * ```ts
 * import {
 *   type ConnectionInfo,
 *   type ConnectionStats,
 *   serve,
 * } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<ConnectionInfo & ConnectionStats>();
 * await using server = serve(
 *   { port: 0, onClose: (info) => closed.resolve(info) },
 *   () => new UpperCaseStream(),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * await client.write(new TextEncoder().encode("abc"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "ABC");
 * const stats: ConnectionStats = await closed.promise;
 * assert.equal(stats.bytesIn, 3);
 * assert.equal(stats.bytesOut, 3);
 * assert.ok(stats.duration >= 0);
 * assert.equal(stats.error, undefined); // a clean close
 * ```
 */
export interface ConnectionStats {
  /** Bytes received from the client (a PROXY header not included). */
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

/**
 * Server-wide figures, from {@linkcode Server.stats}.
 *
 * @example The figures after one connection
 * ```ts
 * import { serve, type ServerStats } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<void>();
 * await using server = serve(
 *   { port: 0, onClose: () => closed.resolve() },
 *   () => new UpperCaseStream(),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * await client.write(new TextEncoder().encode("four"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "FOUR");
 * await closed.promise;
 * const stats: ServerStats = server.stats; // a snapshot
 * assert.deepEqual(stats, {
 *   open: 0,
 *   accepted: 1,
 *   refused: 0,
 *   closed: 1,
 *   bytesIn: 4,
 *   bytesOut: 4,
 * });
 * ```
 */
export interface ServerStats {
  /**
   * Connections accepted and not yet refused or closed: being served, or
   * still sending their PROXY header. Always
   * `accepted - refused - closed`.
   */
  readonly open: number;
  /** Connections accepted from the listener since the start. */
  readonly accepted: number;
  /**
   * Connections closed before the handler ran: beyond
   * {@linkcode ServeOptions.maxConnections} with the `"refuse"` policy,
   * denied by {@linkcode ServeOptions.allow} / {@linkcode ServeOptions.deny},
   * or without a valid PROXY header.
   */
  readonly refused: number;
  /** Connections served and closed ({@linkcode ServeOptions.onClose} ran). */
  readonly closed: number;
  /** Bytes received from clients, open connections' included. */
  readonly bytesIn: number;
  /** Bytes sent to clients, open connections' included. */
  readonly bytesOut: number;
}

/**
 * What to do with a client beyond {@linkcode ServeOptions.maxConnections}:
 * see {@linkcode ServeOptions.connectionPolicy}.
 *
 * @example Refuse a second client while one is served
 * ```ts
 * import { type ConnectionPolicy, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const policy: ConnectionPolicy = "refuse";
 * const connected = Promise.withResolvers<void>();
 * const refused = Promise.withResolvers<unknown>();
 * await using server = serve({
 *   port: 0,
 *   maxConnections: 1,
 *   connectionPolicy: policy,
 *   onConnect: () => connected.resolve(),
 *   onError: (error) => refused.resolve(error),
 * }, () => new EchoStream());
 * const { port } = server.addr as Deno.NetAddr;
 * using first = await Deno.connect({ hostname: "127.0.0.1", port });
 * await connected.promise; // the first one holds the only slot
 * using second = await Deno.connect({ hostname: "127.0.0.1", port });
 * assert.ok(await refused.promise instanceof RangeError);
 * assert.equal(await second.read(new Uint8Array(1)), null); // closed at once
 * assert.equal(server.stats.refused, 1);
 * ```
 */
export type ConnectionPolicy = "queue" | "refuse";

/**
 * The options {@linkcode serve} and {@linkcode serveConnection} share: how
 * each connection is served.
 *
 * @example Close a connection that stays silent
 * ```ts
 * import {
 *   serveConnection,
 *   type ServeConnectionOptions,
 * } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const options: ServeConnectionOptions = { idleTimeout: 50 };
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) =>
 *   serveConnection(conn, () => new EchoStream(), options)
 * );
 * using client = await Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * // The client sends nothing: the server closes the connection.
 * assert.equal(await client.read(new Uint8Array(1)), null);
 * const summary = await served;
 * assert.ok(summary.error instanceof Deno.errors.TimedOut);
 * ```
 */
export interface ServeConnectionOptions {
  /**
   * Milliseconds a connection may go without a byte moving in either
   * direction before the server closes it; `0` or `Infinity` means never.
   * A client that half-closed and is still receiving its answer is not
   * idle. The check runs every quarter of this period, so a connection is
   * closed between one and one and a quarter periods after it fell silent,
   * never sooner. At most 2147483647 (about 24.8 days).
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Milliseconds that busy connections get to finish once shutdown starts
   * (see {@linkcode Server.shutdown}); the ones still open then are closed,
   * their {@linkcode Connection.signal} aborted with a
   * `Deno.errors.Interrupted`. `Infinity` waits for ever; at most
   * 2147483647 otherwise.
   *
   * @default {5000}
   */
  gracePeriod?: number;
  /**
   * Aborting it starts the shutdown, as {@linkcode Server.shutdown} does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * Expect a PROXY protocol header (version 1 or 2, as HAProxy's
   * `send-proxy` / `send-proxy-v2`, nginx's `proxy_protocol on` or cloud
   * load balancers send) first on every connection, before the handler
   * runs. The handler's `remoteAddr`, the hooks and `onClose` then show the
   * real client. A connection without a valid header within
   * {@linkcode ServeConnectionOptions.proxyHeaderTimeout} is closed and
   * reported to `onError` (a `SyntaxError`, or a `Deno.errors.TimedOut`).
   * A LOCAL (v2) or UNKNOWN (v1) header, such as a balancer's health check,
   * keeps the connection's own addresses. Bytes after the header reach the
   * handler. Not available with TLS (`cert`), as Deno's TLS listener reads
   * the TLS handshake first: end TLS at the balancer.
   *
   * @default {false}
   */
  proxyProtocol?: boolean;
  /**
   * With {@linkcode ServeConnectionOptions.proxyProtocol}: the peers
   * allowed to send a PROXY header, as IP addresses and CIDR ranges (IPv4
   * or IPv6). A connection from any other peer is closed and reported (a
   * `Deno.errors.PermissionDenied`), since it could claim any client
   * address. `undefined` trusts every peer.
   *
   * @default {undefined}
   */
  trustedProxies?: readonly string[];
  /**
   * With {@linkcode ServeConnectionOptions.proxyProtocol}: milliseconds a
   * connection gets to send its whole PROXY header. From 1 to 2147483647.
   *
   * @default {5000}
   */
  proxyHeaderTimeout?: number;
  /**
   * Serve only clients whose address is in this list of IP addresses and
   * CIDR ranges, such as `["10.0.0.0/8", "2001:db8::/32", "::1"]`. IPv4
   * entries also match IPv4-mapped IPv6 clients (`::ffff:10.1.2.3`). The
   * check uses the real client address (after the PROXY header). Other
   * clients are closed at once and reported to `onError` (a
   * `Deno.errors.PermissionDenied`, rate-limited). `undefined` allows all.
   *
   * @default {undefined}
   */
  allow?: readonly string[];
  /**
   * Refuse clients whose address is in this list, as for
   * {@linkcode ServeConnectionOptions.allow}; it wins over `allow`.
   *
   * @default {undefined}
   */
  deny?: readonly string[];
  /**
   * Called when a connection has been accepted (and its PROXY header read),
   * before the handler.
   *
   * @default {undefined}
   */
  onConnect?(info: ConnectionInfo): void;
  /**
   * Called when a served connection has been closed, with its accounting.
   * Refused connections never reach it.
   *
   * @default {undefined}
   */
  onClose?(info: ConnectionInfo & ConnectionStats): void;
  /**
   * Called with an error of the program or of its setting rather than of
   * the network: the handler or its service threw, a hook threw, the
   * listener failed to accept, the open-file limit is below
   * `maxConnections` (once, at start-up), or a client was refused (`info`
   * is given for errors of a connection). Refusals and accept errors are
   * rate-limited: at most 5 reports per second of each kind, then the last
   * of the others, saying how many were not reported one by one. Network errors such as
   * a client's reset, and idle or shutdown closes, are reported only as
   * {@linkcode ConnectionStats.error}. Errors thrown by `onError` itself are
   * ignored.
   *
   * @default {(error) => console.error(error)}
   */
  onError?(error: unknown, info?: ConnectionInfo): void;
}

/**
 * Options for {@linkcode serve}.
 *
 * @example Listen on a free port and learn which
 * ```ts
 * import { serve, type ServeOptions } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const listening = Promise.withResolvers<Deno.Addr>();
 * const options: ServeOptions = {
 *   hostname: "127.0.0.1",
 *   port: 0, // any free port
 *   maxConnections: 100,
 *   onListen: (addr) => listening.resolve(addr),
 * };
 * await using server = serve(options, () => new EchoStream());
 * const addr = await listening.promise;
 * assert.deepEqual(addr, server.addr);
 * assert.notEqual((addr as Deno.NetAddr).port, 0);
 * ```
 */
export interface ServeOptions extends ServeConnectionOptions {
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
   * Set `SO_REUSEPORT` on the listener, so that several processes can
   * listen on the same address and port and the kernel spreads clients
   * among them (Linux; ignored elsewhere). Deno keeps it behind the
   * `--unstable-net` flag: without it, `serve()` throws a `TypeError` that
   * says so. See the module documentation for a recipe.
   *
   * @default {false}
   */
  reusePort?: boolean;
  /**
   * How many connections may be open at once, PROXY headers being read
   * included. What happens beyond it is
   * {@linkcode ServeOptions.connectionPolicy}. A connection stops counting
   * as soon as it is closed, even before its handler returns. `Infinity`
   * means no limit.
   *
   * Each connection takes a file descriptor. At start-up, when the
   * process's open-file limit leaves fewer free descriptors than this,
   * `onError` gets a `RangeError` once, saying what to do (Linux, and only
   * under `--allow-all`, as Deno lets nothing less read `/proc/self`).
   * When the limit is reached anyway, accepting pauses and `onError` gets
   * an error that says so (rate-limited), and clients wait in the listen
   * backlog until descriptors free up.
   *
   * @default {1024}
   */
  maxConnections?: number;
  /**
   * At {@linkcode ServeOptions.maxConnections}:
   *
   * - `"queue"`: stop accepting until a connection closes. Newcomers wait
   *   in the kernel's listen backlog (their connect succeeds; they are
   *   served when a slot frees), as Go's `netutil.LimitListener` does. When
   *   the backlog is full too, the kernel drops their handshakes and they
   *   retry or time out.
   * - `"refuse"`: accept and close at once (the client reads end-of-file,
   *   or a reset if it had sent data), and report a `RangeError` to
   *   `onError` (rate-limited); the connections already open are not
   *   disturbed.
   *
   * @default {"queue"}
   */
  connectionPolicy?: ConnectionPolicy;
  /**
   * Called once the server listens, with its address.
   *
   * @default {undefined}
   */
  onListen?(addr: Deno.Addr): void;
}

/**
 * What the server tells a {@linkcode Handler} beyond its connection.
 *
 * @example Say goodbye when the server shuts down
 * ```ts
 * import { type HandlerContext, serve } from "@x/sock/server";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * const encoder = new TextEncoder();
 * await using server = serve(
 *   { port: 0 },
 *   async (connection, { shutdown }: HandlerContext) => {
 *     await connection.write(encoder.encode("hello\n"));
 *     await new Promise((resolve) =>
 *       shutdown.addEventListener("abort", resolve, { once: true })
 *     );
 *     assert.ok(shutdown.reason instanceof Deno.errors.Interrupted);
 *     await connection.write(encoder.encode("bye\n")); // then our FIN
 *   },
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * const lines = client.reader();
 * assert.equal(new TextDecoder().decode((await lines.readUntil("\n"))!), "hello");
 * const stopping = server.shutdown();
 * assert.equal(new TextDecoder().decode((await lines.readUntil("\n"))!), "bye");
 * assert.equal(await lines.readUntil("\n"), null);
 * await stopping;
 * ```
 */
export interface HandlerContext {
  /**
   * Aborts, with a `Deno.errors.Interrupted`, when the server starts to
   * shut down. A handler of its own should then finish the message in hand
   * and return (or close the connection if it is waiting for a request):
   * it has {@linkcode ServeOptions.gracePeriod} before the server closes the
   * connection. Services need not look at it: the server closes a service's
   * connection as soon as it is idle.
   */
  readonly shutdown: AbortSignal;
}

/**
 * Serves one connection. Either return a fresh `TransformStream` service,
 * which the server runs over the connection with
 * {@linkcode Connection.prototype.serve} (its output after the client's
 * FIN, `flush()` included, is sent in full before our FIN), or handle the
 * connection yourself:
 *
 * - return a promise: when it fulfils, the server sends our FIN if you have
 *   not (after what you wrote), discards unread input and closes the
 *   connection; when it rejects, the connection is closed at once and the
 *   error goes to {@linkcode ServeOptions.onError};
 * - return nothing after starting work on the connection (its `readable`,
 *   `writable`, `reader()`, `write()` or `closeWrite()`): the connection
 *   lives until it is closed (see {@linkcode Connection.closed}); if you
 *   touched none of those, it is closed at once.
 *
 * A `SyncTransformStream` (see `@x/sock/sync-transform`) runs inside the
 * connection's read loop with no stream hop, as the built-in services do.
 *
 * On shutdown (see {@linkcode Server.shutdown}), a connection is idle, and
 * closed at once, when:
 *
 * - the handler returned a service: the client has not half-closed, nothing
 *   waits to be sent (see {@linkcode Connection.bufferedAmount}) and no
 *   byte has moved either way for 100 ms (the server looks every 50 ms, so
 *   a connection that falls quiet during the grace period is closed then);
 * - the handler works on its own: never — the server cannot see its
 *   messages. It learns of the shutdown from
 *   {@linkcode HandlerContext.shutdown}, and has the grace period to end at
 *   a message boundary.
 *
 * @example A service, and a handler of its own
 * ```ts
 * import { type Handler, serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * const upper: Handler = () => new UpperCaseStream();
 * // Greets and ends: when the promise fulfils, the server sends our FIN.
 * const greet: Handler = async (connection) => {
 *   await connection.write(new TextEncoder().encode("hi\n"));
 * };
 * for (const [handler, send, answer] of [
 *   [upper, "abc", "ABC"],
 *   [greet, "", "hi\n"],
 * ] as const) {
 *   await using server = serve({ port: 0 }, handler);
 *   const { port } = server.addr as Deno.NetAddr;
 *   await using client = new Connection(
 *     await Deno.connect({ hostname: "127.0.0.1", port }),
 *   );
 *   if (send) await client.write(new TextEncoder().encode(send));
 *   await client.closeWrite();
 *   assert.equal(await new Response(client.readable).text(), answer);
 * }
 * ```
 */
export type Handler = (
  connection: Connection,
  context: HandlerContext,
) => TransformStream<Uint8Array, Uint8Array> | void | Promise<void>;

/**
 * A running server, returned by {@linkcode serve}.
 *
 * @example Start, look, stop
 * ```ts
 * import { type Server, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const server: Server = serve({ port: 0 }, () => new EchoStream());
 * assert.equal((server.addr as Deno.NetAddr).hostname, "127.0.0.1");
 * assert.equal(server.stats.open, 0);
 * await server.shutdown(); // or `await using server = serve(...)`
 * await server.finished; // already settled: the server has stopped
 * ```
 */
export interface Server extends AsyncDisposable {
  /** The address the server listens on, with the actual port. */
  readonly addr: Deno.Addr;
  /**
   * Settles (always fulfils) once the server has stopped: the listener is
   * closed and every connection is closed.
   */
  readonly finished: Promise<void>;
  /** Figures so far: a fresh snapshot at each read. */
  readonly stats: ServerStats;
  /**
   * Shuts down in stages:
   *
   * 1. stop accepting (the listener is closed) and abort every handler's
   *    {@linkcode HandlerContext.shutdown};
   * 2. close at once the connections that are idle (see
   *    {@linkcode Handler}), and the ones still sending a PROXY header;
   * 3. let the busy ones finish within {@linkcode ServeOptions.gracePeriod},
   *    closing each as soon as it is idle;
   * 4. close the rest (their `signal` aborts with a
   *    `Deno.errors.Interrupted`).
   *
   * Calling it again returns the same promise.
   *
   * @returns {@linkcode Server.finished}.
   */
  shutdown(): Promise<void>;
  /** Same as {@linkcode Server.shutdown}. */
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * The default port of {@linkcode serve} and of the program.
 *
 * @example
 * ```ts
 * import { DEFAULT_PORT } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_PORT, 9990);
 * ```
 */
export const DEFAULT_PORT = 9990;
/**
 * The default address of {@linkcode serve} and of the program: loopback
 * only, so a server is not reachable from other machines unless asked.
 *
 * @example A server without a hostname listens on it
 * ```ts
 * import { DEFAULT_HOSTNAME, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_HOSTNAME, "127.0.0.1");
 * await using server = serve({ port: 0 }, () => new EchoStream());
 * assert.equal((server.addr as Deno.NetAddr).hostname, DEFAULT_HOSTNAME);
 * ```
 */
export const DEFAULT_HOSTNAME = "127.0.0.1";
/**
 * The default of {@linkcode ServeOptions.maxConnections}.
 *
 * @example
 * ```ts
 * import { DEFAULT_MAX_CONNECTIONS } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_MAX_CONNECTIONS, 1024);
 * ```
 */
export const DEFAULT_MAX_CONNECTIONS = 1024;
/**
 * The default of {@linkcode ServeOptions.gracePeriod}, in milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_GRACE_PERIOD } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_GRACE_PERIOD, 5000); // 5 seconds
 * ```
 */
export const DEFAULT_GRACE_PERIOD = 5000;
/**
 * The default of {@linkcode ServeConnectionOptions.proxyHeaderTimeout}, in
 * milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_PROXY_HEADER_TIMEOUT } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_PROXY_HEADER_TIMEOUT, 5000); // 5 seconds
 * ```
 */
export const DEFAULT_PROXY_HEADER_TIMEOUT = 5000;
/**
 * The longest delay a timer option takes, in milliseconds (2^31 - 1, about
 * 24.8 days): longer ones would fire at once in JavaScript timers.
 *
 * @example A longer timer option is refused
 * ```ts
 * import { MAX_TIMER_DELAY, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_TIMER_DELAY, 2 ** 31 - 1);
 * assert.throws(
 *   () => serve({ port: 0, idleTimeout: MAX_TIMER_DELAY + 1 }, () => new EchoStream()),
 *   RangeError,
 * );
 * ```
 */
export const MAX_TIMER_DELAY = 2147483647;

/**
 * Listens and serves every client concurrently with `handler`, each
 * connection isolated from the others: a reset, a timeout or an error on one
 * never disturbs another or the listener.
 *
 * Bad options throw at once (a `TypeError` or `RangeError` that names the
 * option), and so do listening errors such as `Deno.errors.AddrInUse`,
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
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<number>();
 * await using server = serve({
 *   port: 0,
 *   onClose: (info) => closed.resolve(info.bytesOut),
 * }, () => new UpperCaseStream());
 *
 * const { port } = server.addr as Deno.NetAddr;
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * await client.write(new TextEncoder().encode("shout"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "SHOUT");
 * assert.equal(await closed.promise, 5);
 * assert.equal(server.stats.accepted, 1);
 * ```
 *
 * @example A handler of its own that stops at a message boundary on shutdown
 * ```ts
 * import { serve } from "@x/sock/server";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * // Answers each line with its length, until the client or the server ends.
 * const server = serve({ port: 0 }, async (connection, { shutdown }) => {
 *   const reader = connection.reader();
 *   while (!shutdown.aborted) {
 *     const line = await reader.readUntil("\n");
 *     if (line === null) break;
 *     await connection.write(new TextEncoder().encode(`${line.length}\n`));
 *   }
 * });
 * const { port } = server.addr as Deno.NetAddr;
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port }),
 * );
 * const lines = client.reader();
 * await client.write(new TextEncoder().encode("hello\n"));
 * assert.equal(new TextDecoder().decode((await lines.readUntil("\n"))!), "5");
 * const stopping = server.shutdown();
 * await client.write(new TextEncoder().encode("last\n")); // answered, then FIN
 * assert.equal(new TextDecoder().decode((await lines.readUntil("\n"))!), "4");
 * assert.equal(await lines.readUntil("\n"), null);
 * await stopping;
 * ```
 *
 * @example Behind a load balancer that sends the PROXY protocol
 * ```ts ignore
 * import { serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 *
 * serve({
 *   hostname: "10.0.0.5",
 *   port: 7000,
 *   proxyProtocol: true,
 *   trustedProxies: ["10.0.0.0/24"], // the balancers
 *   deny: ["192.0.2.0/24"],          // checked on the real client
 *   onConnect: (info) => console.log(info.remoteAddr), // the real client
 * }, () => new EchoStream());
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

/**
 * Serves one already-open connection with `handler` exactly as
 * {@linkcode serve} serves each of its clients: PROXY header, allow/deny,
 * hooks, idle timeout, staged shutdown through `signal`, the handler's
 * errors to `onError`. Useful for connections that come from elsewhere: a
 * listener of your own, or `connPair()` from `@x/sock/testing`.
 *
 * @param conn The connection; from here on only the server touches it.
 * @param handler Serves the connection.
 * @param options How to serve it, and `id` for the hooks.
 * @returns Resolves (never rejects) once the connection is closed, with
 * what {@linkcode ServeConnectionOptions.onClose} gets (for a refused
 * connection: its info, no bytes, and the refusal as `error`).
 *
 * @example Serve a connection accepted by your own listener
 * ```ts
 * import { serveConnection } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) =>
 *   serveConnection(conn, () => new UpperCaseStream(), { id: 7 })
 * );
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await client.write(new TextEncoder().encode("one"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "ONE");
 * const summary = await served;
 * assert.equal(summary.id, 7);
 * assert.equal(summary.bytesOut, 3);
 * assert.equal(summary.error, undefined);
 * ```
 */
export function serveConnection(
  conn: Deno.Conn,
  handler: Handler,
  options: ServeConnectionOptions & { id?: number } = {},
): Promise<ConnectionInfo & ConnectionStats> {
  checkHandler(handler);
  if (typeof conn?.read !== "function" || typeof conn?.close !== "function") {
    throw new TypeError(
      `Cannot serve connection as conn must be a Deno.Conn: current type is ${typeof conn}`,
    );
  }
  const settings = settle(options);
  const supervisor = new Supervisor(settings, handler);
  const id = options.id ?? supervisor.nextId++;
  checkNumber("id", id, 0, Number.MAX_SAFE_INTEGER, true, false);
  const result = supervisor.run(conn, id);
  const signal = options.signal;
  const onAbort = () => supervisor.drain();
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener("abort", onAbort, { once: true });
  }
  return result.finally(() => {
    signal?.removeEventListener("abort", onAbort);
    supervisor.stop();
  });
}

// ---------------------------------------------------------------------------
// Options

/**
 * The reason the server gives `Connection.close()` when a handler of its
 * own is done: the end of a connection, not a failure, so `onClose` gets
 * no error for it.
 */
const HANDLER_DONE = new Deno.errors.Interrupted(
  "Connection closed as its handler returned",
);

/** How long a service's connection must be quiet to count as idle. */
const QUIET = 100;
/** How often the server looks for idle connections while shutting down. */
const SWEEP = 50;
/** The window of rate-limited reports, in milliseconds. */
const REPORT_WINDOW = 1000;
/** How many reports of a kind a window shows one by one. */
const REPORT_BURST = 5;

/** Options with defaults applied and lists parsed. */
interface Settings {
  idleTimeout: number;
  gracePeriod: number;
  proxyProtocol: boolean;
  trustedProxies?: AddressList;
  proxyHeaderTimeout: number;
  allow?: AddressList;
  deny?: AddressList;
  hooks: ServeConnectionOptions & { onListen?(addr: Deno.Addr): void };
}

function describe(value: unknown): string {
  return typeof value === "string" ? `'${value}'` : String(value);
}

function checkNumber(
  name: string,
  value: unknown,
  min: number,
  max: number,
  integer: boolean,
  infinity: boolean,
  unit = "",
): number {
  if (typeof value !== "number") {
    throw new TypeError(
      `Cannot serve as ${name} must be a number: current type is ${typeof value}`,
    );
  }
  const ok = value === Infinity
    ? infinity
    : value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!ok) {
    throw new RangeError(
      `Cannot serve as ${name} must be ${
        integer ? "an integer" : "a number"
      }${unit} from ${min} to ${max}${
        infinity ? ", or Infinity" : ""
      }: current value is ${value}`,
    );
  }
  return value;
}

function checkTimer(
  name: string,
  value: unknown,
  min: number,
  infinity: boolean,
): number {
  return checkNumber(
    name,
    value,
    min,
    MAX_TIMER_DELAY,
    false,
    infinity,
    " of milliseconds",
  );
}

function checkBoolean(name: string, value: unknown): boolean {
  if (value !== undefined && typeof value !== "boolean") {
    throw new TypeError(
      `Cannot serve as ${name} must be a boolean: current type is ${typeof value}`,
    );
  }
  return value === true;
}

function checkHandler(handler: unknown): void {
  if (typeof handler !== "function") {
    throw new TypeError(
      `Cannot serve as the handler must be a function: current type is ${typeof handler}`,
    );
  }
}

function settle(options: ServeOptions): Settings {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot serve as options must be an object: current type is ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  for (
    const name of [
      "onListen",
      "onConnect",
      "onClose",
      "onError",
    ] as const
  ) {
    const hook = options[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `Cannot serve as ${name} must be a function: current type is ${typeof hook}`,
      );
    }
  }
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new TypeError(
      `Cannot serve as signal must be an AbortSignal: current type is ${typeof options
        .signal}`,
    );
  }
  const idleTimeout = checkTimer(
    "idleTimeout",
    options.idleTimeout ?? 0,
    0,
    true,
  );
  const gracePeriod = checkTimer(
    "gracePeriod",
    options.gracePeriod ?? DEFAULT_GRACE_PERIOD,
    0,
    true,
  );
  const proxyHeaderTimeout = checkTimer(
    "proxyHeaderTimeout",
    options.proxyHeaderTimeout ?? DEFAULT_PROXY_HEADER_TIMEOUT,
    1,
    false,
  );
  const proxyProtocol = checkBoolean("proxyProtocol", options.proxyProtocol);
  if (options.trustedProxies !== undefined && !proxyProtocol) {
    throw new TypeError(
      "Cannot serve as trustedProxies needs proxyProtocol: current proxyProtocol is false",
    );
  }
  const list = (name: "trustedProxies" | "allow" | "deny") =>
    options[name] === undefined
      ? undefined
      : new AddressList(options[name]!, name);
  return {
    idleTimeout: idleTimeout === Infinity ? 0 : idleTimeout,
    gracePeriod,
    proxyProtocol,
    proxyHeaderTimeout,
    trustedProxies: list("trustedProxies"),
    allow: list("allow"),
    deny: list("deny"),
    hooks: options,
  };
}

// ---------------------------------------------------------------------------
// Connections

/** The IP address of `addr`, if it has one. */
function hostOf(addr: Deno.Addr): string | undefined {
  return "hostname" in addr ? addr.hostname : undefined;
}

function showAddr(addr: Deno.Addr): string {
  if (!("hostname" in addr)) {
    return "path" in addr && addr.path ? `unix:${addr.path}` : "a unix client";
  }
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

/** How the handler uses its connection, for the shutdown's idea of idle. */
type Kind = "pending" | "service" | "own";

/**
 * The connection the handler gets: a `Connection` that knows the real
 * client behind a PROXY header and notices whether the handler used it.
 */
class ServedConnection extends Connection {
  readonly start: number = performance.now();
  kind: Kind = "pending";
  touched = false;
  /** Activity seen by the last check, and since when it was the same. */
  #lastActivity = 0;
  #quietSince: number = this.start;
  #client?: Deno.Addr;
  #headerSize = 0;
  // One per connection, so that a handler's listeners go with it; made
  // when the handler first looks, since most never do.
  #shutdown?: AbortController;
  #shuttingDown = false;

  /** What the handler gets as `HandlerContext.shutdown`. */
  get shutdownSignal(): AbortSignal {
    if (this.#shutdown === undefined) {
      this.#shutdown = new AbortController();
      if (this.#shuttingDown) this.#abortShutdown();
    }
    return this.#shutdown.signal;
  }

  /** Tells the handler that the server is shutting down. */
  tellShutdown(): void {
    this.#shuttingDown = true;
    if (this.#shutdown) this.#abortShutdown();
  }

  #abortShutdown(): void {
    this.#shutdown!.abort(
      new Deno.errors.Interrupted("The server is shutting down"),
    );
  }

  override get remoteAddr(): Deno.Addr {
    return this.#client ?? super.remoteAddr;
  }

  /** Bytes received from the client, the PROXY header not counted. */
  override get bytesRead(): number {
    return super.bytesRead - this.#headerSize;
  }

  override get readable(): ReadableStream<Uint8Array> {
    this.touched = true;
    return super.readable;
  }

  override get writable(): WritableStream<Uint8Array> {
    this.touched = true;
    return super.writable;
  }

  override write(chunk: Uint8Array): Promise<void> {
    this.touched = true;
    return super.write(chunk);
  }

  override closeWrite(): Promise<void> {
    this.touched = true;
    return super.closeWrite();
  }

  override reader(): ReturnType<Connection["reader"]> {
    this.touched = true;
    return super.reader();
  }

  /**
   * Milliseconds since a byte last moved either way, as far as the checks
   * (this call, every so often) can tell.
   */
  quietFor(now: number): number {
    const activity = this.bytesRead + this.bytesWritten;
    if (activity !== this.#lastActivity) {
      this.#lastActivity = activity;
      this.#quietSince = now;
    }
    return now - this.#quietSince;
  }

  /** The address of the proxy, when a PROXY header named the client. */
  get proxyAddr(): Deno.Addr | undefined {
    return this.#client ? super.remoteAddr : undefined;
  }

  /** Reads the PROXY header; the bytes after it stay for the handler. */
  async readHeader(): Promise<void> {
    const reader = super.reader();
    let parsed: { header: ProxyHeader; size: number };
    try {
      parsed = await readProxyHeader(reader);
    } finally {
      try {
        reader.releaseLock();
      } catch { /* the connection failed under it */ }
    }
    this.#headerSize = parsed.size;
    const { header } = parsed;
    if (header.command === "proxy" && header.source) {
      this.#client = header.source;
    }
  }

  info(): ConnectionInfo {
    const proxyAddr = this.proxyAddr;
    return {
      id: this.id,
      localAddr: this.localAddr,
      remoteAddr: this.remoteAddr,
      ...(proxyAddr ? { proxyAddr } : {}),
    };
  }
}

/** A report that is held back while others of its kind are too frequent. */
interface Limiter {
  /** When the current window started, and how many it reported. */
  start: number;
  reported: number;
  skipped: number;
  timer?: ReturnType<typeof setTimeout>;
  make?: (suffix: string) => unknown;
}

/**
 * Serves connections with one handler and one set of options: hooks,
 * idle checks, staged shutdown and figures. `serve()` has one for all its
 * connections; `serveConnection()` one for its single connection.
 */
class Supervisor {
  readonly connections: Set<ServedConnection> = new Set();
  nextId = 1;
  accepted = 0;
  refused = 0;
  closed = 0;
  /** Connections whose descriptor is open (the limit counts these). */
  held = 0;
  draining = false;
  onRelease?: () => void;

  #settings: Settings;
  #handler: Handler;
  #bytesIn = 0;
  #bytesOut = 0;
  #idleTimer?: ReturnType<typeof setInterval>;
  #sweepTimer?: ReturnType<typeof setInterval>;
  #graceTimer?: ReturnType<typeof setTimeout>;
  #drained?: PromiseWithResolvers<void>;
  #limiters = new Map<string, Limiter>();

  constructor(settings: Settings, handler: Handler) {
    this.#settings = settings;
    this.#handler = handler;
  }

  get stats(): ServerStats {
    let bytesIn = this.#bytesIn;
    let bytesOut = this.#bytesOut;
    for (const connection of this.connections) {
      bytesIn += connection.bytesRead;
      bytesOut += connection.bytesWritten;
    }
    return {
      open: this.accepted - this.refused - this.closed,
      accepted: this.accepted,
      refused: this.refused,
      closed: this.closed,
      bytesIn,
      bytesOut,
    };
  }

  report(error: unknown, info?: ConnectionInfo): void {
    try {
      const onError = this.#settings.hooks.onError;
      if (onError) onError.call(this.#settings.hooks, error, info);
      else console.error(error);
    } catch { /* see ServeOptions.onError */ }
  }

  /**
   * Reports at most {@linkcode REPORT_BURST} errors of a kind per window;
   * at the end of a window in which some were held back, the last of them,
   * saying how many.
   */
  reportLimited(
    kind: string,
    make: (suffix: string) => unknown,
    info?: ConnectionInfo,
  ): void {
    const now = performance.now();
    let limiter = this.#limiters.get(kind);
    if (!limiter) {
      limiter = { start: now, reported: 0, skipped: 0 };
      this.#limiters.set(kind, limiter);
    }
    if (limiter.timer === undefined && now - limiter.start >= REPORT_WINDOW) {
      limiter.start = now;
      limiter.reported = 0;
    }
    if (limiter.reported < REPORT_BURST) {
      limiter.reported++;
      this.report(make(""), info);
      return;
    }
    limiter.skipped++;
    limiter.make = make;
    limiter.timer ??= setTimeout(
      () => this.#flushLimiter(limiter!),
      Math.max(1, REPORT_WINDOW - (now - limiter.start)),
    );
  }

  #flushLimiter(limiter: Limiter): void {
    clearTimeout(limiter.timer);
    limiter.timer = undefined;
    if (limiter.skipped === 0) return;
    const skipped = limiter.skipped;
    limiter.skipped = 0;
    limiter.start = performance.now();
    limiter.reported = 1;
    this.report(
      limiter.make!(
        ` (the last of ${skipped} like it in ${REPORT_WINDOW} ms not reported one by one)`,
      ),
    );
  }

  #hook<T>(
    name: "onConnect" | "onClose",
    arg: T,
    info: ConnectionInfo,
  ): boolean {
    const hook = this.#settings.hooks[name] as ((arg: T) => void) | undefined;
    if (!hook) return true;
    try {
      hook.call(this.#settings.hooks, arg);
      return true;
    } catch (error) {
      this.report(error, info);
      return false;
    }
  }

  /** Closes a connection before its handler ran, and reports it. */
  refuse(
    kind: string,
    info: ConnectionInfo,
    make: (suffix: string) => unknown,
  ): void {
    this.refused++;
    this.reportLimited(kind, make, info);
  }

  /**
   * Serves one accepted connection to its end; never rejects.
   *
   * @returns What `onClose` gets, or for a refused connection its info and
   * the refusal.
   */
  async run(
    conn: Deno.Conn,
    id: number,
  ): Promise<ConnectionInfo & ConnectionStats> {
    this.accepted++;
    const settings = this.#settings;
    const start = performance.now();
    const peer = conn.remoteAddr;
    const denied = (host: string | undefined) =>
      host !== undefined &&
      (settings.deny?.has(host) ||
        (settings.allow && !settings.allow.has(host)));

    // Cheap refusals first, before anything is allocated for the connection.
    const untrusted = settings.trustedProxies &&
      !settings.trustedProxies.has(hostOf(peer) ?? "");
    if (untrusted || (!settings.proxyProtocol && denied(hostOf(peer)))) {
      const info = { id, localAddr: conn.localAddr, remoteAddr: peer };
      const error = untrusted
        ? (suffix: string) =>
          new Deno.errors.PermissionDenied(
            `Cannot read PROXY header as the peer is not in trustedProxies: current peer is ${
              showAddr(peer)
            }${suffix}`,
          )
        : (suffix: string) =>
          new Deno.errors.PermissionDenied(
            `Cannot serve client as its address is ${
              settings.deny?.has(hostOf(peer)!) ? "in deny" : "not in allow"
            }: current address is ${showAddr(peer)}${suffix}`,
          );
      try {
        conn.close();
      } catch { /* closed already */ }
      this.refuse(untrusted ? "untrusted" : "denied", info, error);
      return {
        ...info,
        bytesIn: 0,
        bytesOut: 0,
        duration: 0,
        error: error(""),
      };
    }

    const connection = new ServedConnection(conn, { id });
    this.held++;
    this.connections.add(connection);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.held--;
      this.onRelease?.();
    };
    // A connection stops counting against the limit as soon as it is
    // closed, whatever its handler still does.
    connection.closed.then(release, release);
    if (settings.idleTimeout > 0) this.#startIdleChecks();
    if (this.draining) {
      connection.tellShutdown();
      this.#startSweeping();
    }

    try {
      if (settings.proxyProtocol) {
        const refusal = await this.#readHeader(connection);
        if (refusal) {
          connection.close();
          this.connections.delete(connection);
          const info = connection.info();
          this.refuse(refusal.kind, info, refusal.make);
          return {
            ...info,
            bytesIn: 0,
            bytesOut: 0,
            duration: performance.now() - start,
            error: refusal.make(""),
          };
        }
        const host = hostOf(connection.remoteAddr);
        if (denied(host)) {
          connection.close();
          this.connections.delete(connection);
          const info = connection.info();
          const make = (suffix: string) =>
            new Deno.errors.PermissionDenied(
              `Cannot serve client as its address is ${
                settings.deny?.has(host!) ? "in deny" : "not in allow"
              }: current address is ${showAddr(connection.remoteAddr)} behind ${
                showAddr(peer)
              }${suffix}`,
            );
          this.refuse("denied", info, make);
          return {
            ...info,
            bytesIn: 0,
            bytesOut: 0,
            duration: performance.now() - start,
            error: make(""),
          };
        }
      }
      return await this.#serve(connection);
    } finally {
      this.connections.delete(connection);
      if (this.connections.size === 0) {
        this.#stopTimers();
        this.#drained?.resolve();
      }
    }
  }

  /** Reads the PROXY header within the timeout; returns a refusal or nothing. */
  async #readHeader(
    connection: ServedConnection,
  ): Promise<{ kind: string; make: (suffix: string) => unknown } | undefined> {
    const timeout = this.#settings.proxyHeaderTimeout;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      connection.close(
        new Deno.errors.TimedOut("PROXY header not received in time"),
      );
    }, timeout);
    try {
      await connection.readHeader();
      return undefined;
    } catch (error) {
      const peer = showAddr(connection.remoteAddr);
      if (timedOut) {
        return {
          kind: "proxy-timeout",
          make: (suffix) =>
            new Deno.errors.TimedOut(
              `Cannot read PROXY header as it did not arrive within proxyHeaderTimeout: current timeout is ${timeout} ms, peer is ${peer}${suffix}`,
            ),
        };
      }
      if (error instanceof SyntaxError) {
        return {
          kind: "proxy-header",
          make: (suffix) =>
            new SyntaxError(`${error.message}; peer is ${peer}${suffix}`),
        };
      }
      if (this.draining) {
        return {
          kind: "proxy-shutdown",
          make: (suffix) =>
            new Deno.errors.Interrupted(
              `Cannot read PROXY header as the server shut down: peer is ${peer}${suffix}`,
            ),
        };
      }
      return {
        kind: "proxy-network",
        make: (suffix) =>
          new SyntaxError(
            `Cannot read PROXY header as the connection failed: ${
              error instanceof Error ? `${error.name}: ${error.message}` : error
            }; peer is ${peer}${suffix}`,
          ),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Runs the hooks and the handler; never rejects. */
  async #serve(
    connection: ServedConnection,
  ): Promise<ConnectionInfo & ConnectionStats> {
    const info = connection.info();
    let fault: unknown = undefined;
    let faulted = false;
    const fail = (error: unknown) => {
      // The first failure of the connection is the one to report: an error
      // that follows the server's own close, or a reset, is its echo.
      if (connection.signal.aborted && connection.signal.reason !== error) {
        return;
      }
      if (!isNetworkError(error)) {
        faulted = true;
        fault = error;
      }
      connection.close(error);
    };

    if (this.#hook("onConnect", info, info)) {
      try {
        await this.#runHandler(connection, fail);
      } catch (error) {
        fail(error);
      }
    } else {
      connection.close(new Error("Connection closed as onConnect threw"));
    }
    // Whatever the handler did, the connection is closed by now or closes
    // itself (a handler that returned nothing but works on the streams).
    const error = await connection.closed.then(
      () => undefined,
      (e) => e === HANDLER_DONE ? undefined : e,
    );
    if (faulted) this.report(fault, info);
    const summary: ConnectionInfo & ConnectionStats = {
      ...info,
      bytesIn: connection.bytesRead,
      bytesOut: connection.bytesWritten,
      duration: performance.now() - connection.start,
      ...(error !== undefined ? { error } : {}),
    };
    this.#bytesIn += summary.bytesIn;
    this.#bytesOut += summary.bytesOut;
    this.closed++;
    this.connections.delete(connection);
    this.#hook("onClose", summary, info);
    return summary;
  }

  async #runHandler(
    connection: ServedConnection,
    fail: (error: unknown) => void,
  ): Promise<void> {
    const context: HandlerContext = {
      get shutdown() {
        return connection.shutdownSignal;
      },
    };
    let result: ReturnType<Handler>;
    try {
      result = this.#handler(connection, context);
    } catch (error) {
      return fail(error);
    }
    if (result instanceof TransformStream) {
      connection.kind = "service";
      try {
        if (connection.touched) {
          // The handler took the streams before returning a service.
          await connection.readable.pipeThrough(result).pipeTo(
            connection.writable,
          );
          await connection.closed;
        } else {
          // Let go of the service while it runs: the engine keeps what it
          // needs, and an idle connection should not hold the rest.
          const serving = connection.serve(result);
          result = undefined;
          await serving;
        }
      } catch (error) {
        fail(error);
      }
      return;
    }
    connection.kind = "own";
    if (result === undefined) {
      // Nothing to wait for unless the handler works on the connection.
      if (!connection.touched) connection.close(HANDLER_DONE);
      return;
    }
    if (typeof (result as Promise<void>)?.then !== "function") {
      return fail(
        new TypeError(
          `Cannot serve connection as the handler must return a TransformStream, a promise or nothing: current value is ${
            Object.prototype.toString.call(result)
          }`,
        ),
      );
    }
    try {
      await result;
    } catch (error) {
      return fail(error);
    }
    if (connection.state === "closed") return;
    // Our FIN after what the handler wrote, then discard unread input.
    if (connection.state !== "write-closed") {
      await connection.closeWrite().catch(() => {});
    }
    connection.close(HANDLER_DONE);
  }

  #startIdleChecks(): void {
    if (this.#idleTimer !== undefined) return;
    const idleTimeout = this.#settings.idleTimeout;
    this.#idleTimer = setInterval(() => {
      const now = performance.now();
      for (const connection of this.connections) {
        const quiet = connection.quietFor(now);
        if (quiet >= idleTimeout) {
          connection.close(
            new Deno.errors.TimedOut(
              `Connection closed as it was idle for ${
                Math.round(quiet)
              } ms: idleTimeout is ${idleTimeout} ms`,
            ),
          );
        }
      }
    }, Math.max(1, Math.floor(idleTimeout / 4)));
  }

  /** Whether a connection may be closed at once on shutdown. */
  #isIdle(connection: ServedConnection, now: number): boolean {
    if (connection.kind === "pending") return true;
    if (connection.kind !== "service" || connection.state !== "open") {
      return false;
    }
    // Output still waiting to be sent is work in flight.
    if (connection.bufferedAmount > 0) return false;
    return connection.quietFor(now) >= QUIET;
  }

  #sweep(): void {
    const now = performance.now();
    for (const connection of this.connections) {
      if (this.#isIdle(connection, now)) {
        connection.close(
          new Deno.errors.Interrupted(
            "Connection closed as the server shut down while it was idle",
          ),
        );
      }
    }
  }

  #startSweeping(): void {
    if (this.#sweepTimer !== undefined || this.connections.size === 0) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP);
  }

  /**
   * Starts the staged shutdown of every connection (stages 2 to 4 of
   * {@linkcode Server.shutdown}). Resolves when none is left.
   */
  drain(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      for (const connection of this.connections) connection.tellShutdown();
      if (this.connections.size > 0) {
        const gracePeriod = this.#settings.gracePeriod;
        const closeAll = () => {
          const error = new Deno.errors.Interrupted(
            `Connection closed as the server shut down: grace period of ${gracePeriod} ms is over`,
          );
          for (const connection of this.connections) connection.close(error);
        };
        if (gracePeriod === 0) closeAll();
        else {
          this.#startSweeping();
          this.#sweep();
          if (gracePeriod !== Infinity) {
            this.#graceTimer = setTimeout(closeAll, gracePeriod);
          }
        }
      }
    }
    if (this.connections.size === 0) return Promise.resolve();
    this.#drained ??= Promise.withResolvers<void>();
    return this.#drained.promise;
  }

  #stopTimers(): void {
    clearInterval(this.#idleTimer);
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#graceTimer);
    this.#idleTimer = this.#sweepTimer = this.#graceTimer = undefined;
  }

  /** Flushes held-back reports and clears every timer. */
  stop(): void {
    this.#stopTimers();
    for (const limiter of this.#limiters.values()) this.#flushLimiter(limiter);
  }
}

// ---------------------------------------------------------------------------
// The listener

/**
 * The soft open-file limit and the descriptors in use, when the process may
 * read them: Deno grants `/proc/self` to `--allow-all` only.
 */
function fileLimit(): { limit: number; used: number } | undefined {
  try {
    const readable = (path: string) =>
      Deno.permissions.querySync({ name: "read", path }).state === "granted";
    if (!readable("/proc/self/limits") || !readable("/proc/self/fd")) {
      return undefined;
    }
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((line) => line.startsWith("Max open files"));
    const limit = Number(line?.split(/\s+/)[3]);
    if (!Number.isInteger(limit)) return undefined;
    let used = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) used++;
    return { limit, used };
  } catch {
    // Not Linux, or no /proc: nothing to say.
    return undefined;
  }
}

class SocketServer implements Server {
  readonly addr: Deno.Addr;
  readonly finished: Promise<void>;

  #listener: Deno.Listener;
  #supervisor: Supervisor;
  #maxConnections: number;
  #policy: ConnectionPolicy;
  #closing = false;
  #wake?: () => void;
  #options: ServeOptions;
  #signal?: AbortSignal;
  #onAbort = () => void this.shutdown();

  constructor(options: ServeOptions, handler: Handler) {
    checkHandler(handler);
    const settings = settle(options);
    this.#options = options;
    const {
      hostname = DEFAULT_HOSTNAME,
      port = DEFAULT_PORT,
      path,
      cert,
      key,
      maxConnections = DEFAULT_MAX_CONNECTIONS,
      connectionPolicy = "queue",
    } = options;
    checkNumber("port", port, 0, 65535, true, false);
    checkNumber(
      "maxConnections",
      maxConnections,
      1,
      MAX_TIMER_DELAY,
      true,
      true,
    );
    if (typeof hostname !== "string") {
      throw new TypeError(
        `Cannot serve as hostname must be a string: current type is ${typeof hostname}`,
      );
    }
    if (connectionPolicy !== "queue" && connectionPolicy !== "refuse") {
      throw new TypeError(
        `Cannot serve as connectionPolicy must be "queue" or "refuse": current value is ${
          describe(connectionPolicy)
        }`,
      );
    }
    const reusePort = checkBoolean("reusePort", options.reusePort);
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
    if (cert !== undefined && settings.proxyProtocol) {
      throw new TypeError(
        "Cannot serve TLS with proxyProtocol as Deno's TLS listener reads the TLS handshake before any PROXY header: end TLS at the proxy, or leave proxyProtocol off",
      );
    }
    if (path !== undefined) {
      const clash = reusePort
        ? "reusePort"
        : settings.trustedProxies
        ? "trustedProxies"
        : !settings.proxyProtocol && (settings.allow || settings.deny)
        ? settings.allow ? "allow" : "deny"
        : undefined;
      if (clash) {
        throw new TypeError(
          `Cannot serve on a Unix socket with ${clash} as its clients have no IP address: current path is '${path}'`,
        );
      }
    }
    if (
      reusePort && typeof (Deno as { listenDatagram?: unknown })
          .listenDatagram !== "function"
    ) {
      // Deno ends the process, rather than throwing, when an unstable
      // option is used without its flag: check first.
      throw new TypeError(
        'Cannot listen with reusePort as Deno needs the --unstable-net flag for it: run with --unstable-net (or "unstable": ["net"] in deno.json)',
      );
    }
    this.#maxConnections = maxConnections;
    this.#policy = connectionPolicy;
    this.#supervisor = new Supervisor(settings, handler);
    this.#supervisor.onRelease = () => {
      if (this.#supervisor.held < this.#maxConnections) this.#wake?.();
    };

    const tcp = { hostname, port, ...(reusePort ? { reusePort } : {}) };
    this.#listener = path !== undefined
      ? Deno.listen({ transport: "unix", path })
      : cert !== undefined
      ? Deno.listenTls({ ...tcp, cert, key: key! })
      : Deno.listen(tcp);
    this.addr = this.#listener.addr;

    if (maxConnections !== Infinity) {
      const files = fileLimit();
      if (files && files.limit - files.used < maxConnections) {
        this.#supervisor.report(
          new RangeError(
            `Cannot serve maxConnections clients at once as the open-file limit is too low: current limit is ${files.limit} files with ${files.used} in use, maxConnections is ${maxConnections}; raise the limit (ulimit -n ${
              maxConnections + files.used + 64
            }) or lower maxConnections`,
          ),
        );
      }
    }

    const accepting = this.#accept();
    this.finished = accepting
      .then(() => this.#supervisor.drain())
      .then(() => {
        this.#supervisor.stop();
        this.#signal?.removeEventListener("abort", this.#onAbort);
      });

    if (options.signal) {
      this.#signal = options.signal;
      if (options.signal.aborted) this.shutdown();
      else options.signal.addEventListener("abort", this.#onAbort);
    }
  }

  get stats(): ServerStats {
    return this.#supervisor.stats;
  }

  shutdown(): Promise<void> {
    if (this.#closing) return this.finished;
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    this.#wake?.();
    this.#supervisor.drain();
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /** Waits for `ms`, or less if the server is woken (a slot, shutdown). */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(done, ms);
      const wake = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = wake;
    }).finally(() => this.#wake = undefined);
  }

  async #accept(): Promise<void> {
    const supervisor = this.#supervisor;
    this.#listened();
    let delay = 0;
    while (!this.#closing) {
      if (
        this.#policy === "queue" &&
        supervisor.held >= this.#maxConnections
      ) {
        // Leave newcomers in the kernel's backlog until a slot frees.
        await this.#sleep(Infinity);
        continue;
      }
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) break;
        if (error instanceof Deno.errors.BadResource) {
          // The listener is gone for good.
          supervisor.report(error);
          this.shutdown();
          break;
        }
        // Such as EMFILE: wait for connections to close, doubling the wait.
        const held = supervisor.held;
        supervisor.reportLimited("accept", (suffix) => {
          if (!(error instanceof Error)) return error;
          const message = /os error 24\b|too many open files/i.test(
              error.message,
            )
            ? `Cannot accept connection as the process has reached its open-file limit: current open connections are ${held}, maxConnections is ${this.#maxConnections}; raise the limit (ulimit -n) or lower maxConnections; clients wait in the listen backlog meanwhile (${error.message})`
            : `Cannot accept connection: ${error.message}`;
          return new (error.constructor as ErrorConstructor)(
            `${message}${suffix}`,
          );
        });
        delay = Math.min(delay ? delay * 2 : 5, 1000);
        await this.#sleep(delay);
        continue;
      }
      delay = 0;
      const id = supervisor.nextId++;
      if (this.#closing) {
        conn.close();
        break;
      }
      if (supervisor.held >= this.#maxConnections) {
        supervisor.accepted++;
        const info = {
          id,
          localAddr: conn.localAddr,
          remoteAddr: conn.remoteAddr,
        };
        conn.close();
        const held = supervisor.held;
        supervisor.refuse("limit", info, (suffix) =>
          new RangeError(
            `Cannot accept connection as maxConnections is reached: current count is ${held}, limit is ${this.#maxConnections}${suffix}`,
          ));
        continue;
      }
      // run() settles every failure itself; this is a last resort.
      supervisor.run(conn, id).catch((error) => supervisor.report(error));
    }
  }

  #listened(): void {
    const onListen = this.#options.onListen;
    if (!onListen) return;
    try {
      onListen.call(this.#options, this.addr);
    } catch (error) {
      this.#supervisor.report(error);
    }
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

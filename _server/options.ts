/**
 * The options of {@linkcode serve} and {@linkcode serveConnection}: how
 * each connection is served, and what only a listening server takes.
 *
 * @module
 */

import type { ConnectionInfo, ConnectionStats } from "./types.ts";

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
   * By default, an error of a peer or of the network (a reset, an
   * oversized frame, a refusal, a timeout) is printed on one line with the
   * client's address, and any other error (a bug) in full, stack included.
   *
   * @default {printed on stderr}
   */
  onError?(error: unknown, info?: ConnectionInfo): void;
}

/**
 * Options for {@linkcode serve}.
 *
 * ## Hardening a server open to the internet
 *
 * Set {@linkcode ServeConnectionOptions.idleTimeout}: it is off by default,
 * and without it a client that connects and sends nothing keeps its slot
 * for ever, so `maxConnections` silent clients stop the server from
 * serving anyone else (with the default `"queue"` policy, newcomers then
 * wait in the kernel's backlog, and the server says so once through
 * `onError`). With TLS, keep
 * {@linkcode ServeOptions.handshakeTimeout} (10 s by default). Lower
 * {@linkcode ServeOptions.maxConnections} to what the process's open-file
 * limit allows, and refuse unwanted networks with
 * {@linkcode ServeConnectionOptions.deny}.
 *
 * ```ts ignore
 * serve({
 *   hostname: "0.0.0.0",
 *   port: 9990,
 *   idleTimeout: 60_000, // a minute without a byte either way
 *   maxConnections: 1000,
 * }, handler);
 * ```
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
   * With `cert` and `key`: milliseconds a client gets, from its accept,
   * to finish the TLS handshake. A client still handshaking then (one that
   * connected and never sent its ClientHello, say) is closed, its socket
   * freed, and reported to `onError` as a `Deno.errors.TimedOut`
   * (rate-limited); it never reaches the hooks or the handler. From 1 to
   * 2147483647, or `Infinity` for no deadline.
   *
   * Deno's TLS listener keeps a socket open for as long as its handshake
   * waits, whoever closes the connection: `idleTimeout` cannot free it. So
   * the deadline puts a relay in front: clients connect to a plain TCP
   * listener and their bytes go over loopback to a private TLS listener
   * (on `127.0.0.1`, which the process must be allowed to listen on), which
   * the deadline can cut. That costs two more file descriptors per
   * connection and a loopback hop per byte; `Infinity` serves TLS straight
   * from Deno's listener, as fast as it goes, with no way to free a silent
   * client's socket.
   *
   * @experimental
   * @default {10000}
   */
  handshakeTimeout?: number;
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
   * Reaching the limit is reported to `onError` once, as a `RangeError`
   * that says how many clients are served and what happens to newcomers
   * (see {@linkcode ServeOptions.connectionPolicy}); it is reported again
   * only once the count has fallen to half the limit, and a minute later
   * at the soonest.
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

/**
 * The types of the server's API besides its options: what the hooks are
 * told, the handler and the running server.
 *
 * @module
 */

import type { Connection } from "../connection.ts";

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
   * without a valid PROXY header, or whose TLS handshake failed or missed
   * {@linkcode ServeOptions.handshakeTimeout}.
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
 * Serves one connection. Either return a fresh service (anything
 * `pipeThrough()` takes: a `TransformStream`, a `CompressionStream`, a
 * `{ readable, writable }` pair),
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
) =>
  | ReadableWritablePair<Uint8Array, Uint8Array<ArrayBuffer>>
  | void
  | Promise<void>;

/**
 * A running server, returned by {@linkcode serve}. `A` is the type of its
 * address: `serve()` gives a `Server<Deno.NetAddr>` for TCP and TLS, a
 * `Server<Deno.UnixAddr>` with `path`, and a `Server` (`Deno.Addr`) when
 * the options' type leaves it open.
 *
 * @example Start, look, stop
 * ```ts
 * import { type Server, serve } from "@x/sock/server";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const server: Server<Deno.NetAddr> = serve({ port: 0 }, () => new EchoStream());
 * assert.equal(server.addr.hostname, "127.0.0.1"); // no cast for TCP
 * assert.ok(server.addr.port > 0);
 * assert.equal(server.stats.open, 0);
 * await server.shutdown(); // or `await using server = serve(...)`
 * await server.finished; // already settled: the server has stopped
 * ```
 */
export interface Server<A extends Deno.Addr = Deno.Addr>
  extends AsyncDisposable {
  /** The address the server listens on, with the actual port. */
  readonly addr: A;
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

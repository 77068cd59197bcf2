/**
 * The two ways in: {@linkcode serve} listens and serves every client;
 * {@linkcode serveConnection} serves one connection opened elsewhere.
 *
 * @module
 */

import { checkNumber } from "../_defaults.ts";
import { SocketServer } from "./listener.ts";
import { checkHandler, settle } from "./settings.ts";
import { Supervisor } from "./supervisor.ts";
import type { ServeConnectionOptions, ServeOptions } from "./options.ts";
import type {
  ConnectionInfo,
  ConnectionStats,
  Handler,
  Server,
} from "./types.ts";

/**
 * Listens and serves every client concurrently with `handler`, each
 * connection isolated from the others: a reset, a timeout or an error on one
 * never disturbs another or the listener.
 *
 * Bad options throw at once (a `TypeError` or `RangeError` that names the
 * option), and so do listening errors, with a message that names the
 * address: `Deno.errors.AddrInUse`, `Deno.errors.AddrNotAvailable`,
 * `Deno.errors.NotFound` for a host name that does not resolve, or
 * `Deno.errors.NotCapable` without `--allow-net`.
 *
 * The server's `addr` is typed by the options: a `Deno.NetAddr` for TCP
 * and TLS, a `Deno.UnixAddr` with `path`, so `server.addr.port` needs no
 * cast.
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
export function serve(
  options: ServeOptions & { path: string },
  handler: Handler,
): Server<Deno.UnixAddr>;
/**
 * Listens on TCP (or TLS with `cert` and `key`) and serves every client, as
 * the Unix-socket form does: the server's `addr` is a `Deno.NetAddr`.
 *
 * @param options Address, limits, hooks.
 * @param handler Serves one connection.
 * @returns The running server.
 */
export function serve(
  options: ServeOptions & { path?: undefined },
  handler: Handler,
): Server<Deno.NetAddr>;
/**
 * Listens and serves every client, when the options' type does not say
 * whether `path` is given: the server's `addr` is a `Deno.Addr`.
 *
 * @param options Address, limits, hooks.
 * @param handler Serves one connection.
 * @returns The running server.
 */
export function serve(options: ServeOptions, handler: Handler): Server;
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
  checkNumber("serve", "id", id, {
    min: 0,
    max: Number.MAX_SAFE_INTEGER,
    integer: true,
  });
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

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

export type {
  ConnectionInfo,
  ConnectionStats,
  Handler,
  HandlerContext,
  Server,
  ServerStats,
} from "./_server/types.ts";
export type {
  ConnectionPolicy,
  ServeConnectionOptions,
  ServeOptions,
} from "./_server/options.ts";
export { DEFAULT_PORT, MAX_TIMER_DELAY } from "./_defaults.ts";
export {
  DEFAULT_GRACE_PERIOD,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_PROXY_HEADER_TIMEOUT,
} from "./_server/defaults.ts";
export { serve, serveConnection } from "./_server/serve.ts";

if (import.meta.main) {
  // Not awaited: the program module imports this one, which must finish
  // loading first.
  import("./_cli/server.ts").then(({ main }) => main(Deno.args)).then(
    (code) => {
      Deno.exitCode = code;
    },
  );
}

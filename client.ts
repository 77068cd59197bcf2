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

export { ClientConnection } from "./_client/client_connection.ts";
export { connect, type ConnectOptions } from "./_client/connect.ts";
export {
  ConnectError,
  describeError,
  /**
   * The 0.2 name of {@linkcode describeError}.
   *
   * @deprecated Use {@linkcode describeError}; this alias goes in 0.4.
   */
  describeError as describe,
} from "./_client/errors.ts";
export { exchange } from "./_client/exchange.ts";
export { DEFAULT_PORT } from "./_defaults.ts";

if (import.meta.main) {
  // Not awaited: the program module imports this one, which must finish
  // loading first. Exit explicitly: a terminal read still pending at the end
  // must not keep the process alive.
  import("./_cli/client.ts").then(({ main }) => main(Deno.args)).then(
    Deno.exit,
  );
}

/**
 * The 0.1 name of the connection {@linkcode connect} returns, kept for
 * compatibility until 0.3.
 *
 * @module
 */

import { Connection, type ConnectionOptions } from "../connection.ts";

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

/**
 * The 0.1 name of {@linkcode Connection}, kept for one release.
 *
 * ```ts
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * assert.equal(ConnStreams, Connection);
 * ```
 *
 * @deprecated Import {@linkcode Connection} from `@x/sock/connection`.
 * @module
 */

import type { ConnectionOptions } from "./connection.ts";

export {
  /**
   * The 0.1 name of {@linkcode Connection}.
   *
   * @deprecated Use {@linkcode Connection}; this alias goes in 0.3.
   */
  Connection as ConnStreams,
} from "./connection.ts";

/**
 * The 0.1 name of {@linkcode ConnectionOptions}.
 *
 * @deprecated Use {@linkcode ConnectionOptions}.
 *
 * @example The same options
 * ```ts
 * import { ConnStreams, type ConnStreamsOptions } from "@x/sock/conn-streams";
 * import { Connection, type ConnectionOptions } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const options: ConnStreamsOptions = { id: 42, maxReadSize: 65536 };
 * const same: ConnectionOptions = options;
 * using conn = new ConnStreams(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   same,
 * );
 * using _accepted = await listener.accept();
 * assert.ok(conn instanceof Connection);
 * assert.equal(conn.id, 42);
 * ```
 */
export type ConnStreamsOptions = ConnectionOptions;

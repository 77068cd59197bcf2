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

// A re-export, not a constant: connection.ts and framing.ts import each
// other, and a live binding is safe in such a cycle.
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
 * import type { ConnStreamsOptions } from "@x/sock/conn-streams";
 *
 * const options: ConnStreamsOptions = { maxReadSize: 65536 };
 * console.log(options.maxReadSize); // 65536
 * ```
 */
export type ConnStreamsOptions = ConnectionOptions;

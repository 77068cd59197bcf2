/**
 * The server's own defaults; `DEFAULT_PORT` and `MAX_TIMER_DELAY`, which
 * the client shares, are in `_defaults.ts`.
 *
 * @module
 */

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
 * The default of {@linkcode ServeOptions.handshakeTimeout}, in
 * milliseconds: how long a TLS client gets to finish its handshake.
 *
 * @example
 * ```ts
 * import { DEFAULT_HANDSHAKE_TIMEOUT } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_HANDSHAKE_TIMEOUT, 10_000); // 10 seconds
 * ```
 */
export const DEFAULT_HANDSHAKE_TIMEOUT = 10_000;

/**
 * The `--udp` mode of both programs, a thin layer over
 * {@linkcode serveDatagrams} and {@linkcode listenDatagram}: the programs
 * parse and check their flags, then call {@linkcode runUdpServer} or
 * {@linkcode runUdpClient}. The server side is in `udp_server.ts`, the
 * client side in `udp_client.ts`.
 *
 * ```ts
 * import { runUdpClient, runUdpServer } from "./udp.ts";
 * import assert from "node:assert/strict";
 *
 * // The server program's `--udp --service upper`, stopped by a signal.
 * const stopServer = new AbortController();
 * const listening = Promise.withResolvers<Deno.NetAddr>();
 * const server = runUdpServer({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   service: "upper",
 *   quiet: true,
 *   signal: stopServer.signal,
 *   onListen: (addr) => listening.resolve(addr),
 *   log: () => {},
 * });
 * const { port } = await listening.promise;
 *
 * // The client program's `--udp`: a line in, the answer out.
 * const stopClient = new AbortController();
 * let printed = "";
 * const code = await runUdpClient({
 *   hostname: "127.0.0.1",
 *   port,
 *   quitAfterEof: Infinity, // until the answer, which aborts
 *   signal: stopClient.signal,
 *   input: ReadableStream.from([new TextEncoder().encode("hello\n")]),
 *   output: new WritableStream({
 *     write(chunk) {
 *       printed += new TextDecoder().decode(chunk);
 *       stopClient.abort();
 *     },
 *   }),
 *   log: () => {},
 * });
 * assert.equal(code, 0);
 * assert.equal(printed, "HELLO\n");
 * stopServer.abort();
 * assert.equal(await server, 0);
 * ```
 *
 * @module
 */

export {
  runUdpServer,
  type UdpServerOptions,
  type UdpService,
} from "./udp_server.ts";
export {
  DEFAULT_QUIT_AFTER_EOF,
  runUdpClient,
  type UdpClientOptions,
} from "./udp_client.ts";

/**
 * UDP for Deno with web streams: a datagram endpoint whose `readable` gives
 * the datagrams received (bytes plus the sender's address) and whose
 * `writable` takes datagrams to send, and {@linkcode serveDatagrams}, which
 * answers every datagram to its sender through a per-datagram service such
 * as `UpperCaseStream`.
 *
 * UDP keeps message boundaries (two sends are two receives) but guarantees
 * neither delivery nor order, and a receiver that falls behind loses
 * datagrams. So does this module, on purpose and visibly: an endpoint keeps
 * at most {@linkcode ListenDatagramOptions.receiveQueue} datagrams for a slow
 * reader and drops (and counts in {@linkcode DatagramEndpoint.dropped}) the
 * rest, instead of buffering without bound.
 *
 * ## The maximum payload
 *
 * The length fields of the IP and UDP headers are 16 bits wide, so a UDP
 * datagram carries at most 65535 bytes minus its headers: 65507 bytes of
 * payload over IPv4 (20 bytes of IPv4 header, 8 of UDP header) and 65527 over
 * IPv6 (whose 16-bit payload length excludes its own 40-byte header, leaving
 * only the 8 of UDP). See {@linkcode MAX_DATAGRAM_SIZE_IPV4} and
 * {@linkcode MAX_DATAGRAM_SIZE_IPV6}. Anything over about 1472 bytes (an
 * Ethernet MTU of 1500, minus the headers) is sent as IP fragments, and the
 * whole datagram is lost if any fragment is: keep datagrams small on real
 * networks. A larger send is refused with a `RangeError`; nothing is ever
 * split or truncated silently.
 *
 * ## Why `node:dgram`
 *
 * `Deno.listenDatagram` still needs `--unstable-net` in Deno 2.9
 * (denoland/deno#11022), while `node:dgram` works with only `--allow-net`
 * (`-N`). This module is built on `node:dgram` and shows none of it: the
 * addresses are `Deno.NetAddr`, the errors are `Deno.errors` classes, and the
 * socket is tracked (and closed) like any Deno resource, so the test
 * sanitizers see a leak. When `Deno.listenDatagram` is stable, the module may
 * move to it without changing its API.
 *
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using server = await listenDatagram({ port: 0 });
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * await client.send(new TextEncoder().encode("ping"));
 *
 * const reader = server.readable.getReader();
 * const { value } = await reader.read();
 * assert.equal(new TextDecoder().decode(value!.data), "ping");
 * assert.deepEqual(value!.remoteAddr, client.addr);
 * reader.releaseLock();
 * ```
 *
 * @module
 */

export {
  DEFAULT_RECEIVE_QUEUE,
  MAX_DATAGRAM_SIZE_IPV4,
  MAX_DATAGRAM_SIZE_IPV6,
} from "./_datagram/types.ts";
export type {
  Datagram,
  DatagramAddress,
  ListenDatagramOptions,
  OutgoingDatagram,
} from "./_datagram/types.ts";
export { DatagramEndpoint } from "./_datagram/endpoint.ts";
export { listenDatagram } from "./_datagram/listen.ts";
export type { DatagramAnswer, DatagramHandler } from "./_datagram/handler.ts";
export type {
  DatagramInfo,
  DatagramServer,
  ServeDatagramsOptions,
} from "./_datagram/serve_types.ts";
export { serveDatagrams } from "./_datagram/serve.ts";

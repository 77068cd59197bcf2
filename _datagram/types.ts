/**
 * The constants and plain types of the datagram API: payload limits, the
 * receive queue's default, addresses, datagrams in and out, and the options
 * of {@linkcode listenDatagram}.
 *
 * @module
 */

/**
 * The largest UDP payload over IPv4: 65535 (the 16-bit IP total length)
 * minus 20 bytes of IPv4 header and 8 of UDP header.
 *
 * @example Check a payload before sending
 * ```ts
 * import { MAX_DATAGRAM_SIZE_IPV4 } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_DATAGRAM_SIZE_IPV4, 65535 - 20 - 8);
 * ```
 */
export const MAX_DATAGRAM_SIZE_IPV4 = 65507;

/**
 * The largest UDP payload over IPv6: 65535 (the 16-bit IPv6 payload length,
 * which does not count the IPv6 header itself) minus 8 bytes of UDP header.
 * (IPv6 jumbograms, RFC 2675, are not supported by common stacks.)
 *
 * @example Check a payload before sending
 * ```ts
 * import { MAX_DATAGRAM_SIZE_IPV6 } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_DATAGRAM_SIZE_IPV6, 65535 - 8);
 * ```
 */
export const MAX_DATAGRAM_SIZE_IPV6 = 65527;

/**
 * The default of {@linkcode ListenDatagramOptions.receiveQueue}.
 *
 * @example A smaller queue for a reader that keeps up
 * ```ts
 * import { DEFAULT_RECEIVE_QUEUE, listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_RECEIVE_QUEUE, 128);
 * await using endpoint = await listenDatagram({ receiveQueue: 16 });
 * assert.equal(endpoint.dropped, 0);
 * ```
 */
export const DEFAULT_RECEIVE_QUEUE = 128;

/**
 * Where a datagram goes: a host name or IP address and a port. A
 * `Deno.NetAddr` will do, such as another endpoint's
 * {@linkcode DatagramEndpoint.addr}.
 *
 * @example Send to a port on the loopback address
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 *
 * await using receiver = await listenDatagram();
 * await using sender = await listenDatagram();
 * // The hostname defaults to the sender's loopback address, 127.0.0.1 here.
 * await sender.send(new Uint8Array([1]), { port: receiver.addr.port });
 * ```
 */
export interface DatagramAddress {
  /**
   * An IP address (`"127.0.0.1"`, `"::1"`) or a host name, resolved for
   * each send (prefer an address where you can).
   *
   * @default {the loopback address of the endpoint's family: "127.0.0.1" or "::1"}
   */
  hostname?: string;
  /** The port, from 1 to 65535. */
  port: number;
}

/**
 * A datagram received: its bytes and who sent it.
 *
 * @example Answer each datagram to its sender
 * ```ts
 * import { type Datagram, listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using server = await listenDatagram();
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * await client.send(new TextEncoder().encode("hi"));
 * for await (const datagram of server.readable) {
 *   const { data, remoteAddr }: Datagram = datagram;
 *   assert.deepEqual(remoteAddr, client.addr);
 *   await server.send(data, remoteAddr);
 *   break;
 * }
 * ```
 */
export interface Datagram {
  /** The payload, exactly as sent: one send is one datagram. */
  data: Uint8Array;
  /** The sender's address and port (transport `"udp"`). */
  remoteAddr: Deno.NetAddr;
}

/**
 * A datagram to send through {@linkcode DatagramEndpoint.writable}.
 *
 * @example Write datagrams to several peers
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using a = await listenDatagram();
 * await using b = await listenDatagram();
 * await using sender = await listenDatagram();
 * await ReadableStream.from([
 *   { data: new Uint8Array([1]), remoteAddr: a.addr },
 *   { data: new Uint8Array([2]), remoteAddr: b.addr },
 * ]).pipeTo(sender.writable);
 * assert.equal(sender.datagramsSent, 2);
 * ```
 */
export interface OutgoingDatagram {
  /** The payload, at most {@linkcode DatagramEndpoint.maxDatagramSize} bytes. */
  data: Uint8Array;
  /**
   * Where to send it.
   *
   * @default {the endpoint's default peer, ListenDatagramOptions.remoteAddr}
   */
  remoteAddr?: DatagramAddress;
}

/**
 * Options for {@linkcode listenDatagram}.
 *
 * @example An IPv6 endpoint with a default peer
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using server = await listenDatagram({ hostname: "::1" });
 * await using client = await listenDatagram({
 *   hostname: "::1",
 *   remoteAddr: { port: server.addr.port }, // ::1 by default for IPv6
 *   receiveQueue: 32,
 * });
 * assert.deepEqual(client.remoteAddr, server.addr);
 * assert.equal(client.maxDatagramSize, 65527);
 * ```
 */
export interface ListenDatagramOptions {
  /**
   * The address to bind to, which also chooses the family: IPv6 for an
   * IPv6 address such as `"::1"`, else IPv4. A host name is resolved to its
   * first address. Use `"0.0.0.0"` or `"::"` to receive from other
   * machines.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * The port to bind to; `0` lets the operating system choose a free one,
   * which {@linkcode DatagramEndpoint.addr} then reports.
   *
   * @default {0}
   */
  port?: number;
  /**
   * The default peer: where {@linkcode DatagramEndpoint.send} and
   * {@linkcode DatagramEndpoint.writable} send when no address is given,
   * like a connected socket. Its host name is resolved once, here. Unlike a
   * connected BSD socket, the endpoint still receives datagrams from any
   * sender: check {@linkcode Datagram.remoteAddr} where that matters.
   *
   * @default {undefined}
   */
  remoteAddr?: DatagramAddress;
  /**
   * Allow sending to broadcast addresses such as `255.255.255.255`
   * (`SO_BROADCAST`). IPv4 only.
   *
   * @default {false}
   */
  broadcast?: boolean;
  /**
   * Let other sockets bind the same address and port (`SO_REUSEADDR`).
   *
   * @default {false}
   */
  reuseAddress?: boolean;
  /**
   * How many received datagrams may wait for the reader of
   * {@linkcode DatagramEndpoint.readable}. Datagrams arriving while it is
   * full are dropped and counted in {@linkcode DatagramEndpoint.dropped}, so
   * memory stays bounded (a waiting datagram holds about its own size; one
   * of 32 KiB or more holds a 64 KiB buffer) whatever the peers send.
   *
   * @default {128}
   */
  receiveQueue?: number;
  /**
   * Aborting it closes the endpoint at once with the signal's reason, as
   * {@linkcode DatagramEndpoint.close} does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

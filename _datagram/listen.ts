/**
 * {@linkcode listenDatagram}: checks the options, resolves the addresses,
 * checks the net permission, binds a node:dgram socket and wraps it in a
 * {@linkcode DatagramEndpoint}.
 *
 * @module
 */

import dgram from "node:dgram";
import { isIP } from "node:net";
import { checkPort, formatHostPort } from "../_defaults.ts";
import { DEFAULT_RECEIVE_QUEUE, type ListenDatagramOptions } from "./types.ts";
import {
  bindError,
  checkFamily,
  checkHostname,
  checkNetPermission,
  loopback,
  resolve,
} from "./address.ts";
import { createEndpoint, type DatagramEndpoint } from "./endpoint.ts";

/**
 * Binds a UDP endpoint: see {@linkcode DatagramEndpoint}.
 *
 * @param options Address, default peer, queue bound; all optional.
 * @returns A promise of the bound endpoint. It rejects with
 * `Deno.errors.AddrInUse` when the port is taken,
 * `Deno.errors.AddrNotAvailable` for an address not on this machine,
 * `Deno.errors.NotFound` for a host name that does not resolve,
 * `Deno.errors.NotCapable` without `--allow-net` for the address,
 * `RangeError`/`TypeError` for bad options; each message names the
 * address and what was expected.
 *
 * @example Datagram boundaries are kept
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using a = await listenDatagram();
 * await using b = await listenDatagram({ remoteAddr: a.addr });
 * await b.send(new TextEncoder().encode("one"));
 * await b.send(new TextEncoder().encode("two"));
 *
 * const reader = a.readable.getReader();
 * const texts: string[] = [];
 * for (let i = 0; i < 2; i++) {
 *   const { value } = await reader.read();
 *   texts.push(new TextDecoder().decode(value!.data));
 * }
 * assert.deepEqual(texts, ["one", "two"]); // two sends, two datagrams
 * reader.releaseLock();
 * ```
 *
 * @example A clear error for a port in use
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using first = await listenDatagram();
 * await assert.rejects(
 *   listenDatagram({ port: first.addr.port }),
 *   Deno.errors.AddrInUse,
 * );
 * ```
 */
export async function listenDatagram(
  options: ListenDatagramOptions = {},
): Promise<DatagramEndpoint> {
  const action = "bind datagram endpoint";
  const hostname = options.hostname ?? "127.0.0.1";
  checkHostname(action, hostname);
  const port = options.port ?? 0;
  checkPort(action, port, 0);
  const queue = options.receiveQueue ?? DEFAULT_RECEIVE_QUEUE;
  if (!Number.isInteger(queue) || queue < 1) {
    throw new RangeError(
      `Cannot ${action} as receiveQueue must be an integer from 1: current value is ${queue}`,
    );
  }
  options.signal?.throwIfAborted();

  const address = await resolve(action, hostname, port);
  const family = isIP(address) as 4 | 6;
  if (options.broadcast && family === 6) {
    throw new TypeError(
      `Cannot ${action} as broadcast is IPv4 only: current address is ${address}`,
    );
  }
  let remoteAddr: Deno.NetAddr | undefined;
  if (options.remoteAddr !== undefined) {
    const peer = options.remoteAddr;
    const peerAction = "set the default peer";
    if (typeof peer !== "object" || peer === null) {
      throw new TypeError(
        `Cannot ${peerAction} as remoteAddr must be an object with a port: current type is ${
          peer === null ? "null" : typeof peer
        }`,
      );
    }
    const peerHost = peer.hostname ?? loopback(family);
    checkHostname(peerAction, peerHost);
    checkPort(peerAction, peer.port, 1);
    const peerAddress = await resolve(peerAction, peerHost, peer.port, family);
    checkFamily(peerAction, peerAddress, family);
    remoteAddr = { transport: "udp", hostname: peerAddress, port: peer.port };
    // Sends to the peer need this too: say so now, not at the first send.
    checkNetPermission(peerAddress, peer.port);
  }
  checkNetPermission(address, port);
  options.signal?.throwIfAborted();

  const socket = dgram.createSocket({
    type: family === 6 ? "udp6" : "udp4",
    reuseAddr: options.reuseAddress ?? false,
  });
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once("error", reject);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off("error", reject);
        resolve();
      });
    });
    if (options.broadcast) socket.setBroadcast(true);
  } catch (error) {
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // never bound: nothing to close
      }
    });
    throw bindError(error, formatHostPort(address, port));
  }
  return createEndpoint(socket, family, remoteAddr, options);
}

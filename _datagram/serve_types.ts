/**
 * The types of {@linkcode serveDatagrams}: its options, what it reports for
 * each datagram, and the running server it returns.
 *
 * @module
 */

import type { ListenDatagramOptions } from "./types.ts";

/**
 * What serving one datagram did, given to {@linkcode ServeDatagramsOptions.onDatagram}.
 *
 * @example Log each datagram
 * ```ts
 * import {
 *   type DatagramInfo,
 *   listenDatagram,
 *   serveDatagrams,
 * } from "@x/sock/datagram";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const log: string[] = [];
 * const server = await serveDatagrams({
 *   port: 0,
 *   onDatagram: ({ remoteAddr, bytesIn, bytesOut, error }: DatagramInfo) =>
 *     void log.push(
 *       `${remoteAddr.hostname} ${bytesIn} in, ${bytesOut ?? "no"} out${
 *         error === undefined ? "" : `: ${error}`
 *       }`,
 *     ),
 * }, () => new EchoStream());
 * {
 *   await using client = await listenDatagram({ remoteAddr: server.addr });
 *   await client.send(new Uint8Array(4));
 *   const answers = client.readable.getReader();
 *   await answers.read(); // the echo
 *   answers.releaseLock();
 * }
 * await server.shutdown(); // every datagram in hand has been reported
 * assert.deepEqual(log, ["127.0.0.1 4 in, 4 out"]);
 * ```
 */
export interface DatagramInfo {
  /** The sender. */
  readonly remoteAddr: Deno.NetAddr;
  /** The size of the datagram received. */
  readonly bytesIn: number;
  /** The size of the answer sent; `undefined` when none was sent. */
  readonly bytesOut: number | undefined;
  /** Milliseconds from the datagram's turn to the answer sent. */
  readonly duration: number;
  /** Why no answer was sent: the handler's error or the send's. */
  readonly error?: unknown;
}

/**
 * Options for {@linkcode serveDatagrams}.
 *
 * @example Limits and hooks
 * ```ts
 * import { serveDatagrams } from "@x/sock/datagram";
 * import { EchoStream } from "@x/sock/services";
 *
 * const controller = new AbortController();
 * const server = await serveDatagrams({
 *   hostname: "::1",
 *   port: 0,
 *   receiveQueue: 256,
 *   maxConcurrent: 16,
 *   gracePeriod: 1000,
 *   signal: controller.signal,
 *   onListen: ({ hostname, port }) => console.log(`[${hostname}]:${port}/udp`),
 *   onError: (error, remoteAddr) => console.error(remoteAddr, error),
 * }, () => new EchoStream());
 * controller.abort();
 * await server.finished;
 * ```
 */
export interface ServeDatagramsOptions
  extends Omit<ListenDatagramOptions, "remoteAddr" | "signal"> {
  /**
   * Aborting it shuts the server down as {@linkcode DatagramServer.shutdown}
   * does.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * How many datagrams may be in the handler (or on their way back) at
   * once. While that many are, the next datagrams wait in the receive queue
   * ({@linkcode ListenDatagramOptions.receiveQueue}), and beyond it are
   * dropped: a slow handler costs datagrams, never memory.
   *
   * @default {64}
   */
  maxConcurrent?: number;
  /**
   * Milliseconds that datagrams still in the handler get to be answered
   * after {@linkcode DatagramServer.shutdown}; the socket is then closed.
   *
   * @default {5000}
   */
  gracePeriod?: number;
  /**
   * Called once the server is bound, with its address.
   *
   * @default {undefined}
   */
  onListen?(addr: Deno.NetAddr): void;
  /**
   * Called after each datagram has been served (answered, or not).
   *
   * @default {undefined}
   */
  onDatagram?(info: DatagramInfo): void;
  /**
   * Called when the handler throws or an answer cannot be sent (too large,
   * say), and when the socket fails. Errors thrown by `onError` itself are
   * ignored.
   *
   * @default {(error) => console.error(error)}
   */
  onError?(error: unknown, remoteAddr?: Deno.NetAddr): void;
}

/**
 * A running datagram server, from {@linkcode serveDatagrams}.
 *
 * @example Figures after a shutdown
 * ```ts
 * import { listenDatagram, serveDatagrams } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * const server = await serveDatagrams({ port: 0 }, (data) => data);
 * {
 *   await using client = await listenDatagram({ remoteAddr: server.addr });
 *   await client.send(new Uint8Array([1, 2]));
 *   const reader = client.readable.getReader();
 *   await reader.read(); // the echo
 *   reader.releaseLock();
 * }
 * await server.shutdown();
 * assert.equal(server.received, 1);
 * assert.equal(server.answered, 1);
 * assert.equal(server.dropped, 0);
 * ```
 */
export interface DatagramServer extends AsyncDisposable {
  /** The address the server is bound to, with the actual port. */
  readonly addr: Deno.NetAddr;
  /** Settles (always fulfils) once the server has stopped and closed its socket. */
  readonly finished: Promise<void>;
  /** Datagrams received, including dropped ones. */
  readonly received: number;
  /** Answers sent. */
  readonly answered: number;
  /** Datagrams dropped unserved (see {@linkcode DatagramEndpoint.dropped}). */
  readonly dropped: number;
  /**
   * Stops taking datagrams, lets those in the handler be answered within
   * {@linkcode ServeDatagramsOptions.gracePeriod}, then closes the socket.
   * Datagrams waiting unserved are dropped. Calling it again returns the
   * same promise.
   *
   * @returns {@linkcode DatagramServer.finished}.
   */
  shutdown(): Promise<void>;
  /** Same as {@linkcode DatagramServer.shutdown}. */
  [Symbol.asyncDispose](): Promise<void>;
}

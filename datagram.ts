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

import dgram from "node:dgram";
import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { SyncTransformStream } from "./sync_transform.ts";

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

/** Makes an endpoint: set by the class, whose constructor is private. */
let createEndpoint: (
  socket: dgram.Socket,
  family: 4 | 6,
  remoteAddr: Deno.NetAddr | undefined,
  options: ListenDatagramOptions,
) => DatagramEndpoint;

/**
 * A bound UDP socket with web streams, made by {@linkcode listenDatagram}.
 *
 * Receiving: read {@linkcode DatagramEndpoint.readable}. Sending: call
 * {@linkcode DatagramEndpoint.send}, or write to
 * {@linkcode DatagramEndpoint.writable}. Close it with `using`,
 * `await using` or {@linkcode DatagramEndpoint.close}.
 *
 * @example Two endpoints over IPv6
 * ```ts
 * import { listenDatagram } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using a = await listenDatagram({ hostname: "::1" });
 * await using b = await listenDatagram({ hostname: "::1" });
 * await a.send(new Uint8Array([1, 2, 3]), b.addr);
 * for await (const { data, remoteAddr } of b.readable) {
 *   assert.deepEqual(data, new Uint8Array([1, 2, 3]));
 *   assert.equal(remoteAddr.port, a.addr.port);
 *   break; // cancels the readable; the endpoint stays open
 * }
 * ```
 */
export class DatagramEndpoint implements Disposable, AsyncDisposable {
  #socket: dgram.Socket;
  #addr: Deno.NetAddr;
  #remoteAddr: Deno.NetAddr | undefined;
  #family: 4 | 6;
  #broadcast: boolean;
  #readable: ReadableStream<Datagram>;
  #readController!: ReadableStreamDefaultController<Datagram>;
  #writable: WritableStream<Uint8Array | OutgoingDatagram>;
  #queue: Datagram[] = [];
  #queueHead = 0;
  #queueLimit: number;
  #pullPending = false;
  #readableDone = false;
  #closing = false;
  #closed = Promise.withResolvers<void>();
  #abort = new AbortController();
  #pendingSends = 0;
  #closeReason: { reason: unknown } | undefined;
  #dropped = 0;
  #datagramsReceived = 0;
  #datagramsSent = 0;
  #bytesReceived = 0;
  #bytesSent = 0;
  #onAbort: (() => void) | undefined;
  #signal: AbortSignal | undefined;

  /** Use {@linkcode listenDatagram}, which binds first. */
  private constructor(
    socket: dgram.Socket,
    family: 4 | 6,
    remoteAddr: Deno.NetAddr | undefined,
    options: ListenDatagramOptions,
  ) {
    this.#socket = socket;
    this.#family = family;
    this.#remoteAddr = remoteAddr;
    this.#broadcast = options.broadcast ?? false;
    this.#queueLimit = options.receiveQueue ?? DEFAULT_RECEIVE_QUEUE;
    const local = socket.address();
    this.#addr = {
      transport: "udp",
      hostname: local.address,
      port: local.port,
    };
    this.#closed.promise.catch(() => {});

    this.#readable = new ReadableStream<Datagram>({
      start: (controller) => {
        this.#readController = controller;
      },
      pull: (controller) => {
        const next = this.#dequeue();
        if (next) controller.enqueue(next);
        else if (this.#closing) this.#finishReadable();
        else this.#pullPending = true;
      },
      cancel: () => {
        this.#readableDone = true;
        this.#dropped += this.#queue.length - this.#queueHead;
        this.#queue = [];
        this.#queueHead = 0;
      },
    }, { highWaterMark: 0 });

    this.#writable = new WritableStream<Uint8Array | OutgoingDatagram>({
      write: (chunk) =>
        chunk instanceof Uint8Array
          ? this.send(chunk)
          : this.send(chunk?.data, chunk?.remoteAddr),
    });

    socket.on("message", (message: Uint8Array, info: dgram.RemoteInfo) => {
      this.#receive(message, info);
    });
    socket.on("error", (error: Error) => this.close(error));
    socket.on("close", () => {
      this.#settleClosed();
    });

    if (options.signal) {
      const signal = options.signal;
      this.#signal = signal;
      this.#onAbort = () => this.close(signal.reason);
      // It may have been aborted while binding.
      if (signal.aborted) this.close(signal.reason);
      else signal.addEventListener("abort", this.#onAbort, { once: true });
    }
  }

  static {
    createEndpoint = (socket, family, remoteAddr, options) =>
      new DatagramEndpoint(socket, family, remoteAddr, options);
  }

  /** The address the endpoint is bound to, with the actual port. */
  get addr(): Deno.NetAddr {
    return { ...this.#addr };
  }

  /**
   * The default peer ({@linkcode ListenDatagramOptions.remoteAddr}, resolved),
   * or `undefined`.
   */
  get remoteAddr(): Deno.NetAddr | undefined {
    return this.#remoteAddr && { ...this.#remoteAddr };
  }

  /**
   * The largest payload this endpoint can send: 65507 bytes for IPv4,
   * 65527 for IPv6.
   */
  get maxDatagramSize(): number {
    return this.#family === 6 ? MAX_DATAGRAM_SIZE_IPV6 : MAX_DATAGRAM_SIZE_IPV4;
  }

  /**
   * The datagrams received, in arrival order, one chunk per datagram. At
   * most {@linkcode ListenDatagramOptions.receiveQueue} wait unread; more
   * are dropped. It ends after {@linkcode DatagramEndpoint.close} once the
   * waiting datagrams are read, or errors with the reason of an abnormal
   * close. Cancelling it does not close the endpoint (which can still
   * send); datagrams arriving after that are dropped.
   */
  get readable(): ReadableStream<Datagram> {
    return this.#readable;
  }

  /**
   * Takes datagrams to send: bytes (to the default peer) or
   * {@linkcode OutgoingDatagram}s. Each write resolves once the datagram has
   * been handed to the operating system, so piping into it has real
   * backpressure; a failed send errors the stream. Closing it only ends
   * sending: the endpoint stays open to receive answers.
   */
  get writable(): WritableStream<Uint8Array | OutgoingDatagram> {
    return this.#writable;
  }

  /**
   * Fulfils once the endpoint is closed and its pending sends have
   * settled; rejects with the reason when it was closed abnormally (a
   * `reason` given to {@linkcode DatagramEndpoint.close}, the `signal`, a
   * socket error).
   */
  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  /**
   * Aborts with the reason when the endpoint is closed abnormally (see
   * {@linkcode DatagramEndpoint.closed}); stays unaborted after a plain
   * `close()`.
   */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  /**
   * Datagrams received but never delivered: they arrived while
   * {@linkcode ListenDatagramOptions.receiveQueue} datagrams were already
   * waiting, or after `readable` was cancelled, or were still waiting when
   * the endpoint was closed with a reason.
   */
  get dropped(): number {
    return this.#dropped;
  }

  /** Datagrams that arrived, including the dropped ones. */
  get datagramsReceived(): number {
    return this.#datagramsReceived;
  }

  /** Payload bytes that arrived, including those of dropped datagrams. */
  get bytesReceived(): number {
    return this.#bytesReceived;
  }

  /** Datagrams handed to the operating system. */
  get datagramsSent(): number {
    return this.#datagramsSent;
  }

  /** Payload bytes handed to the operating system. */
  get bytesSent(): number {
    return this.#bytesSent;
  }

  /**
   * Sends one datagram.
   *
   * @param data The payload, at most
   * {@linkcode DatagramEndpoint.maxDatagramSize} bytes; it may be empty.
   * @param remoteAddr Where to; by default the endpoint's default peer.
   * @returns A promise that fulfils once the operating system has taken the
   * datagram (which says nothing about delivery), and rejects with a
   * `RangeError` for an oversize payload, a `TypeError` for a bad address,
   * `Deno.errors.NotFound` for a host name that does not resolve,
   * `Deno.errors.NotCapable` without net permission for the destination,
   * or `Deno.errors.BadResource` once the endpoint is closed.
   *
   * @example Reply to a sender
   * ```ts
   * import { listenDatagram } from "@x/sock/datagram";
   * import assert from "node:assert/strict";
   *
   * await using server = await listenDatagram();
   * await using client = await listenDatagram({ remoteAddr: server.addr });
   * await client.send(new TextEncoder().encode("hi"));
   * const requests = server.readable.getReader();
   * const { value: request } = await requests.read();
   * await server.send(request!.data, request!.remoteAddr);
   * requests.releaseLock();
   *
   * const answers = client.readable.getReader();
   * const { value: answer } = await answers.read();
   * assert.equal(new TextDecoder().decode(answer!.data), "hi");
   * answers.releaseLock();
   * ```
   */
  send(data: Uint8Array, remoteAddr?: DatagramAddress): Promise<void> {
    const action = "send datagram";
    if (!(data instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError(
          `Cannot ${action} as its data must be a Uint8Array: current type is ${
            describeType(data)
          }`,
        ),
      );
    }
    if (data.length > this.maxDatagramSize) {
      return Promise.reject(
        new RangeError(
          `Cannot ${action} as its size must be <= ${this.maxDatagramSize} bytes: current size is ${data.length} bytes`,
        ),
      );
    }
    if (this.#closing) {
      return Promise.reject(
        new Deno.errors.BadResource(
          `Cannot ${action} as the endpoint is closed`,
        ),
      );
    }
    let hostname: string;
    let port: number;
    try {
      if (remoteAddr === undefined) {
        if (this.#remoteAddr === undefined) {
          throw new TypeError(
            `Cannot ${action} as it has no destination: pass remoteAddr, or set a default peer with listenDatagram({ remoteAddr })`,
          );
        }
        ({ hostname, port } = this.#remoteAddr);
      } else {
        if (typeof remoteAddr !== "object" || remoteAddr === null) {
          throw new TypeError(
            `Cannot ${action} as remoteAddr must be an object with a port: current type is ${
              describeType(remoteAddr)
            }`,
          );
        }
        hostname = remoteAddr.hostname ?? loopback(this.#family);
        port = remoteAddr.port;
        checkHostname(action, hostname);
        checkPort(action, port, 1);
        if (isIP(hostname)) checkFamily(action, hostname, this.#family);
      }
    } catch (error) {
      return Promise.reject(error);
    }

    const { promise, resolve, reject } = Promise.withResolvers<void>();
    this.#pendingSends++;
    const done = (error: Error | null) => {
      // node:dgram forgets a send whose socket closed under it (no
      // callback), so the socket is closed only once none is pending.
      if (--this.#pendingSends === 0 && this.#closing) this.#closeSocket();
      if (error) {
        reject(sendError(error, hostname, port, this.#broadcast));
      } else {
        this.#datagramsSent++;
        this.#bytesSent += data.length;
        resolve();
      }
    };
    try {
      this.#socket.send(data, port, hostname, (error) => done(error));
    } catch (error) {
      done(error as Error);
    }
    return promise;
  }

  /**
   * Closes the endpoint now. Datagrams already waiting stay readable after
   * a plain close; with a `reason`, `readable` errors with it, the waiting
   * datagrams are dropped, and {@linkcode DatagramEndpoint.signal} aborts.
   * Sends already started are completed first (new ones reject with
   * `Deno.errors.BadResource`). Calling it again does nothing.
   *
   * @param reason Why, when the close is abnormal.
   *
   * @example Close with `using`
   * ```ts
   * import { listenDatagram } from "@x/sock/datagram";
   * import assert from "node:assert/strict";
   *
   * const endpoint = await listenDatagram();
   * {
   *   using _ = endpoint;
   * }
   * await endpoint.closed;
   * await assert.rejects(
   *   endpoint.send(new Uint8Array(1), { port: 9 }),
   *   Deno.errors.BadResource,
   * );
   * ```
   */
  close(reason?: unknown): void {
    if (this.#closing) return;
    this.#closing = true;
    const abnormal = reason !== undefined;
    if (this.#signal && this.#onAbort) {
      this.#signal.removeEventListener("abort", this.#onAbort);
    }
    if (abnormal) {
      this.#abort.abort(reason);
      this.#closeReason = { reason };
      if (!this.#readableDone) {
        this.#readableDone = true;
        this.#dropped += this.#queue.length - this.#queueHead;
        this.#queue = [];
        this.#queueHead = 0;
        this.#readController.error(reason);
      }
    } else if (this.#pullPending) {
      this.#finishReadable();
    }
    this.#socket.removeAllListeners("message");
    if (this.#pendingSends === 0) this.#closeSocket();
  }

  #closeSocket(): void {
    try {
      this.#socket.close();
    } catch {
      // Already closed under us.
      this.#settleClosed();
    }
  }

  /** Same as {@linkcode DatagramEndpoint.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Closes the endpoint, then waits for {@linkcode DatagramEndpoint.closed}
   * (without rejecting).
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.#closed.promise.catch(() => {});
  }

  #receive(message: Uint8Array, info: dgram.RemoteInfo): void {
    this.#datagramsReceived++;
    this.#bytesReceived += message.length;
    if (this.#readableDone || this.#closing) {
      this.#dropped++;
      return;
    }
    const waiting = this.#queue.length - this.#queueHead;
    if (!this.#pullPending && waiting >= this.#queueLimit) {
      this.#dropped++;
      return;
    }
    // Each message has a fresh 64 KiB buffer of its own: a small one is
    // copied out so that a waiting datagram holds only its own size, a
    // large one is handed on as a view. Either way a plain Uint8Array.
    const data = message.length < 32768
      ? new Uint8Array(message)
      : new Uint8Array(message.buffer, message.byteOffset, message.length);
    const datagram: Datagram = {
      data,
      remoteAddr: { transport: "udp", hostname: info.address, port: info.port },
    };
    if (this.#pullPending) {
      this.#pullPending = false;
      this.#readController.enqueue(datagram);
    } else {
      this.#queue.push(datagram);
    }
  }

  #dequeue(): Datagram | undefined {
    if (this.#queueHead === this.#queue.length) return undefined;
    const datagram = this.#queue[this.#queueHead]!;
    this.#queue[this.#queueHead++] = undefined as unknown as Datagram;
    if (this.#queueHead === this.#queue.length) {
      this.#queue = [];
      this.#queueHead = 0;
    } else if (
      this.#queueHead > 64 && this.#queueHead * 2 > this.#queue.length
    ) {
      this.#queue = this.#queue.slice(this.#queueHead);
      this.#queueHead = 0;
    }
    return datagram;
  }

  #finishReadable(): void {
    if (this.#readableDone) return;
    this.#readableDone = true;
    this.#pullPending = false;
    this.#readController.close();
  }

  /** Settles `closed` once the socket is closed. */
  #settleClosed(): void {
    if (this.#closeReason) this.#closed.reject(this.#closeReason.reason);
    else this.#closed.resolve();
  }
}

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
    throw bindError(error, formatAddress(address, port));
  }
  return createEndpoint(socket, family, remoteAddr, options);
}

// ---------------------------------------------------------------------------
// Serving datagrams

/**
 * What a {@linkcode DatagramHandler} gives back for one datagram: the
 * answer's bytes; a `TransformStream` (such as `UpperCaseStream`) that the
 * datagram is put through, its whole output being the answer; or nothing,
 * for no answer.
 *
 * @example Bytes, a stream, or nothing
 * ```ts
 * import {
 *   type DatagramAnswer,
 *   listenDatagram,
 *   serveDatagrams,
 * } from "@x/sock/datagram";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = await serveDatagrams({ port: 0 }, (data): DatagramAnswer => {
 *   if (data.length === 0) return undefined; // no answer
 *   if (data[0] === 0x21) return new Uint8Array([0x3f]); // "!" -> "?"
 *   return new UpperCaseStream();
 * });
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * const answers = client.readable.getReader();
 * const ask = async (text: string) => {
 *   await client.send(new TextEncoder().encode(text));
 *   const { value } = await answers.read();
 *   return new TextDecoder().decode(value!.data);
 * };
 * await client.send(new Uint8Array(0)); // gets no answer
 * assert.equal(await ask("!"), "?");
 * assert.equal(await ask("hi"), "HI");
 * answers.releaseLock();
 * ```
 */
export type DatagramAnswer =
  | Uint8Array
  | TransformStream<Uint8Array, Uint8Array>
  | undefined
  | void;

/**
 * Serves one datagram: given its bytes and its sender, returns the answer
 * (or a promise of it), which {@linkcode serveDatagrams} sends back to the
 * sender. Throwing (or rejecting) sends nothing and reports the error to
 * {@linkcode ServeDatagramsOptions.onError}.
 *
 * A returned `TransformStream` gets the datagram as its only chunk and is
 * then closed; what it emits, `flush()` included, is joined into one answer
 * datagram (none when it emits nothing). A `SyncTransformStream` whose
 * streams are unlocked is run by calling its transformer directly, without
 * a stream. So `() => new UpperCaseStream()`, the `serve()` handler of the
 * TCP upper-case server, is also a datagram handler.
 *
 * @example A handler that answers with a sequence number
 * ```ts
 * import {
 *   type DatagramHandler,
 *   listenDatagram,
 *   serveDatagrams,
 * } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * let count = 0;
 * const numbered: DatagramHandler = (data, remoteAddr) =>
 *   new TextEncoder().encode(
 *     `#${++count}: ${data.length} bytes from ${remoteAddr.hostname}`,
 *   );
 * await using server = await serveDatagrams({ port: 0 }, numbered);
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * const answers = client.readable.getReader();
 * const texts: string[] = [];
 * for (const size of [3, 5]) {
 *   await client.send(new Uint8Array(size));
 *   const { value } = await answers.read();
 *   texts.push(new TextDecoder().decode(value!.data));
 * }
 * answers.releaseLock();
 * assert.deepEqual(texts, [
 *   "#1: 3 bytes from 127.0.0.1",
 *   "#2: 5 bytes from 127.0.0.1",
 * ]);
 * ```
 */
export type DatagramHandler = (
  data: Uint8Array,
  remoteAddr: Deno.NetAddr,
) => DatagramAnswer | Promise<DatagramAnswer>;

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

/**
 * Binds a UDP endpoint and answers every datagram to its sender with
 * `handler`: the datagram counterpart of `serve()`. Datagrams are served as
 * they come, up to {@linkcode ServeDatagramsOptions.maxConcurrent} at once;
 * a failing handler costs its own answer only.
 *
 * @param options Address, limits, hooks.
 * @param handler Serves one datagram.
 * @returns A promise of the running server, rejecting with the errors of
 * {@linkcode listenDatagram}.
 *
 * @example An upper-case UDP server
 * ```ts
 * import { listenDatagram, serveDatagrams } from "@x/sock/datagram";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = await serveDatagrams(
 *   { port: 0 },
 *   () => new UpperCaseStream(),
 * );
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * await client.send(new TextEncoder().encode("shout\n"));
 * const reader = client.readable.getReader();
 * const { value } = await reader.read();
 * assert.equal(new TextDecoder().decode(value!.data), "SHOUT\n");
 * reader.releaseLock();
 * ```
 *
 * @example A handler of its own: answer with the datagram's length
 * ```ts
 * import { listenDatagram, serveDatagrams } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * await using server = await serveDatagrams(
 *   { hostname: "::1", port: 0 },
 *   (data) => new TextEncoder().encode(`${data.length}`),
 * );
 * await using client = await listenDatagram({
 *   hostname: "::1",
 *   remoteAddr: server.addr,
 * });
 * await client.send(new Uint8Array(1000));
 * const reader = client.readable.getReader();
 * const { value } = await reader.read();
 * assert.equal(new TextDecoder().decode(value!.data), "1000");
 * reader.releaseLock();
 * ```
 *
 * @example Serve until Ctrl-C
 * ```ts ignore
 * import { serveDatagrams } from "@x/sock/datagram";
 * import { EchoStream } from "@x/sock/services";
 *
 * const controller = new AbortController();
 * Deno.addSignalListener("SIGINT", () => controller.abort());
 * const server = await serveDatagrams(
 *   { port: 7, signal: controller.signal },
 *   () => new EchoStream(),
 * );
 * await server.finished;
 * ```
 */
export async function serveDatagrams(
  options: ServeDatagramsOptions,
  handler: DatagramHandler,
): Promise<DatagramServer> {
  if (typeof handler !== "function") {
    throw new TypeError(
      `Cannot serve datagrams as the handler must be a function: current type is ${
        describeType(handler)
      }`,
    );
  }
  const maxConcurrent = options.maxConcurrent ?? 64;
  if (!Number.isInteger(maxConcurrent) || maxConcurrent < 1) {
    throw new RangeError(
      `Cannot serve datagrams as maxConcurrent must be an integer from 1: current value is ${maxConcurrent}`,
    );
  }
  const gracePeriod = options.gracePeriod ?? 5000;
  if (!(gracePeriod >= 0)) {
    throw new RangeError(
      `Cannot serve datagrams as gracePeriod must be a number from 0: current value is ${gracePeriod}`,
    );
  }
  const { signal, ...listenOptions } = options;
  signal?.throwIfAborted();
  const endpoint = await listenDatagram(listenOptions);
  return new Server(endpoint, handler, options, maxConcurrent, gracePeriod);
}

class Server implements DatagramServer {
  #endpoint: DatagramEndpoint;
  #handler: DatagramHandler;
  #options: ServeDatagramsOptions;
  #maxConcurrent: number;
  #gracePeriod: number;
  #reader: ReadableStreamDefaultReader<Datagram>;
  #inFlight = new Set<Promise<void>>();
  #answered = 0;
  #stopping = false;
  #finished: Promise<void>;
  #shutdown: Promise<void> | undefined;
  #stop = Promise.withResolvers<void>();

  constructor(
    endpoint: DatagramEndpoint,
    handler: DatagramHandler,
    options: ServeDatagramsOptions,
    maxConcurrent: number,
    gracePeriod: number,
  ) {
    this.#endpoint = endpoint;
    this.#handler = handler;
    this.#options = options;
    this.#maxConcurrent = maxConcurrent;
    this.#gracePeriod = gracePeriod;
    this.#reader = endpoint.readable.getReader();
    this.#finished = this.#run();
    const signal = options.signal;
    if (signal) {
      const onAbort = () => this.shutdown();
      signal.addEventListener("abort", onAbort, { once: true });
      this.#finished.then(() => signal.removeEventListener("abort", onAbort));
    }
    this.#report(() => options.onListen?.(endpoint.addr));
  }

  get addr(): Deno.NetAddr {
    return this.#endpoint.addr;
  }

  get finished(): Promise<void> {
    return this.#finished;
  }

  get received(): number {
    return this.#endpoint.datagramsReceived;
  }

  get answered(): number {
    return this.#answered;
  }

  get dropped(): number {
    return this.#endpoint.dropped;
  }

  shutdown(): Promise<void> {
    if (!this.#shutdown) {
      this.#stopping = true;
      this.#stop.resolve();
      this.#shutdown = this.#finished;
    }
    return this.#shutdown;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  async #run(): Promise<void> {
    const stopped = this.#stop.promise.then(() => undefined);
    try {
      while (!this.#stopping) {
        const next = await Promise.race([this.#reader.read(), stopped]);
        if (next === undefined || next.done) break;
        const task = this.#serve(next.value);
        this.#inFlight.add(task);
        task.finally(() => this.#inFlight.delete(task));
        if (this.#inFlight.size >= this.#maxConcurrent) {
          await Promise.race([Promise.race(this.#inFlight), stopped]);
        }
      }
    } catch (error) {
      // The endpoint failed (its readable errored): report and stop.
      this.#reportError(error);
    }
    // Datagrams still waiting are dropped (and counted) by the cancel.
    await this.#reader.cancel().catch(() => {});
    if (this.#inFlight.size > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.allSettled(this.#inFlight),
        new Promise<void>((resolve) => {
          if (this.#gracePeriod !== Infinity) {
            timer = setTimeout(resolve, this.#gracePeriod);
          }
        }),
      ]);
      clearTimeout(timer);
    }
    await this.#endpoint[Symbol.asyncDispose]();
    // Answers still in the handler after the grace period are abandoned;
    // their sends reject on the closed endpoint and are not reported.
  }

  async #serve({ data, remoteAddr }: Datagram): Promise<void> {
    const start = performance.now();
    const bytesIn = data.length;
    let bytesOut: number | undefined;
    let failure: unknown;
    try {
      const answer = await answerOf(
        await this.#handler(data, remoteAddr),
        data,
      );
      if (answer !== undefined && !this.#endpoint.signal.aborted) {
        await this.#endpoint.send(answer, remoteAddr);
        this.#answered++;
        bytesOut = answer.length;
      }
    } catch (error) {
      failure = error;
      if (!(error instanceof Deno.errors.BadResource)) {
        this.#reportError(error, remoteAddr);
      }
    }
    const info: DatagramInfo = {
      remoteAddr,
      bytesIn,
      bytesOut,
      duration: performance.now() - start,
      ...(failure === undefined ? {} : { error: failure }),
    };
    this.#report(() => this.#options.onDatagram?.(info));
  }

  #report(hook: () => void): void {
    try {
      hook();
    } catch (error) {
      this.#reportError(error);
    }
  }

  #reportError(error: unknown, remoteAddr?: Deno.NetAddr): void {
    try {
      if (this.#options.onError) this.#options.onError(error, remoteAddr);
      else console.error(error);
    } catch {
      // onError's own errors are ignored, as documented.
    }
  }
}

/** Turns a handler's answer for `data` into bytes: see {@linkcode DatagramHandler}. */
async function answerOf(
  answer: DatagramAnswer,
  data: Uint8Array,
): Promise<Uint8Array | undefined> {
  if (answer === undefined) return undefined;
  if (answer instanceof Uint8Array) return answer;
  if (!(answer instanceof TransformStream)) {
    throw new TypeError(
      `Cannot answer datagram as the handler must return a Uint8Array, a TransformStream or undefined: current type is ${
        describeType(answer)
      }`,
    );
  }
  const chunks: Uint8Array[] = [];
  if (
    answer instanceof SyncTransformStream && !answer.readable.locked &&
    !answer.writable.locked
  ) {
    // The documented fast path: the transformer, called directly. Emitted
    // chunks may be views of `data`, which is this datagram's own.
    const transformer = answer.transformer;
    const emit = (chunk: Uint8Array) => chunks.push(chunk);
    transformer.transform(data, emit);
    transformer.flush?.(emit);
  } else {
    const writing = (async () => {
      const writer = answer.writable.getWriter();
      await writer.write(data);
      await writer.close();
    })();
    // A failing service errors both sides: report the readable's error,
    // and do not leave the writer's rejection unhandled.
    writing.catch(() => {});
    for await (const chunk of answer.readable) chunks.push(chunk);
    await writing;
  }
  return join(chunks);
}

/** Joins chunks into one; `undefined` for none. */
function join(chunks: Uint8Array[]): Uint8Array | undefined {
  if (chunks.length <= 1) return chunks[0];
  let length = 0;
  for (const chunk of chunks) length += chunk.length;
  const out = new Uint8Array(length);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Addresses and errors

function loopback(family: 4 | 6): string {
  return family === 6 ? "::1" : "127.0.0.1";
}

function formatAddress(hostname: string, port: number): string {
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  return value.constructor?.name ?? "object";
}

function checkHostname(action: string, hostname: unknown): void {
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(
      `Cannot ${action} as the hostname must be a non-empty string: current value is ${
        typeof hostname === "string" ? '""' : describeType(hostname)
      }`,
    );
  }
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    throw new TypeError(
      `Cannot ${action} as the hostname must be an address without brackets: current value is "${hostname}"`,
    );
  }
}

function checkPort(action: string, port: unknown, min: 0 | 1): void {
  if (
    typeof port !== "number" || !Number.isInteger(port) || port < min ||
    port > 65535
  ) {
    throw new RangeError(
      `Cannot ${action} as the port must be an integer from ${min} to 65535: current value is ${
        typeof port === "number" ? port : describeType(port)
      }`,
    );
  }
}

function checkFamily(action: string, address: string, family: 4 | 6): void {
  const wanted = isIP(address);
  if (wanted !== family) {
    throw new TypeError(
      `Cannot ${action} to ${address} as the endpoint is IPv${family}: current address is IPv${wanted}; bind to ${
        wanted === 6 ? '"::1" or "::"' : '"127.0.0.1" or "0.0.0.0"'
      } instead`,
    );
  }
}

/** Resolves a host name to its first address (of `family` when given). */
async function resolve(
  action: string,
  hostname: string,
  port: number,
  family?: 4 | 6,
): Promise<string> {
  if (isIP(hostname)) return hostname;
  try {
    const { address } = await lookup(hostname, { family: family ?? 0 });
    return address;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EPERM") {
      throw new Deno.errors.NotCapable(
        notCapable(`${hostname}:${port}`),
      );
    }
    throw new Deno.errors.NotFound(
      `Cannot ${action} as the host name does not resolve${
        family ? ` to an IPv${family} address` : ""
      }: current value is "${hostname}"`,
      { cause: error },
    );
  }
}

/**
 * node:dgram throws Deno's permission error from a callback nobody can
 * catch, so the permission is checked first (prompting, as Deno does, when
 * it may).
 */
function checkNetPermission(address: string, port: number): void {
  const descriptor = {
    name: "net",
    host: formatAddress(address, port),
  } as const;
  let state = Deno.permissions.querySync(descriptor).state;
  if (state === "prompt") {
    state = Deno.permissions.requestSync(descriptor).state;
  }
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      notCapable(descriptor.host),
    );
  }
}

/**
 * The message of a missing net permission, worded as Deno words its own
 * (so that code reading Deno's messages reads ours too).
 */
function notCapable(host: string): string {
  return `Requires net access to "${host}", run again with the --allow-net flag`;
}

function bindError(error: unknown, where: string): Error {
  const code = (error as { code?: string }).code;
  const action = "bind datagram endpoint";
  if (code === "EADDRINUSE") {
    return new Deno.errors.AddrInUse(
      `Cannot ${action} as the address is in use: current address is ${where}`,
      { cause: error },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new Deno.errors.AddrNotAvailable(
      `Cannot ${action} as the address is not on this machine: current address is ${where}`,
      { cause: error },
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new Deno.errors.PermissionDenied(
      `Cannot ${action} as the system denies it (a port below 1024 needs privileges): current address is ${where}`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.NotCapable) return error;
  return new Error(
    `Cannot ${action} on ${where}: ${(error as Error)?.message ?? error}`,
    { cause: error },
  );
}

function sendError(
  error: Error,
  hostname: string,
  port: number,
  broadcast: boolean,
): Error {
  const code = (error as { code?: string }).code;
  const action = "send datagram";
  const where = formatAddress(hostname, port);
  if (code === "EBADF" || error instanceof Deno.errors.BadResource) {
    return new Deno.errors.BadResource(
      `Cannot ${action} as the endpoint is closed`,
      { cause: error },
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new Deno.errors.NotFound(
      `Cannot ${action} as the host name does not resolve: current value is "${hostname}"`,
      { cause: error },
    );
  }
  if (code === "EPERM") {
    return new Deno.errors.NotCapable(
      notCapable(`${hostname}:${port}`),
      { cause: error },
    );
  }
  if (code === "EMSGSIZE") {
    return new RangeError(
      `Cannot ${action} to ${where} as the system refuses its size (over the path's limit): current error is EMSGSIZE`,
      { cause: error },
    );
  }
  if (isIP(hostname)) {
    const host = formatAddress(hostname, port);
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      return new Deno.errors.NotCapable(
        notCapable(host),
        { cause: error },
      );
    }
  }
  if (!broadcast && /^255\.|\.255$/.test(hostname)) {
    return new Error(
      `Cannot ${action} to ${where} as it looks like a broadcast address: set the broadcast option`,
      { cause: error },
    );
  }
  return new Error(`Cannot ${action} to ${where}: ${error.message}`, {
    cause: error,
  });
}

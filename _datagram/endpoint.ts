/**
 * {@linkcode DatagramEndpoint}: a bound UDP socket with a bounded receive
 * queue behind a `readable`, and sends through `send()` or a `writable`.
 *
 * @module
 */

import type dgram from "node:dgram";
import { isIP } from "node:net";
import { checkPort, describeType } from "../_defaults.ts";
import {
  type Datagram,
  type DatagramAddress,
  DEFAULT_RECEIVE_QUEUE,
  type ListenDatagramOptions,
  MAX_DATAGRAM_SIZE_IPV4,
  MAX_DATAGRAM_SIZE_IPV6,
  type OutgoingDatagram,
} from "./types.ts";
import { checkFamily, checkHostname, loopback, sendError } from "./address.ts";

/**
 * Makes an endpoint over a bound socket, for {@linkcode listenDatagram}: set
 * by the class, whose constructor is private.
 */
export let createEndpoint: (
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

/**
 * {@linkcode serveDatagrams}: a datagram endpoint whose every datagram is
 * answered to its sender by a handler, with bounded concurrency and a
 * staged shutdown.
 *
 * @module
 */

import { describeType } from "../_defaults.ts";
import type { Datagram } from "./types.ts";
import type { DatagramEndpoint } from "./endpoint.ts";
import { listenDatagram } from "./listen.ts";
import { answerOf, type DatagramHandler } from "./handler.ts";
import type {
  DatagramInfo,
  DatagramServer,
  ServeDatagramsOptions,
} from "./serve_types.ts";

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

/** The {@linkcode DatagramServer} of {@linkcode serveDatagrams}. */
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

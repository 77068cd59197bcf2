/**
 * {@linkcode testHandler}: a `serve()` handler run over a
 * {@linkcode connPair}, with no listener, socket or permission.
 *
 * @module
 */

import { Connection } from "../connection.ts";
import {
  type ConnectionInfo,
  type ConnectionStats,
  type Handler,
  serveConnection,
  type ServeConnectionOptions,
} from "../server.ts";
import { connPair, type ConnPairOptions } from "./conn_pair.ts";
import type { MemoryConn } from "./memory_conn.ts";

/**
 * Options for {@linkcode testHandler}: the pair's, and how the server
 * serves the connection (as for `serve()`: idle timeout, hooks, PROXY
 * protocol, allow/deny, a `signal` that starts the staged shutdown).
 *
 * @example An idle timeout, and a hook
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const durations: number[] = [];
 * await using client = testHandler(() => new TransformStream(), {
 *   idleTimeout: 50,
 *   onClose: (info) => durations.push(info.duration),
 * });
 * const { error } = await client.served; // nobody spoke: timed out
 * assert.ok(error instanceof Deno.errors.TimedOut);
 * assert.ok(durations[0]! >= 50);
 * ```
 */
export interface TestHandlerOptions
  extends ConnPairOptions, ServeConnectionOptions {
  /**
   * The connection's number, for the handler and the hooks.
   *
   * @default {1}
   */
  id?: number;
}

/**
 * The client's end of a handler under test, from {@linkcode testHandler}:
 * a `Connection` (write, half-close, read the answer), plus what the
 * server side did.
 *
 * @example Read what the server did
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using client = testHandler(() => new EchoStream());
 * await client.write(new Uint8Array([1, 2, 3]));
 * await client.closeWrite();
 * assert.deepEqual(await new Response(client.readable).bytes(), new Uint8Array([1, 2, 3]));
 * const { bytesIn, bytesOut, error } = await client.served;
 * assert.deepEqual([bytesIn, bytesOut, error], [3, 3, undefined]);
 * assert.equal(client.ends[1].noDelay, true); // the server set TCP_NODELAY
 * ```
 */
export interface TestClient extends Connection {
  /**
   * Settles (never rejects) once the server side has closed the
   * connection, with what `onClose` gets: addresses, byte counts, duration,
   * and `error` when it ended abnormally (the handler's error included).
   */
  readonly served: Promise<ConnectionInfo & ConnectionStats>;
  /**
   * The two in-memory ends: the client's, wrapped by this object, and the
   * server's, given to the handler. Look, do not touch: their
   * `bufferedAmount` and `noDelay` are there for assertions.
   */
  readonly ends: readonly [client: MemoryConn, server: MemoryConn];
}

/** The {@linkcode TestClient} of {@linkcode testHandler}. */
class HandlerClient extends Connection implements TestClient {
  readonly served: Promise<ConnectionInfo & ConnectionStats>;
  readonly ends: readonly [client: MemoryConn, server: MemoryConn];

  constructor(handler: Handler, options: TestHandlerOptions) {
    const { bufferSize, maxChunkSize, seed, hostname, id = 1, ...serving } =
      options;
    const [client, server] = connPair({
      bufferSize,
      maxChunkSize,
      seed,
      hostname,
    });
    super(client);
    this.ends = [client, server];
    this.served = serveConnection(server, handler, { ...serving, id });
  }

  /** Closes the client's end, then waits until the server side is done. */
  override async [Symbol.asyncDispose](): Promise<void> {
    await super[Symbol.asyncDispose]();
    await this.served;
  }
}

/**
 * Runs a `serve()` handler over an in-memory connection, with no listener,
 * socket or permission: the server side is served exactly as `serve()`
 * serves a client (see `serveConnection()` in `@x/sock/server`), and you
 * get the client's end.
 *
 * Dispose of the client (`await using`) to close it and wait for the
 * server side to finish. A handler that never returns and ignores a
 * closed connection keeps that wait pending.
 *
 * @param handler The handler under test: it returns a service, or handles
 * the connection itself.
 * @param options The pair's buffer and chunking, and the serving options.
 * @returns The client's end, as a `Connection`.
 *
 * @example Test a line-counting service, one byte per read
 * ```ts
 * import { testHandler } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const countLines = () => {
 *   let lines = 0;
 *   return new TransformStream<Uint8Array, Uint8Array>({
 *     transform(chunk) {
 *       for (const byte of chunk) if (byte === 0x0a) lines++;
 *     },
 *     flush(controller) { // after the client's FIN
 *       controller.enqueue(new TextEncoder().encode(`${lines}\n`));
 *     },
 *   });
 * };
 * await using client = testHandler(countLines, { maxChunkSize: 1 });
 * await client.write(new TextEncoder().encode("a\nb\nc\n"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "3\n");
 * assert.equal((await client.served).bytesIn, 6);
 * ```
 */
export function testHandler(
  handler: Handler,
  options: TestHandlerOptions = {},
): TestClient {
  return new HandlerClient(handler, options);
}

/**
 * Runs a handler over its connection: the service it returns, over the
 * connection's engine, or the handler's own work, then our FIN and the
 * close.
 *
 * @module
 */

import { describeService, isService } from "../_connection/engine.ts";
import type { ServedConnection } from "./served_connection.ts";
import type { Handler, HandlerContext } from "./types.ts";

/**
 * The reason the server gives `Connection.close()` when a handler of its
 * own is done: the end of a connection, not a failure, so `onClose` gets
 * no error for it.
 */
export const HANDLER_DONE = new Deno.errors.Interrupted(
  "Connection closed as its handler returned",
);

/**
 * Runs `handler` over `connection` to its end, as {@linkcode Handler}
 * says; a failure goes to `fail`, which closes the connection.
 */
export async function runHandler(
  connection: ServedConnection,
  handler: Handler,
  fail: (error: unknown) => void,
): Promise<void> {
  let result: ReturnType<Handler>;
  try {
    result = handler(connection, new Context(connection));
  } catch (error) {
    return fail(error);
  }
  if (isService(result)) {
    connection.kind = "service";
    try {
      if (connection.touched) {
        // The handler took the streams before returning a service.
        await connection.readable.pipeThrough(result).pipeTo(
          connection.writable,
        );
        await connection.closed;
      } else {
        // Let go of the service while it runs: the engine keeps what it
        // needs, and an idle connection should not hold the rest.
        const serving = connection.serve(result);
        result = undefined;
        await serving;
      }
    } catch (error) {
      fail(error);
    }
    return;
  }
  connection.kind = "own";
  if (result === undefined) {
    // Nothing to wait for unless the handler works on the connection.
    if (!connection.touched) connection.close(HANDLER_DONE);
    return;
  }
  if (typeof (result as Promise<void>)?.then !== "function") {
    return fail(
      new TypeError(
        `Cannot serve connection as the handler must return a service (a ReadableWritablePair such as a TransformStream), a promise or nothing: current type is ${
          describeService(result)
        }`,
      ),
    );
  }
  try {
    await result;
  } catch (error) {
    return fail(error);
  }
  if (connection.state === "closed") return;
  // Our FIN after what the handler wrote, then discard unread input.
  if (connection.state !== "write-closed") {
    await connection.closeWrite().catch(() => {});
  }
  connection.close(HANDLER_DONE);
}

/** What a handler gets as its context: one small object, no closure. */
class Context implements HandlerContext {
  readonly #connection: ServedConnection;

  constructor(connection: ServedConnection) {
    this.#connection = connection;
  }

  get shutdown(): AbortSignal {
    return this.#connection.shutdownSignal;
  }
}

/**
 * {@linkcode exchange}: the split-I/O client as one call, sending on one
 * side and reading on the other of one {@linkcode Connection}.
 *
 * @module
 */

import type { Connection } from "../connection.ts";

/**
 * The split-I/O client as one call: sends `input` to the peer, half-closes
 * when it ends, and gives back the peer's bytes until the peer closes. Both
 * directions run at once, so a peer that answers as it reads never waits on
 * us. An error on either side errors the returned stream.
 *
 * @param connection From {@linkcode connect}, or any {@linkcode Connection}.
 * @param input What to send.
 * @returns What the peer sends back.
 *
 * @example Pipe a file through a server
 * ```ts
 * import { connect, exchange } from "@x/sock/client";
 * import { serve } from "@x/sock/server";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "from a file\n");
 * using file = await Deno.open(path);
 * await using conn = await connect({
 *   port: (server.addr as Deno.NetAddr).port,
 * });
 * // To a terminal: .pipeTo(Deno.stdout.writable)
 * const answer = await new Response(exchange(conn, file.readable)).text();
 * assert.equal(answer, "FROM A FILE\n");
 * await Deno.remove(path);
 * ```
 */
export function exchange(
  connection: Connection,
  input: ReadableStream<Uint8Array>,
): ReadableStream<Uint8Array> {
  // pipeTo closes the writable at the end of input: closeWrite(), our FIN.
  // A failure on the way aborts the writable, which closes the connection
  // and errors its readable: the caller sees it there.
  input.pipeTo(connection.writable).catch(() => {});
  return connection.readable;
}

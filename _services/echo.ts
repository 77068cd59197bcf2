/**
 * The services that pass bytes on unchanged or not at all:
 * {@linkcode EchoStream} and {@linkcode DiscardStream} (RFC 863).
 *
 * ```ts
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const bytes = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([1, 2])]).pipeThrough(new EchoStream()),
 * );
 * assert.deepEqual(bytes, [new Uint8Array([1, 2])]);
 * ```
 *
 * @module
 */

import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";

// Shared by every stream, as they keep no state. Both keep nothing of their
// input, so a connection's engine lends them its read buffer: echo writes
// each read straight back from it.
const ECHO: SyncTransformer<Uint8Array, Uint8Array> = {
  input: "borrow",
  transform: (chunk, emit) => emit(chunk),
};
const DISCARD: SyncTransformer<Uint8Array, Uint8Array> = {
  input: "borrow",
  transform() {},
};

/**
 * The identity service: passes every chunk on as it is, without a copy. As
 * a connection's service it writes each read back from the engine's reused
 * read buffer.
 *
 * @example Echo over a connection
 * ```ts
 * import { EchoStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new Connection(conn);
 *   return readable.pipeThrough(new EchoStream()).pipeTo(writable);
 * });
 * const client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await ReadableStream.from([new Uint8Array([1, 2, 3])])
 *   .pipeTo(client.writable);
 * const echoed = await new Response(client.readable).bytes();
 * assert.deepEqual(echoed, new Uint8Array([1, 2, 3]));
 * await served;
 * ```
 */
export class EchoStream extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super(ECHO);
  }
}

/**
 * The discard service of RFC 863: reads everything the client sends and
 * drops it, emitting nothing. Our FIN follows the client's, so a client can
 * tell that every byte was taken.
 *
 * @example Discard over a connection
 * ```ts
 * import { DiscardStream } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<number>();
 * await using server = serve({
 *   port: 0,
 *   onClose: (info) => closed.resolve(info.bytesIn),
 * }, () => new DiscardStream());
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new Uint8Array(1000));
 * await conn.closeWrite();
 * assert.equal(await conn.read(new Uint8Array(1)), null); // nothing back
 * assert.equal(await closed.promise, 1000);
 * ```
 */
export class DiscardStream extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super(DISCARD);
  }
}

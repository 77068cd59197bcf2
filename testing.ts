/**
 * Test helpers: connected in-memory connections with TCP semantics, a way
 * to run a server handler without a listener, and the chunkings every
 * byte-stream decoder should be tested under.
 *
 * - {@linkcode connPair} returns two connected {@linkcode MemoryConn}s, each
 *   a `Deno.TcpConn`: a byte stream in each direction, `closeWrite()`
 *   half-close, `close()`, bounded buffers with backpressure, partial
 *   writes, and the errors Deno gives on loopback. Anything that takes a
 *   `Deno.Conn` (a `Connection`, `framed()`, a server handler) runs over it
 *   unchanged, with no socket and no permission. Go has `net.Pipe`, tokio
 *   `io::duplex`, Node `stream.duplexPair`: this is ours.
 * - {@linkcode testHandler} serves one end of a pair with a `serve()`
 *   handler, exactly as a server would, and hands you the other end as a
 *   `Connection`.
 * - {@linkcode chunkings} splits bytes as one chunk, as one-byte chunks and
 *   at seeded random places, so a decoder test can check that the messages
 *   never depend on where the network cut the stream.
 *
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [client, server] = connPair();
 * await client.write(new TextEncoder().encode("ping"));
 * await client.closeWrite(); // FIN: the server reads the bytes, then null
 * const buffer = new Uint8Array(16);
 * const n = await server.read(buffer);
 * assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "ping");
 * assert.equal(await server.read(buffer), null);
 * // Half-closed, not closed: the server can still answer.
 * await server.write(new TextEncoder().encode("pong"));
 * server.close();
 * assert.equal(await client.read(buffer), 4);
 * assert.equal(await client.read(buffer), null);
 * client.close();
 * ```
 *
 * @module
 */

export { connPair, type ConnPairOptions } from "./_testing/conn_pair.ts";
export type { MemoryConn } from "./_testing/memory_conn.ts";
export {
  type TestClient,
  testHandler,
  type TestHandlerOptions,
} from "./_testing/test_handler.ts";
export {
  type Chunking,
  chunkings,
  type ChunkingsOptions,
} from "./_testing/chunkings.ts";

/**
 * What a chat room needs of a connection, and the room's options.
 *
 * ```ts
 * import type { ChatRoomOptions } from "@x/sock/chat";
 *
 * const options: ChatRoomOptions = { maxLineLength: 80 };
 * ```
 *
 * @module
 */

import type { ServiceConnection } from "../services.ts";

/**
 * What {@linkcode ChatRoom.prototype.join} uses of a connection. The
 * `Connection` that `serve()` hands to its handler has all of it.
 *
 * @example A client made of streams in memory
 * ```ts
 * import { type ChatConnection, ChatRoom } from "@x/sock/chat";
 * import assert from "node:assert/strict";
 *
 * let received = "";
 * const connection: ChatConnection = {
 *   id: 7,
 *   remoteAddr: { transport: "unix", path: "/tmp/chat.sock" },
 *   // Says one line, then half-closes: it leaves.
 *   readable: ReadableStream.from([new TextEncoder().encode("hi\n")]),
 *   writable: new WritableStream({
 *     write: (chunk) => void (received += new TextDecoder().decode(chunk)),
 *   }),
 *   signal: new AbortController().signal,
 *   close() {},
 * };
 * const room = new ChatRoom();
 * await room.join(connection); // alone in the room: nobody hears "hi"
 * assert.equal(received, "* you are unix#7\n");
 * assert.equal(room.size, 0);
 * ```
 */
export interface ChatConnection extends ServiceConnection {
  /** The connection's sequence number, for the names of Unix clients. */
  readonly id: number;
  /** The client's address, the default name. */
  readonly remoteAddr: Deno.Addr;
  /**
   * Closes the connection at once; used to drop a client.
   *
   * @param reason Why.
   */
  close(reason?: unknown): void;
}

/**
 * Options for {@linkcode ChatRoom}.
 *
 * @example Short lines, small queues, names of our own
 * ```ts
 * import { ChatRoom, type ChatRoomOptions } from "@x/sock/chat";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const options: ChatRoomOptions = {
 *   maxQueuedBytes: 65536,
 *   drainTimeout: 500,
 *   maxLineLength: 80,
 *   name: (connection) => `guest${connection.id}`,
 * };
 * const room = new ChatRoom(options);
 * await using server = serve({ port: 0 }, (c) => room.join(c));
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new TextEncoder().encode("x".repeat(100) + "\n"));
 * // Told who it is, then why it had to leave; then our FIN.
 * const lines = (await new Response(conn.readable).text()).split("\n");
 * assert.match(lines[0]!, /^\* you are guest\d+$/);
 * assert.equal(
 *   lines[1],
 *   "* Cannot relay line as its length must be <= 80 bytes: current length is at least 100 bytes",
 * );
 * ```
 */
export interface ChatRoomOptions {
  /**
   * The most bytes that may wait to be sent to one client. A message that
   * would take a client's queue beyond it drops the client instead, unless
   * the queue is empty (so one long line never drops a reader). A client's
   * queue therefore never holds more than this plus one message of at most
   * 16 KiB or one line with its prefix.
   *
   * @default {262144}
   */
  maxQueuedBytes?: number;
  /**
   * Milliseconds a client gets to bring its queue below half of
   * `maxQueuedBytes` while senders wait for it. When a client's queue is
   * over half full, the room stops reading from whoever sends until the
   * queue drains, so a reader that is merely slower than a flood slows the
   * flood down instead of being dropped; a client that does not drain in
   * time (it has stopped reading) is dropped. `0` never waits: clients are
   * dropped only at `maxQueuedBytes`.
   *
   * @default {2000}
   */
  drainTimeout?: number;
  /**
   * The longest line a client may send, in bytes, without its "\n" or
   * "\r\n". A client that sends a longer one is told so and leaves.
   *
   * @default {65536}
   */
  maxLineLength?: number;
  /**
   * The name that marks a client's lines. It should hold no "\n".
   *
   * @default {undefined} (the remote address: `127.0.0.1:5555`,
   * `[::1]:5555` for IPv6, `unix#7` with the connection's id for Unix)
   */
  name?(connection: ChatConnection): string;
}

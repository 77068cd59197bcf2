/**
 * A chat room for `serve()`: every line a client sends goes to every other
 * client, prefixed with the sender's name; joins and leaves are announced.
 *
 * Each client has a bounded queue of what is waiting to be sent to it. A
 * flood goes at the pace of the slowest reader; a client that stops reading
 * while the others talk is dropped (closed, and the others told) once its
 * queue has not drained for a while, so one stalled client never holds up
 * the room for long or makes the server's memory grow.
 *
 * ```ts
 * import { ChatRoom } from "@x/sock/chat";
 * import { serve } from "@x/sock/server";
 * import { TextLineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const room = new ChatRoom();
 * await using server = serve(
 *   { port: 0 },
 *   (connection, context) => room.join(connection, context),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * const join = async () => {
 *   const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 *   const lines = conn.readable
 *     .pipeThrough(new TextLineDecoderStream())
 *     .values();
 *   const next = async () => (await lines.next()).value;
 *   const { port: own } = conn.localAddr as Deno.NetAddr;
 *   return { conn, next, name: `127.0.0.1:${own}` };
 * };
 *
 * const alice = await join();
 * assert.equal(await alice.next(), `* you are ${alice.name}`);
 * const bob = await join();
 * assert.equal(await bob.next(), `* you are ${bob.name}`);
 * assert.equal(await alice.next(), `* ${bob.name} joined`);
 *
 * await alice.conn.write(new TextEncoder().encode("hello\r\n"));
 * assert.equal(await bob.next(), `[${alice.name}] hello`);
 *
 * await bob.conn.closeWrite(); // Bob leaves
 * assert.equal(await bob.next(), undefined); // our FIN closes his readable
 * assert.equal(await alice.next(), `* ${bob.name} left`);
 * alice.conn.close();
 * ```
 *
 * @module
 */

export type { ChatConnection, ChatRoomOptions } from "./_chat/options.ts";
export { ChatRoom } from "./_chat/room.ts";

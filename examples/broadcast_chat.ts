/**
 * A broadcast chat in a few lines, with `ChatRoom`: every line a client
 * sends goes to every other client, with the sender's name; joins and
 * leaves are announced. Each client's outgoing queue is bounded, so a client
 * that stops reading is dropped (and the others told) instead of making the
 * server's memory grow. Try it with three terminals:
 *
 * ```sh
 * deno run -N examples/broadcast_chat.ts [port]
 * deno run -N jsr:@x/sock/client        # in two other terminals
 * ```
 *
 * @module
 */
import { serve } from "@x/sock/server";
import { ChatRoom } from "@x/sock/chat";

const port = Number(Deno.args[0] ?? 9990);
const room = new ChatRoom({
  // Short names for people; the default is the client's address.
  name: (connection) => `user${connection.id}`,
});

const server = serve({
  port,
  onListen: (addr) => {
    const { hostname, port } = addr as Deno.NetAddr;
    console.log(`Chat on ${hostname}:${port}`);
  },
}, (connection, context) => room.join(connection, context));

await server.finished;

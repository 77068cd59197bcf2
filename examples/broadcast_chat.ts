/**
 * Beyond the classics: a broadcast chat in a few lines, because streams
 * compose. Each client's bytes go through line framing; every line is sent,
 * with the sender's name, to every other client. Try it with two terminals:
 *
 * ```sh
 * deno run -N examples/broadcast_chat.ts [port]
 * deno run -N jsr:@x/sock/client        # in two other terminals
 * ```
 *
 * @module
 */
import { serve } from "@x/sock/server";
import { framed, lines } from "@x/sock/framing";

const port = Number(Deno.args[0] ?? 9990);
const decoder = new TextDecoder();
/** Every client's writer of lines, to broadcast to. */
const clients = new Map<number, WritableStreamDefaultWriter<string>>();

function broadcast(from: number, text: string): void {
  for (const [id, writer] of clients) {
    // A slow or gone client must not hold up the others: do not await.
    if (id !== from) writer.write(text).catch(() => clients.delete(id));
  }
}

const server = serve({
  port,
  onListen: (addr) => {
    const { hostname, port } = addr as Deno.NetAddr;
    console.log(`Chat on ${hostname}:${port}`);
  },
}, async (connection) => {
  const name = `user${connection.id}`;
  const { readable, writable } = framed(connection, lines());
  const writer = writable.getWriter();
  clients.set(connection.id, writer);
  broadcast(connection.id, `* ${name} joined`);
  await writer.write(`* you are ${name}`);
  try {
    for await (const line of readable) {
      broadcast(connection.id, `${name}: ${decoder.decode(line)}`);
    }
  } finally {
    clients.delete(connection.id);
    broadcast(connection.id, `* ${name} left`);
    await writer.close().catch(() => {});
  }
});

await server.finished;

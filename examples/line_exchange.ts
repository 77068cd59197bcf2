/**
 * TCP has no message boundaries: this example sends lines in awkward pieces
 * and still gets whole lines out, with `framed()` and the `lines()` codec
 * in text mode (`lines({ text: true })`: each line a string, empty lines
 * kept).
 * A server answers each line with its word count; the client writes its
 * lines split at odd places, then half-closes, and the server adds a total
 * after the client's FIN.
 *
 * ```sh
 * deno run -N examples/line_exchange.ts
 * ```
 *
 * @module
 */
import { framed, lines } from "@x/sock/framing";
import { Connection } from "@x/sock/connection";

using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });

const served = listener.accept().then(async (conn) => {
  const { readable, writable } = framed(conn, lines({ text: true }));
  const writer = writable.getWriter();
  let total = 0;
  for await (const line of readable) {
    const words = line.split(/\s+/).filter(Boolean).length;
    total += words;
    await writer.write(`${words} words`);
  }
  await writer.write(`total: ${total} words`); // after the client's FIN
  await writer.close();
});

// The client writes raw bytes in pieces that ignore line ends...
const client = new Connection(
  await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
);
const text = "the quick brown fox\njumps over\r\nthe lazy dog\n";
const pieces = [text.slice(0, 7), text.slice(7, 22), text.slice(22)];
for (const piece of pieces) await client.write(new TextEncoder().encode(piece));
await client.closeWrite();

// ...and reads whole lines back, through the same codec.
const { readable } = framed(client, lines({ text: true }));
for await (const line of readable) console.log(line);
await served;

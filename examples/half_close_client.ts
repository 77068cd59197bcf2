/**
 * The client that splits reading from writing. One task sends three lines,
 * then ends its side with `closeWrite()` (the C programs'
 * `shutdown(SHUT_WR)`); the other prints every reply as it arrives, and keeps
 * reading after our FIN until the server has said all it has to say.
 *
 * ```sh
 * deno run -N examples/echo_server.ts &
 * deno run -N examples/half_close_client.ts [port]
 * ```
 *
 * @module
 */
import { connect } from "@x/sock/client";
import { LineDecoderStream } from "@x/sock/framing";

const port = Number(Deno.args[0] ?? 9990);
// `await using`: the connection is closed when this module ends, however.
await using conn = await connect({ port });
const encoder = new TextEncoder();

// The writing side: its own task. `write()` coalesces small writes;
// `closeWrite()` flushes them, then sends our FIN.
const sending = (async () => {
  for (const line of ["first", "second", "third"]) {
    await conn.write(encoder.encode(`${line}\n`));
    console.log(`sent: ${line}`);
  }
  await conn.closeWrite(); // the server reads end-of-file
  console.log("sent FIN; still reading");
})();

// The reading side: runs at the same time, until the server closes. TCP
// may split or merge lines, so whole lines come from a line decoder.
const decoder = new TextDecoder();
for await (const line of conn.readable.pipeThrough(new LineDecoderStream())) {
  console.log(`received: ${decoder.decode(line)}`);
}
await sending;
await conn.closed;
console.log(`server closed; ${conn.bytesRead} bytes received`);

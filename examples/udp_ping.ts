/**
 * Sends one datagram and prints the answer, or gives up after a second:
 * UDP promises no answer, so a client always needs a timeout.
 *
 * ```sh
 * deno run -N examples/udp_ping.ts 9990 hello   # port, then the text to send
 * ```
 *
 * Exit code 0 with an answer, 1 without.
 *
 * @module
 */
import { listenDatagram } from "@x/sock/datagram";

const port = Number(Deno.args[0] ?? 9990);
const text = Deno.args[1] ?? "ping";

await using endpoint = await listenDatagram({
  remoteAddr: { hostname: "127.0.0.1", port },
});
await endpoint.send(new TextEncoder().encode(text));

// Reading ends with the first answer from the server, or the timeout.
const reader = endpoint.readable.getReader();
const timeout = setTimeout(() => reader.cancel(), 1000);
let answered = false;
while (true) {
  const { done, value } = await reader.read();
  if (done) break;
  if (value.remoteAddr.port !== port) continue; // not the server
  console.log(new TextDecoder().decode(value.data));
  answered = true;
  break;
}
clearTimeout(timeout);
reader.releaseLock();
if (!answered) {
  console.error(`error: No answer from 127.0.0.1:${port}/udp within 1s`);
  Deno.exitCode = 1;
}

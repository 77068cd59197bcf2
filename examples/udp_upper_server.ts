/**
 * The upper-case service over UDP: every datagram is answered to its
 * sender with its ASCII letters upper-cased. Ctrl-C stops it.
 *
 * ```sh
 * deno run -N examples/udp_upper_server.ts        # 127.0.0.1:9990/udp
 * deno run -N examples/udp_upper_server.ts 0      # any free port
 * ```
 *
 * Talk to it with `examples/udp_ping.ts`, with
 * `deno run -N jsr:@x/sock/client --udp`, or with `nc -u 127.0.0.1 9990`.
 *
 * @module
 */
import { serveDatagrams } from "@x/sock/datagram";
import { UpperCaseStream } from "@x/sock/services";

const port = Number(Deno.args[0] ?? 9990);
const controller = new AbortController();
Deno.addSignalListener("SIGINT", () => controller.abort());

// The same handler as the TCP upper-case server's: here the stream is run
// once per datagram, and its output is the answer.
const server = await serveDatagrams({
  port,
  signal: controller.signal,
  onListen: ({ hostname, port }) =>
    console.log(`Listening on ${hostname}:${port}/udp`),
}, () => new UpperCaseStream());

await server.finished;
console.log(
  `Stopped: ${server.received} datagrams, ${server.answered} answered, ${server.dropped} dropped`,
);

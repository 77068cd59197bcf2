/**
 * The uppercase server: every client gets back what it sends, with ASCII
 * letters upper-cased. Many clients are served at once.
 *
 * ```sh
 * deno run -N examples/upper_server.ts        # listens on 127.0.0.1:9990
 * deno run -N examples/upper_server.ts 0      # any free port
 * ```
 *
 * Talk to it with `examples/upper_client.ts`, with
 * `deno run -N jsr:@x/sock/client`, or with `nc 127.0.0.1 9990`.
 *
 * @module
 */
import { serve } from "@x/sock/server";
import { UpperCaseStream } from "@x/sock/services";

const port = Number(Deno.args[0] ?? 9990);

// The handler runs once per client; the stream it returns is that client's
// own pipeline: the client's bytes in, upper-cased bytes out.
const server = serve({
  port,
  onListen: (addr) => {
    const { hostname, port } = addr as Deno.NetAddr;
    console.log(`Listening on ${hostname}:${port}`);
  },
}, () => new UpperCaseStream());

await server.finished;

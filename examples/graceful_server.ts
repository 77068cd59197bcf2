/**
 * A server that shuts down gracefully on Ctrl-C (SIGINT) or SIGTERM, in
 * stages: it stops accepting, tells every handler, closes idle connections
 * at once, lets busy ones finish their answer within a grace period, closes
 * what is left, prints its figures and exits with code 0. A second signal
 * exits at once.
 *
 * Each client is upper-cased by a handler of its own, so the server cannot
 * see where one message ends: a client is busy until it half-closes, and
 * gets its whole answer even when the signal arrives mid-conversation.
 *
 * ```sh
 * deno run -N examples/graceful_server.ts [port]
 * ```
 *
 * @module
 */
import { serve } from "@x/sock/server";
import { UpperCaseStream } from "@x/sock/services";

const port = Number(Deno.args[0] ?? 9990);
const controller = new AbortController();

const server = serve({
  port,
  signal: controller.signal, // aborting it is server.shutdown()
  gracePeriod: 10_000,
  onListen: (addr) => {
    const { hostname, port } = addr as Deno.NetAddr;
    console.log(`Listening on ${hostname}:${port}; Ctrl-C to stop`);
  },
  onClose: (info) =>
    console.log(
      `Connection #${info.id} done${
        info.error ? ` (${(info.error as Error).message})` : ""
      }`,
    ),
}, (connection, { shutdown }) => {
  shutdown.addEventListener("abort", () => {
    console.log(`Connection #${connection.id}: told to finish`);
  });
  return connection.readable
    .pipeThrough(new UpperCaseStream())
    .pipeTo(connection.writable);
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    if (controller.signal.aborted) {
      console.log(`${signal} again: exiting now`);
      Deno.exit(signal === "SIGINT" ? 130 : 143);
    }
    controller.abort();
    console.log(`${signal}: no new clients; finishing open connections`);
  });
}

await server.finished;
const { accepted, refused, bytesIn, bytesOut } = server.stats;
console.log(
  `Served ${accepted} connections (${refused} refused), ` +
    `${bytesIn} bytes in, ${bytesOut} bytes out`,
);
console.log("Stopped");
// Signal listeners keep the process alive; the work is done, so leave.
Deno.exit(0);

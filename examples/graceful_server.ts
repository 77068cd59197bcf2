/**
 * A server that shuts down gracefully on Ctrl-C (SIGINT) or SIGTERM: it stops
 * accepting, lets every open connection finish its answer within a grace
 * period, closes what is left, and exits with code 0.
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
  onClose: (info) => console.log(`Connection #${info.id} done`),
}, () => new UpperCaseStream());

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => {
    controller.abort();
    console.log(`${signal}: no new clients; finishing open connections`);
  });
}

await server.finished;
console.log("Stopped");
// Signal listeners keep the process alive; the work is done, so leave.
Deno.exit(0);

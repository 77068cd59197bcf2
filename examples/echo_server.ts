/**
 * The echo server for many clients at once: one event loop, one pipeline per
 * connection, no thread or process per client. It logs each client's
 * address when it comes and its bytes and time when it leaves.
 *
 * ```sh
 * deno run -N examples/echo_server.ts [port]
 * ```
 *
 * @module
 */
import { serve } from "@x/sock/server";
import { EchoStream } from "@x/sock/services";

const port = Number(Deno.args[0] ?? 9990);

/** `host:port`, with brackets around an IPv6 host. */
function show(addr: Deno.Addr): string {
  if (addr.transport !== "tcp") return addr.transport;
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

const server = serve({
  port,
  onListen: (addr) => console.log(`Echo server on ${show(addr)}`),
  onConnect: (info) => console.log(`#${info.id} ${show(info.remoteAddr)} in`),
  onClose: (info) =>
    console.log(
      `#${info.id} ${show(info.remoteAddr)} out: ${info.bytesIn} bytes in, ` +
        `${info.bytesOut} bytes out, ${info.duration.toFixed(1)} ms`,
    ),
}, () => new EchoStream());

await server.finished;

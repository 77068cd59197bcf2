/**
 * A server for `server_bench.ts`, run in its own process:
 * `deno run -N bench/_echo_server.ts --kind <kind>`. It prints its port on
 * stdout and serves until it is killed.
 *
 * Kinds: `bare` (a `conn.read`/`conn.write` loop, one reused buffer),
 * `bare-upper` (the same loop applying `upperCase()`), `sock-echo` and
 * `sock-upper` (`serve()` with the built-in services), `sock-stream`
 * (`serve()` with a service of the user's own, an identity
 * `TransformStream`), `sock-handler` (`serve()` with a handler that pipes
 * `readable` to `writable`) and `pipe` (`ConnStreams` with `pipeTo`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serve } from "../server.ts";
import { EchoStream, upperCase, UpperCaseStream } from "../services.ts";
import { ConnStreams } from "../conn_streams.ts";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: { kind: { type: "string", default: "bare" } },
});
const kind = values.kind!;

async function bareLoop(
  conn: Deno.Conn,
  transform: (bytes: Uint8Array) => Uint8Array,
): Promise<void> {
  const buffer = new Uint8Array(65536);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      const out = transform(buffer.subarray(0, n));
      for (let written = 0; written < n;) {
        written += await conn.write(out.subarray(written));
      }
    }
    await conn.closeWrite();
  } catch { /* the client went away */ }
  conn.close();
}

async function acceptLoop(
  listener: Deno.Listener,
  serveOne: (conn: Deno.Conn) => Promise<void>,
): Promise<void> {
  for await (const conn of listener) serveOne(conn).catch(() => {});
}

const hostname = "127.0.0.1";
let port: number;
if (kind === "bare" || kind === "bare-upper" || kind === "pipe") {
  const listener = Deno.listen({ hostname, port: 0 });
  port = listener.addr.port;
  acceptLoop(
    listener,
    kind === "pipe"
      ? (conn) => {
        const streams = new ConnStreams(conn);
        return streams.readable.pipeTo(streams.writable);
      }
      : (conn) =>
        bareLoop(conn, kind === "bare" ? (bytes) => bytes : upperCase),
  );
} else {
  const services: Record<
    string,
    () => TransformStream<Uint8Array, Uint8Array>
  > = {
    "sock-echo": () => new EchoStream(),
    "sock-upper": () => new UpperCaseStream(),
    "sock-stream": () => new TransformStream<Uint8Array, Uint8Array>(),
  };
  const service = services[kind];
  if (!service && kind !== "sock-handler") {
    throw new TypeError(`Cannot start bench server: unknown kind '${kind}'`);
  }
  const server = serve(
    { hostname, port: 0, maxConnections: 100_000, onError: () => {} },
    service ??
      ((connection) => connection.readable.pipeTo(connection.writable)),
  );
  port = (server.addr as Deno.NetAddr).port;
}
console.log(JSON.stringify({ port }));

/**
 * The reader/writer web-stream shape of `redis_bench.ts`: the RESP codec of
 * `examples/redis_server.ts` through `framed()`'s `readable` and a writer
 * of its `writable`, one awaited write per command, the way the 0.2 manual
 * showed a message server.
 *
 * ```sh
 * deno run -N bench/_redis_streams.ts [port]   # prints "listening on 127.0.0.1:<port>"
 * ```
 *
 * @module
 */

import { framed } from "../framing.ts";
import { serve } from "../server.ts";
import { execute, resp } from "../examples/redis_server.ts";

const store = new Map<string, Uint8Array>();

serve({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
  onListen: (addr) =>
    console.log(`listening on 127.0.0.1:${(addr as Deno.NetAddr).port}`),
}, async (connection) => {
  const { readable, writable } = framed(connection, resp());
  const writer = writable.getWriter();
  for await (const args of readable) {
    await writer.write(execute(args, store));
  }
  await writer.close();
});

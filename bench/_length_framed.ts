/**
 * The `framed()` servers of `framed_bench.ts`: an echo of length-prefixed
 * frames through `framed(connection, lengthPrefixed())` under `serve()`,
 * in the recommended shape (a message at a time, each write awaited), or
 * with `batch` as the second argument in the batch shape (each read's
 * frames as one array, written without a promise each: the loop waits for
 * room in the write buffer before it reads on).
 *
 * ```sh
 * deno run -N bench/_length_framed.ts [port] [batch]   # prints "listening on 127.0.0.1:<port>"
 * ```
 *
 * @module
 */

import { framed, lengthPrefixed } from "../framing.ts";
import { serve } from "../server.ts";

const batch = Deno.args[1] === "batch";
const codec = lengthPrefixed({ maxFrameLength: 65536 });

serve({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
  onListen: (addr) =>
    console.log(`listening on 127.0.0.1:${(addr as Deno.NetAddr).port}`),
}, async (connection) => {
  if (batch) {
    const messages = framed(connection, codec, { batch: true });
    for await (const frames of messages) {
      for (const frame of frames) messages.write(frame);
    }
    await messages.closeWrite();
  } else {
    const messages = framed(connection, codec);
    for await (const frame of messages) await messages.write(frame);
    await messages.closeWrite();
  }
});

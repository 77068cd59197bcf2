/**
 * A length-prefixed request/response protocol: each message is a 4-byte
 * big-endian length (the default layout, preset `"uint32be"`) and then that
 * many bytes, so messages may hold any bytes, newlines included. The server
 * answers each request (a JSON `{ "op", "args" }`) with a JSON result;
 * strings are written as UTF-8. `maxFrameLength` bounds what each side reads
 * and buffers: a larger frame is a `FrameTooLargeError`, and a frame's
 * buffer grows only as its bytes arrive, never to the announced length up
 * front. What a side writes is limited only by the length field (or by
 * `maxEncodedLength` when set).
 *
 * ```sh
 * deno run -N examples/length_prefixed.ts
 * ```
 *
 * @module
 */
import { framed, lengthPrefixed } from "@x/sock/framing";

const codec = lengthPrefixed({ preset: "uint32be", maxFrameLength: 1024 });
const decoder = new TextDecoder();

using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
const served = listener.accept().then(async (conn) => {
  const { readable, writable } = framed(conn, codec);
  const writer = writable.getWriter();
  try {
    for await (const request of readable) {
      const { op, args } = JSON.parse(decoder.decode(request));
      const result = op === "sum"
        ? args.reduce((a: number, b: number) => a + b, 0)
        : op === "join"
        ? args.join("\n")
        : null;
      await writer.write(JSON.stringify({ op, result }));
    }
  } catch (error) {
    console.log(`server: ${(error as Error).message}`);
  }
  await writer.close();
});

const { readable, writable } = framed(
  await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  codec,
);
const requests = [
  { op: "sum", args: [1, 2, 3, 4] },
  { op: "join", args: ["multi", "line"] },
];
const writer = writable.getWriter();
for (const request of requests) {
  await writer.write(JSON.stringify(request));
}
await writer.close();
for await (const response of readable) {
  console.log(`client: ${decoder.decode(response)}`);
}
await served;

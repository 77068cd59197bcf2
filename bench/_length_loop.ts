/**
 * The baseline of `framed_bench.ts`: an echo of length-prefixed frames (a
 * 4-byte big-endian length, then the payload) written by hand on bare
 * `Deno.listen` — one 1 MiB read buffer per connection, `setNoDelay`, the
 * frames found in place, each echoed (header and payload) into one output
 * buffer, one write per read, a frame cut short moved to the front.
 *
 * ```sh
 * deno run -N bench/_length_loop.ts [port]   # prints "listening on 127.0.0.1:<port>"
 * ```
 *
 * @module
 */

const READ_SIZE = 1 << 20;
const MAX_FRAME = 65536;

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

async function echo(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const input = new Uint8Array(READ_SIZE);
  let output = new Uint8Array(65536);
  let filled = 0;
  try {
    while (true) {
      const n = await conn.read(input.subarray(filled));
      if (n === null) break;
      filled += n;
      let at = 0;
      let out = 0;
      while (filled - at >= 4) {
        const length = ((input[at]! << 24) | (input[at + 1]! << 16) |
          (input[at + 2]! << 8) | input[at + 3]!) >>> 0;
        if (length > MAX_FRAME) {
          throw new RangeError(`Frame of ${length} bytes`);
        }
        if (filled - at < 4 + length) break;
        if (out + 4 + length > output.length) {
          const grown = new Uint8Array(output.length * 2 + 4 + length);
          grown.set(output.subarray(0, out));
          output = grown;
        }
        output[out] = length >>> 24;
        output[out + 1] = (length >>> 16) & 0xff;
        output[out + 2] = (length >>> 8) & 0xff;
        output[out + 3] = length & 0xff;
        output.set(input.subarray(at + 4, at + 4 + length), out + 4);
        out += 4 + length;
        at += 4 + length;
      }
      if (out > 0) await writeAll(conn, output.subarray(0, out));
      if (at < filled) input.copyWithin(0, at, filled);
      filled -= at;
    }
  } catch {
    // The client went away, or sent a frame too large.
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  const listener = Deno.listen({
    hostname: "127.0.0.1",
    port: Number(Deno.args[0] ?? 0),
  });
  console.log(`listening on 127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) echo(conn);
}

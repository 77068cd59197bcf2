/**
 * The character generator service of RFC 864: {@linkcode chargen}, a
 * `serve()` handler writing one shared block of lines at the reader's pace.
 *
 * ```ts
 * import { CHARGEN_LINE_LENGTH } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHARGEN_LINE_LENGTH, 72);
 * ```
 *
 * @module
 */

import { isNetworkError } from "../_errors.ts";
import type { ServiceConnection, ServiceContext } from "./types.ts";

/**
 * Length of a chargen line, without its "\r\n" (RFC 864).
 *
 * @example The size of a line on the wire
 * ```ts
 * import { CHARGEN_LINE_LENGTH } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHARGEN_LINE_LENGTH, 72);
 * const lineBytes = CHARGEN_LINE_LENGTH + 2; // with "\r\n"
 * assert.equal(lineBytes, 74);
 * ```
 */
export const CHARGEN_LINE_LENGTH = 72;

/** The 95 printable ASCII characters chargen cycles through, from " ". */
const PRINTABLE = 95;

/**
 * Nine full cycles of chargen lines (95 lines of 74 bytes each, 63270
 * bytes): the same bytes repeat, so one buffer serves every write of every
 * connection. Nobody writes to it after this.
 */
const CHARGEN_BLOCK: Uint8Array = (() => {
  const lineBytes = CHARGEN_LINE_LENGTH + 2;
  const cycle = PRINTABLE * lineBytes;
  const block = new Uint8Array(cycle * 9);
  for (let line = 0; line < PRINTABLE; line++) {
    const start = line * lineBytes;
    for (let i = 0; i < CHARGEN_LINE_LENGTH; i++) {
      block[start + i] = 0x20 + (line + i) % PRINTABLE;
    }
    block[start + CHARGEN_LINE_LENGTH] = 0x0d;
    block[start + CHARGEN_LINE_LENGTH + 1] = 0x0a;
  }
  for (let copy = 1; copy < 9; copy++) {
    block.copyWithin(copy * cycle, 0, cycle);
  }
  return block;
})();

/**
 * The character generator service of RFC 864, as a `serve()` handler: sends
 * lines of 72 printable ASCII characters and "\r\n", each line starting one
 * character further along the 95 characters from " " to "~", until the
 * client goes away. Input is read and thrown away; the client's FIN alone
 * does not stop the lines.
 *
 * It is a handler rather than a `TransformStream` because its output is not
 * driven by input. It writes through `connection.writable` and waits for the
 * stream's `ready` before each write of about 62 KiB, so a client that reads
 * slowly slows it down and nothing piles up in memory.
 *
 * On shutdown (`context.shutdown` aborts) it stops after the lines in hand
 * and sends our FIN, so the client sees a clean end.
 *
 * @param connection The client's connection.
 * @param context The server's context; only its `shutdown` signal is used.
 * @returns A promise that fulfils once the client has gone (a write failed as
 * the connection was reset or closed), `connection.signal` aborted or our FIN
 * went out on shutdown, and rejects on any other error.
 *
 * @example Read the first lines, then hang up
 * ```ts
 * import { CHARGEN_LINE_LENGTH, chargen } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, chargen);
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const buffer = new Uint8Array(2 * (CHARGEN_LINE_LENGTH + 2));
 * let filled = 0;
 * while (filled < buffer.length) {
 *   filled += await conn.read(buffer.subarray(filled)) ?? 0;
 * }
 * conn.close(); // chargen stops at its next write
 * const [first, second] = new TextDecoder().decode(buffer).split("\r\n");
 * assert.equal(first, ` !"#$%&'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_\`abcdefg`);
 * assert.equal(second, first.slice(1) + "h");
 * ```
 */
export async function chargen(
  connection: ServiceConnection,
  context: ServiceContext = {},
): Promise<void> {
  const { signal } = connection;
  const { shutdown } = context;
  // RFC 864 throws input away; reading it keeps a client that sends from
  // stalling. Its end or error tells nothing the writes do not.
  connection.readable.pipeTo(new WritableStream()).catch(() => {});
  const writer = connection.writable.getWriter();
  const stop = Promise.withResolvers<void>();
  const onStop = () => stop.resolve();
  signal.addEventListener("abort", onStop, { once: true });
  shutdown?.addEventListener("abort", onStop, { once: true });
  try {
    while (!signal.aborted && !shutdown?.aborted) {
      // Its error shows in `ready`, which waits for room in the stream.
      writer.write(CHARGEN_BLOCK).catch(() => {});
      await Promise.race([writer.ready, stop.promise]);
    }
    // On shutdown: the blocks written so far, then our FIN.
    if (!signal.aborted) await writer.close();
  } catch (error) {
    if (!signal.aborted && !isNetworkError(error)) throw error;
  } finally {
    signal.removeEventListener("abort", onStop);
    shutdown?.removeEventListener("abort", onStop);
    writer.releaseLock();
  }
}

/**
 * The classic per-connection services, in the shape that fits each:
 *
 * - services that map bytes to bytes are `TransformStream`s (built on
 *   {@linkcode SyncTransformStream}, so the connection engine can run them
 *   without streams): {@linkcode UpperCaseStream}, {@linkcode EchoStream}
 *   and {@linkcode DiscardStream} (RFC 863). A `serve()` handler returns a
 *   fresh one per connection.
 * - services whose output is not driven by input are handler functions
 *   `(connection) => Promise<void>`, passed to `serve()` as they are:
 *   {@linkcode chargen} (RFC 864) and {@linkcode daytime} (RFC 867).
 * - {@linkcode execHandler} builds a handler that runs a program per
 *   connection, wired to the client with half-close both ways.
 *
 * ```ts
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const text = await new Response(
 *   ReadableStream.from(["héllo, ", "wörld"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new UpperCaseStream()),
 * ).text();
 * assert.equal(text, "HéLLO, WöRLD");
 * ```
 *
 * @module
 */

import { SyncTransformStream } from "./sync_transform.ts";
import { isNetworkError } from "./_errors.ts";

export { exec, execHandler, type ExecOptions, parseCommand } from "./_exec.ts";

/**
 * What the handler services ({@linkcode chargen}, {@linkcode daytime}) use of
 * a connection. Any `Connection` has all of it, such as the one `serve()`
 * hands to its handler; so does any object with half-close safe streams and
 * a signal.
 *
 * @example Any object with the three members will do
 * ```ts
 * import { daytime, type ServiceConnection } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * // The daytime line, collected in memory instead of sent to a client.
 * let text = "";
 * const connection: ServiceConnection = {
 *   readable: ReadableStream.from([]), // the client sends nothing
 *   writable: new WritableStream({
 *     write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 *   }),
 *   signal: new AbortController().signal, // never aborts
 * };
 * await daytime(connection);
 * assert.match(text, /^[A-Z][a-z]+day, .* \d\d:\d\d:\d\d-UTC\r\n$/);
 * ```
 */
export interface ServiceConnection {
  /** What the client sends; ends at the client's FIN. */
  readonly readable: ReadableStream<Uint8Array>;
  /** What we send; closing it sends our FIN. */
  readonly writable: WritableStream<Uint8Array>;
  /** Aborts when the connection is closed before its end. */
  readonly signal: AbortSignal;
}

/**
 * What a handler service uses of the context `serve()` gives its handler
 * (`HandlerContext`); all of it optional.
 *
 * @example Stop chargen as a server shutdown would
 * ```ts
 * import {
 *   CHARGEN_LINE_LENGTH,
 *   chargen,
 *   type ServiceConnection,
 *   type ServiceContext,
 * } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const shutdown = new AbortController();
 * const context: ServiceContext = { shutdown: shutdown.signal };
 * let sent = 0;
 * let finished = false;
 * const connection: ServiceConnection = {
 *   readable: ReadableStream.from([]),
 *   writable: new WritableStream({
 *     write(chunk) {
 *       sent += chunk.length;
 *       shutdown.abort(); // after the first block of lines
 *     },
 *     close: () => void (finished = true), // our FIN
 *   }),
 *   signal: new AbortController().signal,
 * };
 * await chargen(connection, context);
 * assert.ok(finished);
 * assert.ok(sent > 0);
 * assert.equal(sent % (CHARGEN_LINE_LENGTH + 2), 0); // whole lines only
 * ```
 */
export interface ServiceContext {
  /**
   * Aborts when the server starts to shut down: a service that would run for
   * ever then ends at a clean boundary.
   */
  readonly shutdown?: AbortSignal;
}

/**
 * Upper-cases the ASCII letters `a` to `z` and passes every other byte on
 * unchanged, so UTF-8 text and binary data come through intact under any
 * chunking. A chunk without a lower-case letter is passed on as it is;
 * otherwise a changed copy is, and the input chunk is never modified.
 *
 * @example Upper-case bytes
 * ```ts
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const bytes = await Array.fromAsync(
 *   ReadableStream.from([new Uint8Array([0x61, 0x7a, 0xc3, 0xa9, 0x00])])
 *     .pipeThrough(new UpperCaseStream()),
 * );
 * assert.deepEqual(bytes, [new Uint8Array([0x41, 0x5a, 0xc3, 0xa9, 0x00])]);
 * ```
 */
export class UpperCaseStream
  extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({ transform: (chunk, emit) => emit(upperCase(chunk)) });
  }
}

/**
 * The identity service: passes every chunk on as it is, without a copy.
 *
 * @example Echo over a connection
 * ```ts
 * import { EchoStream } from "@x/sock/services";
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new Connection(conn);
 *   return readable.pipeThrough(new EchoStream()).pipeTo(writable);
 * });
 * const client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await ReadableStream.from([new Uint8Array([1, 2, 3])])
 *   .pipeTo(client.writable);
 * const echoed = await new Response(client.readable).bytes();
 * assert.deepEqual(echoed, new Uint8Array([1, 2, 3]));
 * await served;
 * ```
 */
export class EchoStream extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({ transform: (chunk, emit) => emit(chunk) });
  }
}

/**
 * Upper-cases the ASCII letters `a` to `z` in `bytes`, the byte-level work of
 * {@linkcode UpperCaseStream}.
 *
 * @param bytes The input; never modified.
 * @returns `bytes` itself when it holds no lower-case ASCII letter, a changed
 * copy otherwise.
 *
 * @example Upper-case a UTF-8 string's bytes
 * ```ts
 * import { upperCase } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const bytes = upperCase(new TextEncoder().encode("ça va"));
 * assert.equal(new TextDecoder().decode(bytes), "çA VA");
 * ```
 */
export function upperCase(bytes: Uint8Array): Uint8Array {
  const length = bytes.length;
  // Scan first: text that is already upper case, and most binary data,
  // needs no copy at all. Four bytes at a time where they are aligned.
  let i = 0;
  const head = Math.min(length, (4 - (bytes.byteOffset & 3)) & 3);
  while (i < head && !isLower(bytes[i]!)) i++;
  if (i === head && length - i >= 4) {
    const words = new Int32Array(
      bytes.buffer,
      bytes.byteOffset + i,
      (length - i) >>> 2,
    );
    let w = 0;
    while (w < words.length && lowerMask(words[w]!) === 0) w++;
    i += w << 2;
  }
  while (i < length && !isLower(bytes[i]!)) i++;
  if (i === length) return bytes;

  // The copy is aligned, being at offset 0 of its own buffer; the input is
  // read a word at a time too when it is aligned, else copied first.
  const out = new Uint8Array(length);
  const words = new Int32Array(out.buffer, 0, length >>> 2);
  const aligned = (bytes.byteOffset & 3) === 0;
  let source: Int32Array<ArrayBufferLike> = words;
  if (aligned) {
    source = new Int32Array(bytes.buffer, bytes.byteOffset, words.length);
  } else {
    out.set(bytes);
  }
  for (let w = 0; w < words.length; w++) {
    const word = source[w]!;
    // A letter's mask byte is 0x80; shifted right by two it is 0x20, the
    // bit that tells lower from upper case.
    words[w] = word ^ (lowerMask(word) >>> 2);
  }
  for (let j = words.length << 2; j < length; j++) {
    const byte = bytes[j]!;
    out[j] = isLower(byte) ? byte - 0x20 : byte;
  }
  return out;
}

/**
 * The discard service of RFC 863: reads everything the client sends and
 * drops it, emitting nothing. Our FIN follows the client's, so a client can
 * tell that every byte was taken.
 *
 * @example Discard over a connection
 * ```ts
 * import { DiscardStream } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const closed = Promise.withResolvers<number>();
 * await using server = serve({
 *   port: 0,
 *   onClose: (info) => closed.resolve(info.bytesIn),
 * }, () => new DiscardStream());
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new Uint8Array(1000));
 * await conn.closeWrite();
 * assert.equal(await conn.read(new Uint8Array(1)), null); // nothing back
 * assert.equal(await closed.promise, 1000);
 * ```
 */
export class DiscardStream extends SyncTransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    super({ transform() {} });
  }
}

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

/**
 * The daytime service of RFC 867, as a `serve()` handler: sends one line
 * with the current date and time in UTC, as {@linkcode formatDaytime}
 * writes it, then our FIN. Input is not read.
 *
 * @param connection The client's connection.
 * @returns A promise that fulfils once the line is sent and our FIN with it.
 *
 * @example Ask for the time
 * ```ts
 * import { daytime } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, daytime);
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const line = await new Response(conn.readable).text(); // up to our FIN
 * assert.match(line, /^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$/);
 * ```
 */
export async function daytime(connection: ServiceConnection): Promise<void> {
  const writer = connection.writable.getWriter();
  try {
    await writer.write(new TextEncoder().encode(formatDaytime(new Date())));
    await writer.close();
  } finally {
    writer.releaseLock();
  }
}

const WEEKDAYS = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/**
 * Formats `date` as the daytime service's line, in the style RFC 867
 * suggests ("Weekday, Month Day, Year HH:MM:SS-Zone"), always in UTC.
 *
 * @param date The moment to format.
 * @returns The line, ending in "\r\n".
 * @throws {RangeError} When `date` is an invalid date.
 *
 * @example Format a fixed date
 * ```ts
 * import { formatDaytime } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatDaytime(new Date("1982-02-23T01:37:43Z")),
 *   "Tuesday, February 23, 1982 01:37:43-UTC\r\n",
 * );
 * ```
 */
export function formatDaytime(date: Date): string {
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(
      "Cannot format daytime as the date must be valid: current value is Invalid Date",
    );
  }
  const two = (n: number) => String(n).padStart(2, "0");
  return `${WEEKDAYS[date.getUTCDay()]}, ${
    MONTHS[date.getUTCMonth()]
  } ${date.getUTCDate()}, ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${
    two(date.getUTCMinutes())
  }:${two(date.getUTCSeconds())}-UTC\r\n`;
}

function isLower(byte: number): boolean {
  return byte >= 0x61 && byte <= 0x7a;
}

/**
 * For each of the four bytes of `word`, 0x80 if it is `a`-`z`, else 0. The
 * low seven bits plus 0x1f carry into the top bit from 0x61 up, plus 0x05
 * from 0x7b up; a byte with its top bit set is never a letter.
 */
function lowerMask(word: number): number {
  const low = word & 0x7f7f7f7f;
  return (low + 0x1f1f1f1f) & ~(low + 0x05050505) & ~word & 0x80808080;
}

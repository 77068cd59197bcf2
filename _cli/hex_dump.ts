/**
 * Hex dumps of connection traffic, for the programs' `-x, --hex-dump`: one
 * line per 16 bytes with the direction, the offset in that direction's
 * stream, the bytes in hex and as ASCII.
 *
 * ```text
 * > 00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a           |hello, world.|
 * < 00000000  48 45 4c 4c 4f 2c 20 57  4f 52 4c 44 0a           |HELLO, WORLD.|
 * ```
 *
 * `>` marks bytes we sent, `<` bytes we received. Each chunk starts a new
 * line, so the dump shows how the bytes were split; offsets count each
 * direction of each connection from 0. With a label (a server dumping many
 * connections into one file), each line starts with it: `#3 > 00000000 ...`.
 *
 * ```ts
 * import { HexDump } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks: Uint8Array[] = [];
 * const dump = new HexDump(new WritableStream({ write: (c) => void chunks.push(c) }));
 * const channel = dump.channel();
 * await channel.write(">", new TextEncoder().encode("hi\n"));
 * await dump.close();
 * assert.equal(
 *   new TextDecoder().decode(chunks[0]),
 *   "> 00000000  68 69 0a" + " ".repeat(42) + "|hi.|\n",
 * );
 * ```
 *
 * @module
 */

/**
 * Which way the bytes went: `">"` sent by us, `"<"` received by us.
 *
 * @example Each direction counts its own offsets
 * ```ts
 * import { HexDump, type HexDumpDirection } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const dump = new HexDump(new WritableStream()); // dumps to nowhere
 * const channel = dump.channel();
 * const exchange: [HexDumpDirection, string][] = [[">", "ping"], ["<", "pong!"]];
 * for (const [direction, text] of exchange) {
 *   await channel.write(direction, new TextEncoder().encode(text));
 * }
 * await dump.close();
 * assert.equal(channel.offset(">"), 4);
 * assert.equal(channel.offset("<"), 5);
 * ```
 */
export type HexDumpDirection = ">" | "<";

/**
 * Options for {@linkcode formatHexDump}.
 *
 * @example Bytes received, from offset 16, for connection #3
 * ```ts
 * import { formatHexDump, type HexDumpFormatOptions } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const options: HexDumpFormatOptions = { direction: "<", offset: 16, label: "#3" };
 * assert.equal(
 *   formatHexDump(new Uint8Array([0x4f, 0x4b]), options),
 *   "#3 < 00000010  4f 4b" + " ".repeat(45) + "|OK|\n",
 * );
 * ```
 */
export interface HexDumpFormatOptions {
  /** Which way the bytes went; required. */
  direction: HexDumpDirection;
  /**
   * The offset of the first byte in its direction's stream.
   *
   * @default {0}
   */
  offset?: number;
  /**
   * Put before each line, with a space, such as a connection's `#3`.
   *
   * @default {undefined}
   */
  label?: string;
}

const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
/** Width of the hex column: 16 bytes as "xx ", one more space in the middle. */
const HEX_WIDTH = 16 * 3 + 1;

/**
 * Formats `bytes` as hex dump lines: direction, offset (8 hex digits, more
 * past 4 GiB), 16 bytes in hex with a gap after the eighth, then the bytes
 * as ASCII between bars, with `.` for anything outside " " to "~".
 *
 * @param bytes The bytes; none gives "".
 * @param options Direction, starting offset, label.
 * @returns The lines, each ending in "\n".
 * @throws {TypeError} When the direction is not ">" or "<".
 * @throws {RangeError} When the offset is not a non-negative integer.
 *
 * @example Two lines with a label
 * ```ts
 * import { formatHexDump } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode("0123456789abcdef\r\n");
 * assert.equal(
 *   formatHexDump(bytes, { direction: "<", offset: 32, label: "#3" }),
 *   "#3 < 00000020  30 31 32 33 34 35 36 37  38 39 61 62 63 64 65 66  |0123456789abcdef|\n" +
 *     "#3 < 00000030  0d 0a" + " ".repeat(45) + "|..|\n",
 * );
 * ```
 */
export function formatHexDump(
  bytes: Uint8Array,
  options: HexDumpFormatOptions,
): string {
  const { direction, offset = 0, label } = options;
  if (direction !== ">" && direction !== "<") {
    throw new TypeError(
      `Cannot format hex dump as direction must be ">" or "<": current value is ${
        JSON.stringify(direction)
      }`,
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    throw new RangeError(
      `Cannot format hex dump as offset must be an integer >= 0: current value is ${offset}`,
    );
  }
  const head = label === undefined ? `${direction} ` : `${label} ${direction} `;
  let out = "";
  for (let start = 0; start < bytes.length; start += 16) {
    const end = Math.min(start + 16, bytes.length);
    let hex = "";
    let ascii = "";
    for (let i = start; i < end; i++) {
      const byte = bytes[i]!;
      hex += HEX[byte] + (i - start === 7 ? "  " : " ");
      ascii += byte >= 0x20 && byte <= 0x7e ? String.fromCharCode(byte) : ".";
    }
    out += `${head}${(offset + start).toString(16).padStart(8, "0")}  ${
      hex.padEnd(HEX_WIDTH)
    } |${ascii}|\n`;
  }
  return out;
}

/**
 * A sink that writes each chunk straight to `file` before taking the next,
 * so a dump can be read (`tail -f`) while it is written; closing or
 * aborting the sink closes the file.
 *
 * Use it rather than a file's own `writable`: Deno's `FsFile.writable`
 * keeps writes in a buffer (64 KiB in Deno 2.9) until it fills or the
 * stream closes, so a dump of a few lines would show only at exit.
 *
 * @param file Where the bytes go, such as a `Deno.FsFile` opened for
 * writing.
 * @returns The sink; a failed write errors it and closes the file.
 *
 * @example Each line is in the file as soon as its write is done
 * ```ts
 * import { fileSink, HexDump } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * const dump = new HexDump(
 *   fileSink(await Deno.open(path, { write: true, truncate: true })),
 * );
 * await dump.note("#1 opened");
 * assert.equal(await Deno.readTextFile(path), "#1 opened\n");
 * await dump.close(); // closes the file too
 * await Deno.remove(path);
 * ```
 */
export function fileSink(
  file: { write(bytes: Uint8Array): Promise<number>; close(): void },
): WritableStream<Uint8Array> {
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    file.close();
  };
  return new WritableStream({
    async write(chunk) {
      try {
        for (let n = 0; n < chunk.length;) {
          n += await file.write(chunk.subarray(n));
        }
      } catch (error) {
        try {
          close();
        } catch { /* the write's error is the one to report */ }
        throw error;
      }
    },
    close,
    abort: close,
  });
}

/**
 * Where a program's `-x <file>` dump goes: `"-"` for stderr (left open),
 * else the file, created or truncated, written through as {@linkcode fileSink}
 * does.
 *
 * @param path The file, or `"-"`.
 * @returns The sink.
 * @throws The error of opening the file, for the caller to word.
 *
 * @example A dump to a temporary file
 * ```ts
 * import { HexDump, openDumpSink } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * const dump = new HexDump(await openDumpSink(path));
 * await dump.channel("#1").write(">", new TextEncoder().encode("hi"));
 * assert.match(await Deno.readTextFile(path), /\|hi\|/);
 * await dump.close();
 * await Deno.remove(path);
 * ```
 */
export async function openDumpSink(
  path: string,
): Promise<WritableStream<Uint8Array>> {
  if (path === "-") {
    return fileSink({ write: (bytes) => Deno.stderr.write(bytes), close() {} });
  }
  return fileSink(
    await Deno.open(path, { write: true, create: true, truncate: true }),
  );
}

/**
 * A hex dump written to one sink (a file's `writable`, say), shared by any
 * number of {@linkcode HexDumpChannel}s: lines reach the sink whole and in
 * the order they were written.
 *
 * @example Dump both directions of an exchange to a file
 * ```ts
 * import { fileSink, HexDump } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * const file = await Deno.open(path, { write: true, truncate: true });
 * const dump = new HexDump(fileSink(file));
 * const channel = dump.channel("#1");
 * await channel.write(">", new TextEncoder().encode("ping"));
 * await channel.write("<", new TextEncoder().encode("pong"));
 * await channel.write(">", new TextEncoder().encode("!"));
 * await dump.close(); // closes the file too
 * assert.deepEqual((await Deno.readTextFile(path)).split("\n"), [
 *   "#1 > 00000000  70 69 6e 67" + " ".repeat(39) + "|ping|",
 *   "#1 < 00000000  70 6f 6e 67" + " ".repeat(39) + "|pong|",
 *   "#1 > 00000004  21" + " ".repeat(48) + "|!|",
 *   "",
 * ]);
 * await Deno.remove(path);
 * ```
 */
export class HexDump {
  #writer: WritableStreamDefaultWriter<Uint8Array>;
  #encoder = new TextEncoder();
  #closing = false;

  /**
   * Starts a dump; from here on it owns `sink`.
   *
   * @param sink Where the text goes, UTF-8 encoded.
   */
  constructor(sink: WritableStream<Uint8Array>) {
    this.#writer = sink.getWriter();
    // Errors are reported by the write that meets them.
    this.#writer.closed.catch(() => {});
  }

  /**
   * A channel for one connection.
   *
   * @param label Put before each of its lines, such as `#3`; none for a
   * program with one connection.
   * @returns The channel, with offsets from 0.
   */
  channel(label?: string): HexDumpChannel {
    return new HexDumpChannel(this, label);
  }

  /**
   * Writes `line` and "\n" as they are, such as a note that a connection
   * opened.
   *
   * @param line The text, without "\n".
   * @returns A promise that fulfils when the sink has room for more.
   */
  note(line: string): Promise<void> {
    return this.writeText(`${line}\n`);
  }

  /**
   * Writes `text` to the sink; for {@linkcode HexDumpChannel}.
   *
   * @param text Whole lines.
   * @returns A promise that fulfils when the sink has room for more, and
   * rejects with the sink's error.
   */
  async writeText(text: string): Promise<void> {
    if (this.#closing) {
      throw new TypeError("Cannot write hex dump as it is closed");
    }
    if (text === "") return;
    // The write is queued now, so lines keep their order; waiting for
    // `ready` rather than for the write lets the next chunk be formatted
    // while this one is written.
    this.#writer.write(this.#encoder.encode(text)).catch(() => {});
    await this.#writer.ready;
  }

  /**
   * Writes what is queued and closes the sink.
   *
   * @returns A promise that fulfils once the sink has closed.
   */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#writer.close();
  }
}

/**
 * One connection's part of a {@linkcode HexDump}, counting offsets for each
 * direction.
 *
 * @example Tap a stream: dump what passes through it, unchanged
 * ```ts
 * import { HexDump } from "./hex_dump.ts";
 * import assert from "node:assert/strict";
 *
 * let text = "";
 * const dump = new HexDump(new WritableStream({
 *   write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 * }));
 * const channel = dump.channel();
 * const passed = await new Response(
 *   ReadableStream.from([new Uint8Array([1, 2]), new Uint8Array([3])])
 *     .pipeThrough(channel.tap("<")),
 * ).bytes();
 * await dump.close();
 * assert.deepEqual(passed, new Uint8Array([1, 2, 3]));
 * assert.equal(channel.offset("<"), 3);
 * assert.deepEqual(text.split("\n").map((line) => line.slice(0, 16)), [
 *   "< 00000000  01 0",
 *   "< 00000002  03  ",
 *   "",
 * ]);
 * ```
 */
export class HexDumpChannel {
  /** Put before each line, if any. */
  readonly label?: string;
  #dump: HexDump;
  #sent = 0;
  #received = 0;

  /**
   * Creates a channel; see {@linkcode HexDump.prototype.channel}.
   *
   * @param dump The dump to write to.
   * @param label Put before each line.
   */
  constructor(dump: HexDump, label?: string) {
    this.#dump = dump;
    this.label = label;
  }

  /**
   * How many bytes have been dumped in a direction.
   *
   * @param direction Which way.
   * @returns The count, the offset of the next byte.
   */
  offset(direction: HexDumpDirection): number {
    return direction === ">" ? this.#sent : this.#received;
  }

  /**
   * Dumps `bytes`. They are formatted before this returns, so the caller
   * may reuse its buffer at once; await the promise to keep pace with the
   * sink.
   *
   * @param direction Which way the bytes went.
   * @param bytes The bytes.
   * @returns A promise that fulfils when the sink has room for more.
   */
  write(direction: HexDumpDirection, bytes: Uint8Array): Promise<void> {
    let text: string;
    try {
      text = formatHexDump(bytes, {
        direction,
        offset: this.offset(direction),
        label: this.label,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    if (direction === ">") this.#sent += bytes.length;
    else this.#received += bytes.length;
    return this.#dump.writeText(text);
  }

  /**
   * A pass-through stream that dumps each chunk on its way, keeping pace
   * with the dump's sink.
   *
   * @param direction Which way the bytes that pass go.
   * @returns The stream; chunks come out unchanged.
   */
  tap(direction: HexDumpDirection): TransformStream<Uint8Array, Uint8Array> {
    return new TransformStream({
      transform: async (chunk, controller) => {
        const written = this.write(direction, chunk);
        controller.enqueue(chunk);
        await written;
      },
    });
  }
}

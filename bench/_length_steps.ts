/**
 * The steps from the hand-written loop of `framed_bench.ts`
 * (`bench/_length_loop.ts`) to the shape `framed()` offers, each adding one
 * thing the shape needs and nothing of this module, so that the benchmark
 * can say what each costs on its own (`--steps`):
 *
 * - `views`: each frame becomes a message (a view of its bytes, gathered in
 *   an array per read) before it is echoed from that array;
 * - `owned`: as `views`, with every read into memory of its own (carved from
 *   16 KiB blocks, never reused), as messages that stay valid need;
 * - `iterator`: as `owned`, with the messages handed out by an async
 *   iterator (`for await`), one promise per message;
 * - `awaited`: as `iterator`, with each reply's write awaited (a promise
 *   that is already resolved).
 *
 * ```sh
 * deno run -N bench/_length_steps.ts <port> <views|owned|iterator|awaited>
 * ```
 *
 * @module
 */

const READ_SIZE = 65536;
const BLOCK = 16384;
const MAX_FRAME = 65536;
const step = Deno.args[1] ?? "views";
const owned = step !== "views";
const iterate = step === "iterator" || step === "awaited";
const awaited = step === "awaited";
if (!["views", "owned", "iterator", "awaited"].includes(step)) {
  throw new TypeError(`Unknown step: ${step}`);
}

let block = new Uint8Array(BLOCK);
let blockUsed = 0;

/** A fresh window of `size` bytes, as the module's owned reads take. */
function window(size: number): Uint8Array {
  if (size > BLOCK >> 2) return new Uint8Array(size);
  if (BLOCK - blockUsed < size) {
    block = new Uint8Array(BLOCK);
    blockUsed = 0;
  }
  const taken = new Uint8Array(block.buffer, blockUsed, size);
  blockUsed += size;
  return taken;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Echoes `frame` (header and payload) into `output` at `out`. */
function put(output: Uint8Array, out: number, frame: Uint8Array): number {
  const length = frame.length;
  output[out] = length >>> 24;
  output[out + 1] = (length >>> 16) & 0xff;
  output[out + 2] = (length >>> 8) & 0xff;
  output[out + 3] = length & 0xff;
  output.set(frame, out + 4);
  return out + 4 + length;
}

/** The frames of each read, as messages: `views` and `owned`. */
class Frames {
  readonly #conn: Deno.Conn;
  #input: Uint8Array = new Uint8Array(READ_SIZE);
  #filled = 0;
  #window: Uint8Array = new Uint8Array(0);
  #used = 0;
  #last = 0;
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** The next read's whole frames, or null at the end. */
  async read(): Promise<Uint8Array[] | null> {
    while (true) {
      let input = this.#input;
      if (owned) {
        // Each read goes on in the window where the last one ended, while
        // the window has room for another like it; the part of a frame cut
        // short moves along.
        const need = Math.max(this.#last, 256) + this.#filled;
        if (this.#window.length - this.#used < need) {
          this.#window = window(Math.max(4096, need * 2));
          this.#used = 0;
        }
        const next = this.#window.subarray(this.#used);
        next.set(input.subarray(0, this.#filled));
        input = this.#input = next;
      }
      const n = await this.#conn.read(input.subarray(this.#filled));
      if (n === null) return null;
      this.#last = n;
      const filled = this.#filled + n;
      const frames: Uint8Array[] = [];
      let at = 0;
      while (filled - at >= 4) {
        const length = ((input[at]! << 24) | (input[at + 1]! << 16) |
          (input[at + 2]! << 8) | input[at + 3]!) >>> 0;
        if (length > MAX_FRAME) {
          throw new RangeError(`Frame of ${length} bytes`);
        }
        if (filled - at < 4 + length) break;
        frames.push(
          new Uint8Array(input.buffer, input.byteOffset + at + 4, length),
        );
        at += 4 + length;
      }
      if (owned) {
        this.#used += filled;
        this.#input = input.subarray(at, filled);
        this.#filled = filled - at;
      } else {
        if (at < filled) input.copyWithin(0, at, filled);
        this.#filled = filled - at;
      }
      if (frames.length > 0) return frames;
    }
  }
}

/** One promise per message, as an async iterator hands them out. */
class Messages implements AsyncIterator<Uint8Array> {
  readonly #frames: Frames;
  readonly #flush: () => Promise<void>;
  #queue: Uint8Array[] = [];
  #next = 0;
  constructor(frames: Frames, flush: () => Promise<void>) {
    this.#frames = frames;
    this.#flush = flush;
  }
  next(): Promise<IteratorResult<Uint8Array>> {
    if (this.#next < this.#queue.length) {
      return Promise.resolve({
        done: false,
        value: this.#queue[this.#next++]!,
      });
    }
    return this.#fill();
  }
  async #fill(): Promise<IteratorResult<Uint8Array>> {
    await this.#flush();
    const frames = await this.#frames.read();
    if (frames === null) return { done: true, value: undefined };
    this.#queue = frames;
    this.#next = 1;
    return { done: false, value: frames[0]! };
  }
  [Symbol.asyncIterator](): this {
    return this;
  }
}

async function echo(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const output = new Uint8Array(65536 + 4 + MAX_FRAME);
  let out = 0;
  const flush = async () => {
    if (out > 0) await writeAll(conn, output.subarray(0, out));
    out = 0;
  };
  const frames = new Frames(conn);
  const resolved = Promise.resolve();
  try {
    if (iterate) {
      for await (const frame of new Messages(frames, flush)) {
        out = put(output, out, frame);
        if (awaited) await resolved;
      }
    } else {
      for (let batch; (batch = await frames.read()) !== null;) {
        for (const frame of batch) out = put(output, out, frame);
        await flush();
      }
    }
  } catch {
    // The client went away, or sent a frame too large.
  } finally {
    conn.close();
  }
}

const listener = Deno.listen({
  hostname: "127.0.0.1",
  port: Number(Deno.args[0] ?? 0),
});
console.log(`listening on 127.0.0.1:${listener.addr.port}`);
for await (const conn of listener) echo(conn);

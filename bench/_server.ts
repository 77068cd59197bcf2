/**
 * One server variant for `connection_bench.ts`, run in its own process:
 *
 * ```sh
 * deno run -N --v8-flags=--expose-gc bench/_server.ts --kind <kind>
 * ```
 *
 * It listens on 127.0.0.1 with port 0, prints one JSON line
 * (`{"kind","port","pid","note"?}`, or `{"kind","error"}` when the kind
 * cannot run here) and then answers control lines read
 * from stdin, one JSON line each, so the benchmark can wait for events
 * instead of time:
 *
 * - `stats`: `{"accepted","open","rss","heapUsed","external"}` now (the last
 *   three in KiB, from `Deno.memoryUsage()`);
 * - `until-accepted N`: the same, once `accepted >= N`;
 * - `until-open N`: the same, once `open === N`;
 * - `gc`: runs a full garbage collection (with `--expose-gc`), then `{"gc"}`;
 * - `gc reduce`: the same, as V8 collects under memory pressure: all it can,
 *   and its young generation shrunk back (what V8's memory reducer does by
 *   itself once a process has gone idle).
 *
 * It exits when stdin ends, so it never outlives the benchmark.
 *
 * Kinds that echo (the answer is the input, upper-cased by the `*upper`
 * kinds):
 *
 * - `bare`: the baseline, a plain `Deno.listen` server with a
 *   `conn.read`/`conn.write` loop over one 64 KiB buffer that doubles while
 *   reads fill it, up to 1 MiB, and `setNoDelay(true)`;
 * - `bare-upper`: the same loop upper-casing each read in place, in its
 *   own buffer (`upperCaseInPlace()`, what `UpperCaseStream` runs);
 * - `bare-1k`: the same loop starting at 1 KiB: what a connection costs in
 *   Deno itself while it waits on a read as small as `Connection`'s;
 * - `echo`, `upper`: `serve()` with the built-in `EchoStream` and
 *   `UpperCaseStream`;
 * - `stream`: `serve()` with a user's own plain `TransformStream` (an
 *   identity transform written as a user would);
 * - `stream-upper`: the same, enqueueing `upperCase(chunk)`;
 * - `handler`: `serve()` with a handler that reads `connection.readable`
 *   and writes each chunk to `connection.writable`;
 * - `bare-stream`: the floor of any web-stream service: the bare loop, with
 *   each read in fresh memory (a stream may keep its chunks) handed through
 *   the same user transform as `stream` with a writer and a reader, and
 *   each output chunk written with `conn.write`; no `Connection`;
 * - `conn-pipe`: a plain `Deno.listen` server wrapping each `Deno.Conn` in
 *   `Connection` and running
 *   `connection.readable.pipeThrough(t).pipeTo(connection.writable)` with
 *   the same user transform as `stream`;
 * - `conn-pipe-upper`: the same through the `stream-upper` transform.
 *
 * Kinds of a line protocol (every line in, "+PONG\r\n" out):
 *
 * - `bare-lines`: the baseline, the same plain loop scanning its buffer for
 *   newlines and writing all the answers of one read with one write;
 * - `lines-stream`: `serve()` with a user's plain `TransformStream` that
 *   enqueues one answer per line;
 * - `lines-sync`: `serve()` with the same work as a `SyncTransformStream`
 *   (the opt-in route of `sync_transform.ts`);
 * - `lines-chain`: `serve()` with `chain(decoder, answer)` in a
 *   `SyncTransformStream`, where the decoder is the synchronous transformer
 *   of `lines().decoder()` (only when framing exposes one);
 * - `lines-framed`: `serve()` with a handler in the shape 0.3 recommends:
 *   `const m = framed(connection, lines()); for await (const line of m)
 *   m.write(answer)`, then `m.closeWrite()`;
 * - `lines-framed-rw`: the 0.2 shape, `framed()`'s `readable` read with
 *   `for await` and each answer awaited on a writer of its `writable`;
 * - `lines-framed-batch`: the same with `{ batch: true }` (each read's lines
 *   as one array), answering a batch with writes awaited together;
 * - `lines-conn-pipe`: `Connection` piped through the `lines-stream`
 *   transform, as `conn-pipe`;
 * - `bare-lines-stream`: the `bare-stream` floor with the `lines-stream`
 *   transform.
 *
 * Kinds of the Redis protocol (`flood_bench.ts`):
 *
 * - `redis-loop`: the hand-written loop of `redis_bench.ts`
 *   (`bench/_redis_loop.ts`);
 * - `redis`: `serve()` with `examples/redis_server.ts`'s `serveRedis()`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { serve } from "../server.ts";
import { EchoStream, upperCase, UpperCaseStream } from "../services.ts";
import { upperCaseInPlace } from "../_services/upper.ts";
import { framed, lines } from "../framing.ts";
import {
  chain,
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import { Connection } from "../connection.ts";
import { serveRedis } from "../examples/redis_server.ts";
import { serveConn as redisLoop } from "./_redis_loop.ts";

const LF = 0x0a;
const FIRST_BUFFER = 65536;
const MAX_BUFFER = 1048576;
const PONG = new TextEncoder().encode("+PONG\r\n");
/** What the line encoder of `lines()` turns into "+PONG\r\n". */
const PONG_LINE = new TextEncoder().encode("+PONG\r");

/** A user's transform: identity, written as a user would write it. */
function userEcho(): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(chunk);
    },
  });
}

/** A user's upper-case transform: `upperCase()` on each chunk. */
function userUpper(): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      controller.enqueue(upperCase(chunk));
    },
  });
}

/** Answers every "\n" of its input with "+PONG\r\n". */
const pongTransformer: SyncTransformer<Uint8Array, Uint8Array> = {
  // It keeps nothing of a chunk: the engine may lend it its read buffer.
  input: "borrow",
  transform(chunk, emit) {
    for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
      emit(PONG);
    }
  },
};

/** A user's line service as a plain `TransformStream`: one answer per line. */
function userPong(): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      for (let i = chunk.indexOf(LF); i !== -1; i = chunk.indexOf(LF, i + 1)) {
        controller.enqueue(PONG);
      }
    },
  });
}

/** The chain route, if `lines().decoder()` is a `SyncTransformStream`. */
function chainedPong():
  | (() => TransformStream<Uint8Array, Uint8Array>)
  | undefined {
  const probe = lines().decoder();
  if (!(probe instanceof SyncTransformStream)) return undefined;
  return () => {
    const decoder = lines().decoder() as SyncTransformStream<
      Uint8Array,
      Uint8Array
    >;
    return new SyncTransformStream(
      chain<Uint8Array, Uint8Array, Uint8Array>(decoder.transformer, {
        input: "borrow",
        transform: (_line, emit) => emit(PONG),
      }),
    );
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** The baseline: one buffer from 64 KiB, doubling while reads fill it. */
async function bareLoop(
  conn: Deno.TcpConn,
  transform: (bytes: Uint8Array) => Uint8Array,
  first = FIRST_BUFFER,
): Promise<void> {
  conn.setNoDelay(true);
  let buffer = new Uint8Array(first);
  try {
    for (let n; (n = await conn.read(buffer)) !== null;) {
      await writeAll(conn, transform(buffer.subarray(0, n)));
      if (n === buffer.length && buffer.length < MAX_BUFFER) {
        buffer = new Uint8Array(buffer.length * 2);
      }
    }
    await conn.closeWrite();
  } catch { /* the client went away */ }
  conn.close();
}

/**
 * The floor of a web-stream service: the bare loop, but each read in fresh
 * memory, handed through `transform` (backpressure from its writer), and its
 * output written chunk by chunk.
 */
async function bareThrough(
  conn: Deno.TcpConn,
  transform: TransformStream<Uint8Array, Uint8Array>,
): Promise<void> {
  conn.setNoDelay(true);
  const writer = transform.writable.getWriter();
  const reader = transform.readable.getReader();
  const output = (async () => {
    for (let r; !(r = await reader.read()).done;) await writeAll(conn, r.value);
    await conn.closeWrite();
  })();
  try {
    let size = FIRST_BUFFER;
    while (true) {
      const buffer = new Uint8Array(size);
      const n = await conn.read(buffer);
      if (n === null) break;
      await writer.ready;
      writer.write(buffer.subarray(0, n)).catch(() => {});
      if (n === size && size < MAX_BUFFER) size *= 2;
    }
    await writer.close();
    await output;
  } catch { /* the client went away */ }
  conn.close();
}

/** The line baseline: scans for newlines, one write per read. */
async function bareLines(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  let buffer = new Uint8Array(FIRST_BUFFER);
  let answers = new Uint8Array(0);
  let carry = 0; // bytes of an unfinished line at the start of `buffer`
  try {
    for (let n; (n = await conn.read(buffer.subarray(carry))) !== null;) {
      const end = carry + n;
      const filledPart = buffer.subarray(0, end);
      let count = 0;
      let last = -1;
      for (let i = filledPart.indexOf(LF); i !== -1;) {
        count++;
        last = i;
        i = filledPart.indexOf(LF, i + 1);
      }
      if (count > 0) {
        const size = count * PONG.length;
        if (answers.length < size) {
          answers = new Uint8Array(Math.max(size, answers.length * 2));
          for (let i = 0; i < answers.length; i += PONG.length) {
            answers.set(PONG.subarray(0, answers.length - i), i);
          }
        }
        await writeAll(conn, answers.subarray(0, size));
      }
      const filled = end === buffer.length;
      buffer.copyWithin(0, last + 1, end);
      carry = end - last - 1;
      if (filled && buffer.length < MAX_BUFFER) {
        const grown = new Uint8Array(buffer.length * 2);
        grown.set(buffer.subarray(0, carry));
        buffer = grown;
      } else if (carry === buffer.length) {
        throw new RangeError("Line longer than the buffer");
      }
    }
    await conn.closeWrite();
  } catch { /* the client went away, or a bad line */ }
  conn.close();
}

// ---------------------------------------------------------------------------
// Counting, for the control lines

let accepted = 0;
let open = 0;
const waiters = new Set<() => void>();
function changed(): void {
  for (const check of waiters) check();
}
function connected(): void {
  accepted++;
  open++;
  changed();
}
function disconnected(): void {
  open--;
  changed();
}

const hostname = "127.0.0.1";

/** A plain listener: each connection served by `serveOne`, counted. */
function listenPlain(serveOne: (conn: Deno.TcpConn) => Promise<void>): number {
  const listener = Deno.listen({ hostname, port: 0 });
  (async () => {
    for await (const conn of listener) {
      connected();
      serveOne(conn).catch(() => {}).finally(disconnected);
    }
  })();
  return listener.addr.port;
}

/** Wraps a bare `Deno.Conn` and pipes it through `transform`. */
function pipeConnection(
  transform: () => TransformStream<Uint8Array, Uint8Array>,
): (conn: Deno.TcpConn) => Promise<void> {
  return (conn) => {
    const connection = new Connection(conn);
    return connection.readable.pipeThrough(transform()).pipeTo(
      connection.writable,
    );
  };
}

type Handler = Parameters<typeof serve>[1];

function listenServe(handler: Handler): number {
  const server = serve({
    hostname,
    port: 0,
    maxConnections: 100_000,
    onConnect: connected,
    onClose: disconnected,
    onError: () => {},
  }, handler);
  return (server.addr as Deno.NetAddr).port;
}

/** A handler that reads the streams itself, as a user would. */
const readingHandler: Handler = async (connection) => {
  const writer = connection.writable.getWriter();
  for await (const chunk of connection.readable) await writer.write(chunk);
  await writer.close();
};

/**
 * The 0.3 shape: `framed(connection, lines())` iterated, each answer
 * written without waiting (the writes of one read leave together).
 */
const framedHandler: Handler = async (connection) => {
  const m = framed(connection, lines());
  for await (const _line of m) m.write(PONG_LINE);
  await m.closeWrite();
};

/** The 0.2 shape: `framed()`'s streams, each answer awaited. */
const framedStreamsHandler: Handler = async (connection) => {
  const { readable, writable } = framed(connection, lines());
  const writer = writable.getWriter();
  for await (const _line of readable) await writer.write(PONG_LINE);
  await writer.close();
};

/**
 * `framed(connection, lines(), { batch: true })`: each read's lines as one
 * array, all answered before the next is awaited.
 */
const framedBatchHandler: Handler = async (connection) => {
  const { readable, writable } = framed(connection, lines(), { batch: true });
  const writer = writable.getWriter();
  for await (const batch of readable) {
    await Promise.all(batch.map(() => writer.write(PONG_LINE)));
  }
  await writer.close();
};

/** Whether `framed()` knows `batch: true` (it yields arrays then). */
async function hasBatch(): Promise<boolean> {
  const { readable, writable } = framed(
    {
      readable: ReadableStream.from([new TextEncoder().encode("a\n")]),
      writable: new WritableStream(),
    },
    lines(),
    { batch: true },
  );
  const first = (await Array.fromAsync(readable))[0];
  await writable.close();
  return Array.isArray(first);
}

async function start(kind: string): Promise<{ port: number; note?: string }> {
  switch (kind) {
    case "bare":
      return { port: listenPlain((conn) => bareLoop(conn, (b) => b)) };
    case "bare-1k":
      return { port: listenPlain((conn) => bareLoop(conn, (b) => b, 1024)) };
    case "bare-upper":
      return {
        port: listenPlain((conn) =>
          bareLoop(conn, (bytes) => {
            upperCaseInPlace(bytes);
            return bytes;
          })
        ),
      };
    case "bare-lines":
      return { port: listenPlain(bareLines) };
    case "echo":
      return { port: listenServe(() => new EchoStream()) };
    case "upper":
      return { port: listenServe(() => new UpperCaseStream()) };
    case "stream":
      return { port: listenServe(userEcho) };
    case "stream-upper":
      return { port: listenServe(userUpper) };
    case "conn-pipe-upper":
      return { port: listenPlain(pipeConnection(userUpper)) };
    case "handler":
      return { port: listenServe(readingHandler) };
    case "conn-pipe":
      return { port: listenPlain(pipeConnection(userEcho)) };
    case "bare-stream":
      return { port: listenPlain((conn) => bareThrough(conn, userEcho())) };
    case "bare-lines-stream":
      return { port: listenPlain((conn) => bareThrough(conn, userPong())) };
    case "lines-stream":
      return { port: listenServe(userPong) };
    case "lines-sync":
      return {
        port: listenServe(() => new SyncTransformStream(pongTransformer)),
      };
    case "lines-chain": {
      const factory = chainedPong();
      if (!factory) {
        throw new TypeError(
          "Cannot start lines-chain as lines().decoder() must be a SyncTransformStream: current decoder is not",
        );
      }
      return { port: listenServe(factory) };
    }
    case "lines-framed":
      return { port: listenServe(framedHandler) };
    case "lines-framed-rw":
      return { port: listenServe(framedStreamsHandler) };
    case "lines-framed-batch":
      if (!await hasBatch()) {
        throw new TypeError(
          "Cannot start lines-framed-batch as framed() must know { batch: true }: current framed() yields single lines",
        );
      }
      return { port: listenServe(framedBatchHandler) };
    case "lines-conn-pipe":
      return { port: listenPlain(pipeConnection(userPong)) };
    case "redis-loop":
      return { port: listenPlain(redisLoop) };
    case "redis": {
      const store = new Map<string, Uint8Array>();
      return {
        port: listenServe((connection) => serveRedis(connection, store)),
      };
    }
    default:
      throw new TypeError(
        `Cannot start bench server as kind must be a known kind: current value is '${kind}'`,
      );
  }
}

/** The kinds `start()` knows, for the benchmark's own checks. */
export const KINDS: readonly string[] = [
  "bare",
  "bare-1k",
  "bare-upper",
  "bare-lines",
  "echo",
  "upper",
  "stream",
  "stream-upper",
  "handler",
  "conn-pipe",
  "conn-pipe-upper",
  "bare-stream",
  "bare-lines-stream",
  "lines-stream",
  "lines-sync",
  "lines-chain",
  "lines-framed",
  "lines-framed-rw",
  "lines-framed-batch",
  "lines-conn-pipe",
  "redis-loop",
  "redis",
];

/** Whether `lines().decoder()` offers the synchronous (chain) route. */
export function hasSyncLineDecoder(): boolean {
  return chainedPong() !== undefined;
}

/** What V8's `gc()` (`--expose-gc`) takes. */
interface GcOptions {
  type: "major" | "minor";
  execution: "sync" | "async";
  /** "last-resort": the collection V8 makes when memory runs short. */
  flavor: "regular" | "last-resort";
}

async function control(): Promise<void> {
  const encoder = new TextEncoder();
  const say = (value: unknown) =>
    Deno.stdout.write(encoder.encode(JSON.stringify(value) + "\n"));
  const counts = () => {
    const memory = Deno.memoryUsage();
    return {
      accepted,
      open,
      rss: Math.round(memory.rss / 1024),
      heapUsed: Math.round(memory.heapUsed / 1024),
      external: Math.round(memory.external / 1024),
    };
  };
  const until = (ready: () => boolean) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (ready()) {
          waiters.delete(check);
          resolve();
        }
      };
      waiters.add(check);
      check();
    });
  let text = "";
  for await (
    const part of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    text += part;
    for (let lf; (lf = text.indexOf("\n")) !== -1;) {
      const [command, arg] = text.slice(0, lf).trim().split(/\s+/);
      text = text.slice(lf + 1);
      const n = Number(arg);
      if (command === "stats") await say(counts());
      else if (command === "until-accepted") {
        await until(() => accepted >= n);
        await say(counts());
      } else if (command === "until-open") {
        await until(() => open === n);
        await say(counts());
      } else if (command === "gc") {
        const gc = (globalThis as { gc?: (options?: GcOptions) => void }).gc;
        gc?.(
          arg === "reduce"
            ? { type: "major", execution: "sync", flavor: "last-resort" }
            : undefined,
        );
        await say({ gc: gc !== undefined });
      } else await say({ error: `unknown command '${command}'` });
    }
  }
  Deno.exit(0);
}

if (import.meta.main) {
  // `m.write()` unawaited (the 0.3 shape) rejects when a client goes
  // away mid-answer; the loop ends on the same error, so nothing is lost.
  globalThis.addEventListener("unhandledrejection", (event) => {
    event.preventDefault();
  });
  const { values } = parseArgs({
    args: Deno.args,
    strict: true,
    options: { kind: { type: "string", default: "bare" } },
  });
  const kind = values.kind!;
  let started: { port: number; note?: string };
  try {
    started = await start(kind);
  } catch (error) {
    // Said on stdout, so the benchmark can print why the cell is missing.
    console.log(JSON.stringify({ kind, error: String(error) }));
    Deno.exit(1);
  }
  console.log(JSON.stringify({ kind, pid: Deno.pid, ...started }));
  await control();
}

/**
 * {@linkcode framed}: messages over a connection. An async iterator hands
 * out every message of one read with a function call each, and `write()`
 * encodes straight into the connection's write buffer; the web streams are
 * views built only when asked for. The one framing file that knows the
 * connection; the codecs never import it.
 *
 * @module
 */

import { Connection } from "../connection.ts";
import { bytePort } from "../_connection/byte_port.ts";
import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import { StreamPort } from "./stream_port.ts";
import { FramedMessages } from "./framed_messages.ts";
import type { Codec } from "./codec.ts";
import type { OversizeOptions } from "./options.ts";

/**
 * Messages over a connection, from {@linkcode framed}: iterate it for the
 * messages the peer sends, `write()` the ones you send.
 *
 * - Iterating (`for await`) hands out every message decoded from one read
 *   of the socket without another read: a function call per message, one
 *   real wait per read. `break` leaves the connection open and the messages
 *   already decoded in place for the next loop.
 * - `write()` encodes straight into the connection's write buffer and
 *   resolves at once while it has room; it waits when the buffer is full, so
 *   awaiting it is backpressure. The replies written while the messages of
 *   one read are handled leave together, in one system call, when the loop
 *   comes back for more (or as soon as the buffer fills); the answer to a
 *   read that brought a single message leaves as it is written.
 * - `readable` and `writable` are web-stream views of the same, built when
 *   first used, for `pipeThrough()` composition and the reader/writer shape
 *   of 0.2; the readable and the iterator cannot be mixed. Their own
 *   iteration, default readers and writers take the message path directly
 *   (a function call per message, not a stream chunk) while the stream has
 *   nothing queued of its own, so `for await (... of readable)`,
 *   `reader.read()` and `writer.write()` pay no stream chunk per message
 *   either.
 * - A message is a view of the memory its read came in (never reused, so it
 *   stays valid), which it shares with other reads: `slice()` what you keep
 *   for long, so that a few bytes kept do not keep their neighbours.
 *
 * @typeParam In What `write()` and the writable accept.
 * @typeParam Out What the iterator and the readable yield: messages, or
 * arrays of them with `batch: true`.
 *
 * @example A function that takes framed messages
 * ```ts
 * import { type Framed, framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * async function firstLine(messages: Framed<string>): Promise<string> {
 *   for await (const line of messages) {
 *     return new TextDecoder().decode(line);
 *   }
 *   return "";
 * }
 * const messages = framed(
 *   {
 *     readable: ReadableStream.from([new TextEncoder().encode("hello\nrest")]),
 *     writable: new WritableStream(),
 *   },
 *   lines(),
 * );
 * assert.equal(await firstLine(messages), "hello");
 * ```
 *
 * @example The stream views
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const { readable, writable } = framed(
 *   {
 *     readable: ReadableStream.from([new TextEncoder().encode("a\nb\n")]),
 *     writable: new WritableStream({
 *       write: (bytes) => void sent.push(new TextDecoder().decode(bytes)),
 *     }),
 *   },
 *   lines(),
 * );
 * await readable
 *   .pipeThrough(new TransformStream({ transform: (line, c) => c.enqueue(`${line.length}`) }))
 *   .pipeTo(writable);
 * assert.deepEqual(sent, ["1\n", "1\n"]);
 * ```
 */
export interface Framed<In = Uint8Array, Out = Uint8Array>
  extends AsyncIterable<Out> {
  /**
   * The messages the peer sends, one at a time (or one read's at a time
   * with `batch: true`); the iteration ends at its FIN. A decoding error
   * ends it with that error after every message decoded before it.
   *
   * @throws {TypeError} The readable view holds the messages.
   */
  [Symbol.asyncIterator](): AsyncIterator<Out>;
  /**
   * Encodes `message` into the connection's write buffer, keeping the order
   * of calls.
   *
   * @param message The message.
   * @returns Resolves at once while the buffer has room, once there is room
   * otherwise; rejects with the encoder's error (nothing of that message is
   * sent, and the connection goes on), with a `TypeError` after
   * {@linkcode Framed.closeWrite}, or with the error that broke the
   * connection.
   */
  write(message: In): Promise<void>;
  /**
   * Sends everything written, then our FIN: the peer reads its end of input
   * and may still send. Every call returns the same promise.
   *
   * @returns Resolves once the FIN is sent.
   */
  closeWrite(): Promise<void>;
  /**
   * Closes the connection now, both ways; what is not sent yet is dropped.
   *
   * @param reason Why, for the connection's `closed` and pending calls.
   */
  close(reason?: unknown): void;
  /**
   * The messages the peer sends, as a stream, built when first used; ends
   * at its FIN.
   *
   * @throws {TypeError} The iterator has been used.
   */
  readonly readable: ReadableStream<Out>;
  /**
   * The messages we send, as a stream, built when first used; closing it is
   * {@linkcode Framed.closeWrite}, aborting it closes the connection, and an
   * encoder's error aborts it (as a pipe would). Its writers' `ready` and
   * `desiredSize` say when a write waits for room in the write buffer.
   */
  readonly writable: WritableStream<In>;
}

/**
 * Options for {@linkcode framed}.
 *
 * @example Batches, with oversized frames skipped
 * ```ts
 * import { framed, type FramedOptions, lengthPrefixed } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const options: FramedOptions = { batch: true, oversize: "discard" };
 * const { readable } = framed(
 *   {
 *     readable: ReadableStream.from([new Uint8Array([1, 7, 3, 0, 0, 0, 1, 8])]),
 *     writable: new WritableStream(),
 *   },
 *   lengthPrefixed({ lengthFieldBytes: 1, maxFrameLength: 2 }),
 *   options,
 * );
 * assert.deepEqual(await Array.fromAsync(readable), [
 *   [new Uint8Array([7]), new Uint8Array([8])],
 * ]);
 * ```
 */
export interface FramedOptions extends OversizeOptions {
  /**
   * Whether the readable yields arrays: all the messages decoded from one
   * read at once, instead of one stream chunk per message.
   *
   * @default {false}
   */
  batch?: boolean;
  /**
   * The most bytes one socket read takes, over a {@linkcode Connection} (at
   * most the connection's own `maxReadSize`); over a pair of streams,
   * chunks come as the stream makes them. Every message of a read is
   * decoded before the loop sees the first, so this bounds the messages
   * held at once: a peer that floods small messages and never reads the
   * replies holds one read's worth (64 KiB of 6-byte commands is about
   * 11,000 messages, a few MiB of objects), not the 1 MiB a connection
   * reads at most. Lines or delimited messages of tens of KiB each are
   * cheaper with larger reads (a message cut by the end of a read is
   * copied whole): raise it for them, with such a flood in mind. The rest
   * of a {@linkcode lengthPrefixed} frame cut by a read is read straight
   * into the frame's own memory, whatever the size.
   *
   * @default {65536}
   */
  maxReadSize?: number;
}

/**
 * What {@linkcode framed} runs over: a {@linkcode Connection} (of any
 * subclass, such as the one `serve()` hands its handler), a bare `Deno.Conn`
 * (which `framed()` wraps in a `Connection`, never using its own
 * `readable`/`writable`), or any pair of byte streams.
 *
 * @example A pair of in-memory byte streams
 * ```ts
 * import { framed, type FramedTarget, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const target: FramedTarget = {
 *   readable: ReadableStream.from([]),
 *   writable: new WritableStream({
 *     write: (bytes) => void sent.push(new TextDecoder().decode(bytes)),
 *   }),
 * };
 * await ReadableStream.from(["a", "b"]).pipeTo(framed(target, lines()).writable);
 * assert.deepEqual(sent, ["a\n", "b\n"]);
 * ```
 */
export type FramedTarget = Deno.Conn | {
  readable: ReadableStream<Uint8Array>;
  writable: WritableStream<Uint8Array>;
};

/**
 * Messages over a connection: iterate the result for the messages the peer
 * sends and `write()` yours; see {@linkcode Framed}.
 *
 * This is the fast message path: with a codec that has synchronous cores
 * (all of this module's do, and any codec of yours with
 * `syncDecoder`/`syncEncoder` or whose streams are
 * {@linkcode SyncTransformStream}s) a message costs a function call each
 * way, an encoder with `encodeInto` (see {@linkcode SyncEncoder}) writes
 * straight into the connection's write buffer, a decoder with `reserve`
 * (see {@linkcode SyncDecoder}) has the rest of a large message read
 * straight into it, and the replies to one read's messages leave in one
 * system call. Other codecs run as streams.
 * `oversize` and `onOversize` here replace the codec's own, so a line
 * server can answer "line too long" and go on.
 *
 * `batch: true` yields each read's messages as one array: the fastest shape
 * when messages are tiny and many per read, as it saves the promise an
 * async iterator costs per message (at 64-byte frames, 16 to a read, about
 * 0.8× a hand-written loop's throughput against about 0.7× one message at
 * a time: `bench/framed_bench.ts`). Its replies may be written without
 * `await`: the loop itself waits for room in the write buffer before it
 * reads on, so memory stays bounded by the buffer, one read's messages
 * (`maxReadSize`) and their replies (an encoder's refusal of a reply not
 * awaited goes unseen: await the writes of messages that may be refused).
 *
 * Nothing is read or written before the first use: until then the target
 * is still the caller's.
 *
 * @param target A {@linkcode Connection}, a bare `Deno.Conn` (wrapped in a
 * `Connection`) or any readable and writable byte pair.
 * @param codec How messages are framed: {@linkcode lines},
 * {@linkcode delimited}, {@linkcode lengthPrefixed} or your own.
 * @param options Oversize policy, batching and the largest read.
 * @returns The messages.
 *
 * @example A line server: one answer per line, pipelined or not
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then(async (conn) => {
 *   const messages = framed(conn, lines());
 *   for await (const line of messages) {
 *     await messages.write(`${line.length}`);
 *   }
 *   await messages.closeWrite(); // the peer's FIN came: ours follows
 * });
 *
 * const client = framed(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   lines(),
 * );
 * await client.write("hello");
 * await client.write("hi");
 * await client.closeWrite();
 * const answers = await Array.fromAsync(client, (m) => new TextDecoder().decode(m));
 * await served;
 * assert.deepEqual(answers, ["5", "2"]);
 * ```
 *
 * @example The stream views, as in 0.2
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then(async (conn) => {
 *   const { readable, writable } = framed(conn, lines());
 *   const writer = writable.getWriter();
 *   for await (const line of readable) {
 *     await writer.write(`${line.length}`);
 *   }
 *   await writer.close();
 * });
 *
 * const client = framed(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   lines(),
 * );
 * await ReadableStream.from(["hello", "hi"]).pipeTo(client.writable);
 * const answers = await Array.fromAsync(
 *   client.readable,
 *   (line) => new TextDecoder().decode(line),
 * );
 * await served;
 * assert.deepEqual(answers, ["5", "2"]);
 * ```
 */
export function framed<In, Out>(
  target: FramedTarget,
  codec: Codec<In, Out>,
  options?: FramedOptions & { batch?: false },
): Framed<In, Out>;
/**
 * Messages over a connection, handed out as arrays: all the messages
 * decoded from one read at once. Otherwise as above.
 *
 * @param target A connection wrapper, a bare `Deno.Conn` or a byte pair.
 * @param codec How messages are framed.
 * @param options Oversize policy, the largest read, and `batch: true`.
 * @returns The messages, the iterator and readable yielding arrays.
 *
 * @example Batches of pipelined lines; a too-long line answered in order
 * ```ts
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const TOO_LONG = new Uint8Array(0);
 * const bytes = new TextEncoder().encode("a\nbb\n" + "c".repeat(99) + "\nd\n");
 * const messages = framed(
 *   { readable: ReadableStream.from([bytes]), writable: new WritableStream() },
 *   lines({ maxLineLength: 8 }),
 *   { batch: true, oversize: "discard", onOversize: () => TOO_LONG },
 * );
 * const answers: string[] = [];
 * for await (const batch of messages) {
 *   for (const line of batch) {
 *     answers.push(line === TOO_LONG ? "ERR too long" : `${line.length}`);
 *   }
 * }
 * await messages.closeWrite();
 * assert.deepEqual(answers, ["1", "2", "ERR too long", "1"]);
 * ```
 */
export function framed<In, Out>(
  target: FramedTarget,
  codec: Codec<In, Out>,
  options: FramedOptions & { batch: true },
): Framed<In, Out[]>;
/**
 * Messages over a connection, with `batch` known only at run time: the
 * iterator and readable yield messages or arrays of them.
 *
 * @param target A connection wrapper, a bare `Deno.Conn` or a byte pair.
 * @param codec How messages are framed.
 * @param options Oversize policy, batching and the largest read.
 * @returns The messages.
 */
export function framed<In, Out>(
  target: FramedTarget,
  codec: Codec<In, Out>,
  options?: FramedOptions,
): Framed<In, Out | Out[]>;
export function framed<In, Out>(
  target: FramedTarget,
  codec: Codec<In, Out>,
  options: FramedOptions = {},
): Framed<In, Out | Out[]> {
  const {
    batch = false,
    oversize,
    onOversize,
    maxReadSize = DEFAULT_MAX_READ,
  } = options;
  if (batch !== true && batch !== false) {
    throw new TypeError(
      `Cannot frame connection as batch must be a boolean: current type is ${typeof batch}`,
    );
  }
  if (!Number.isSafeInteger(maxReadSize) || maxReadSize < 1) {
    throw new RangeError(
      `Cannot frame connection as maxReadSize must be a positive integer: current value is ${maxReadSize}`,
    );
  }
  const overrides = oversize === undefined && onOversize === undefined
    ? undefined
    : { oversize, onOversize };
  const port = isBareConn(target)
    ? bytePort(new Connection(target))
    : target instanceof Connection
    ? bytePort(target)
    : new StreamPort(target);
  const decoder = codec.syncDecoder?.(overrides) ??
    syncCore(codec.decoder(overrides));
  const encoder = codec.syncEncoder?.() ?? syncCore(codec.encoder());
  return new FramedMessages<In, Out>(
    port,
    decoder,
    encoder,
    batch,
    maxReadSize,
  );
}

/**
 * Whether `target` is a bare connection, which must be wrapped: its own
 * `readable` closes the whole connection at EOF and its `writable` cannot
 * half-close. A `Connection` (of any subclass) is used as it is; so is
 * any other object without `read()`, such as a plain byte pair.
 */
function isBareConn(target: FramedTarget): target is Deno.Conn {
  const conn = target as Partial<Deno.Conn>;
  return !(target instanceof Connection) &&
    typeof conn.read === "function" && typeof conn.closeWrite === "function";
}

/** A stream's synchronous core where it has one (the documented mechanism). */
function syncCore<I, O>(
  stream: TransformStream<I, O>,
): SyncTransformer<I, O> | TransformStream<I, O> {
  return stream instanceof SyncTransformStream ? stream.transformer : stream;
}

/**
 * framed()'s largest read, as Node's and Netty's (a connection's own is
 * 1 MiB): every message of a read is decoded at once, and a message object
 * is many times its bytes.
 */
const DEFAULT_MAX_READ = 65536;

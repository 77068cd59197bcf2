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
import {
  type BytePort,
  bytePort,
  type EncodesInto,
} from "../_connection/byte_port.ts";
import { clear } from "../_connection/bytes.ts";
import type { SyncEncoder } from "./sync_encoder.ts";
import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";
import { StreamPort } from "./stream_port.ts";
import {
  DirectReadable,
  type DirectSink,
  type DirectSource,
  DirectWritable,
  DONE,
  READ_NOW,
  RELEASED,
  type ReleaseFlag,
  WRITE_FAILED,
  WRITE_NOW,
} from "../_connection/direct_streams.ts";
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
   * reads at most. Messages of tens of KiB each are cheaper with larger
   * reads (a message cut by the end of a read is copied whole): raise it
   * for them, with such a flood in mind.
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
 * straight into the connection's write buffer, and the replies to one
 * read's messages leave in one system call. Other codecs run as streams.
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

function noop(): void {}

const RESOLVED = Promise.resolve();
/**
 * framed()'s largest read, as Node's and Netty's (a connection's own is
 * 1 MiB): every message of a read is decoded at once, and a message object
 * is many times its bytes.
 */
const DEFAULT_MAX_READ = 65536;
/**
 * The {@linkcode Framed} behind `framed()`: a decoded-message queue filled
 * one socket read at a time, and writes encoded straight into the port.
 */
class FramedMessages<In, Out>
  implements
    Framed<In, Out | Out[]>,
    DirectSource<Out | Out[]>,
    DirectSink<In> {
  readonly #port: BytePort;
  readonly #batch: boolean;
  readonly #maxReadSize: number;
  #decoder?: SyncTransformer<Uint8Array, Out>;
  /** A codec without a synchronous decoder: its stream's reader. */
  #stream?: TransformStream<Uint8Array, Out>;
  #messages?: ReadableStreamDefaultReader<Out>;
  #encoder?: SyncTransformer<In, Uint8Array>;
  /** The encoder writes straight into the connection's buffer. */
  #encodeInto = false;
  #encoderStream?: TransformStream<In, Uint8Array>;
  #encoderWriter?: WritableStreamDefaultWriter<In>;
  #encoderPipe?: Promise<void>;

  /** Who reads the messages: nobody yet, the iterator or the readable. */
  #reader?: "iterator" | "readable";
  #queue: Out[] = [];
  #next = 0;
  #ended = false;
  #failure?: { error: unknown };
  #filling?: Promise<IteratorResult<Out | Out[]>>;
  #readable?: ReadableStream<Out | Out[]>;
  #readController?: ReadableStreamDefaultController<Out | Out[]>;
  /** Who asked for the read under way for the readable view (one at a time). */
  #viewEnded?: () => void;
  #viewReader?: ReleaseFlag;
  /** How that read ends: made once, with the readable (arrow functions). */
  #viewRead!: (
    result: IteratorResult<Out | Out[]>,
  ) => IteratorResult<Out | Out[]>;
  #viewFailed!: (error: unknown) => never;
  /** The readable view is closed or cancelled. */
  #readableEnded = false;
  /** The readable view's pull is under way. */
  #pulling = false;
  #writable?: WritableStream<In>;
  #writeController?: WritableStreamDefaultController;
  #closingWrite?: Promise<void>;
  /** The last write that had to wait, while encoding one message. */
  #wait?: Promise<void>;
  /**
   * While the replies to one read's messages are held back (the port is
   * corked), they are encoded into a segment of the port's buffer that is
   * ours until handed over: a reply costs an `encodeInto` call.
   */
  #held = false;
  #out?: Uint8Array;
  #outEnd = 0;

  constructor(
    port: BytePort,
    decoder:
      | SyncTransformer<Uint8Array, Out>
      | TransformStream<Uint8Array, Out>,
    encoder: SyncTransformer<In, Uint8Array> | TransformStream<In, Uint8Array>,
    batch: boolean,
    maxReadSize: number,
  ) {
    this.#port = port;
    this.#batch = batch;
    this.#maxReadSize = maxReadSize;
    if (decoder instanceof TransformStream) this.#stream = decoder;
    else this.#decoder = decoder;
    if (encoder instanceof TransformStream) this.#encoderStream = encoder;
    else {
      this.#encoder = encoder;
      this.#encodeInto = typeof (encoder as SyncEncoder<In>).encodeInto ===
        "function";
    }
  }

  // -------------------------------------------------------------------------
  // Reading

  [Symbol.asyncIterator](): AsyncIterator<Out | Out[]> {
    this.#claim("iterator");
    return this;
  }

  #claim(reader: "iterator" | "readable"): void {
    if (this.#reader === undefined) {
      this.#reader = reader;
      // The read side is ours from the first read on.
      if (this.#decoder) {
        this.#port.take(this.#maxReadSize);
        this.#port.hold(this.#handOver);
      } else {
        this.#messages = this.#portReadable().pipeThrough(this.#stream!)
          .getReader();
      }
    } else if (this.#reader !== reader) {
      throw new TypeError(
        `Cannot read framed messages with the ${
          reader === "iterator" ? "async iterator" : "readable"
        } as the ${
          this.#reader === "iterator" ? "async iterator" : "readable"
        } reads them`,
      );
    }
  }

  /** The next message, from the queue when a read left some there. */
  next(): Promise<IteratorResult<Out | Out[]>> {
    if (this.#next < this.#queue.length) return Promise.resolve(this.#take());
    // One read at a time: a second caller waits for the first.
    if (this.#filling) return this.#filling.then(() => this.next());
    return this.#filling = this.#fill();
  }

  /** The next message (or batch) of the queue, which has one. */
  #take(): IteratorResult<Out | Out[]> {
    if (this.#batch) {
      this.#next = this.#queue.length;
      return { done: false, value: this.#queue };
    }
    return { done: false, value: this.#queue[this.#next++]! };
  }

  /** `break` or `return` in a loop: the replies so far leave now. */
  return(): Promise<IteratorResult<Out | Out[]>> {
    this.#release();
    this.#port.uncork();
    return Promise.resolve(DONE);
  }

  /** Reads the socket until a message is decoded, the input ends or fails. */
  async #fill(): Promise<IteratorResult<Out | Out[]>> {
    try {
      if (this.#messages) return await this.#nextFromStream();
      const port = this.#port;
      while (true) {
        if (this.#next < this.#queue.length) return this.#take();
        if (this.#failure) throw this.#failure.error;
        if (this.#ended) return DONE;
        // Batch mode hands the queue out: a new one for each read.
        if (this.#batch) this.#queue = [];
        else clear(this.#queue);
        this.#next = 0;
        // The replies to the last read's messages leave now, in one write;
        // while they cannot, reading more would only pile up more replies.
        this.#release();
        port.uncork();
        const room = port.room();
        if (room) await room;
        // The socket read is awaited here, not in a function of the port's:
        // a promise fewer per read.
        let chunk: Uint8Array | null;
        try {
          const reading = port.startRead();
          chunk = reading === undefined
            ? await port.read()
            : port.endRead(await reading);
        } catch (error) {
          chunk = port.readFailed(error); // throws, or the input just ends
        }
        try {
          if (chunk === null) {
            this.#ended = true;
            this.#decoder!.flush?.(this.#push);
          } else {
            this.#decoder!.transform(chunk, this.#push);
            // Pipelined messages: hold their replies back, to leave
            // together when the loop comes back for more. A lone message
            // (a request and its answer) never waits for anything.
            if (this.#queue.length > 1) {
              port.cork();
              if (this.#encodeInto) {
                this.#out ??= port.segment();
                this.#held = this.#out !== undefined;
              }
            }
          }
        } catch (error) {
          // Every message decoded before the error is still handed out.
          // (The port is not corked: a read corks only after decoding.)
          this.#failure = { error };
          if (chunk !== null) port.cancel(error);
        }
      }
    } finally {
      this.#filling = undefined;
    }
  }

  /** Hands the held replies over, and stops holding them. */
  #release(): void {
    this.#held = false;
    this.#handOver();
  }

  /**
   * Queues the held replies (the port calls this before any other write):
   * the promise of room when the buffer is full.
   */
  #handOver = (): Promise<void> | undefined => {
    const end = this.#outEnd;
    if (end === 0) return undefined;
    const out = this.#out!;
    this.#out = undefined;
    this.#outEnd = 0;
    return this.#port.hand(out, end);
  };

  /**
   * `write()` while replies are held: into the held segment, or `false`
   * when the message needs more than a whole segment.
   */
  #writeHeld(message: In): Promise<void> | undefined | false {
    const encoder = this.#encoder as unknown as EncodesInto<In>;
    const out = this.#out ??= this.#port.segment()!;
    const end = encoder.encodeInto(message, out, this.#outEnd);
    if (end >= 0) {
      this.#outEnd = end;
      return undefined;
    }
    if (this.#outEnd === 0) return false;
    // Full: it goes to the buffer, and the message starts a new one.
    const wait = this.#handOver();
    const next = this.#out = this.#port.segment()!;
    const after = encoder.encodeInto(message, next, 0);
    if (after < 0) return false;
    this.#outEnd = after;
    return wait;
  }

  #push = (message: Out): void => {
    this.#queue.push(message);
  };

  async #nextFromStream(): Promise<IteratorResult<Out | Out[]>> {
    const { done, value } = await this.#messages!.read();
    if (done) return DONE;
    return { done: false, value: this.#batch ? [value] : value };
  }

  /** The bytes as a stream, for a decoder that is only a stream. */
  #portReadable(): ReadableStream<Uint8Array> {
    const port = this.#port;
    port.take(this.#maxReadSize);
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = await port.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel: (reason) => port.cancel(reason),
    }, { highWaterMark: 0 });
  }

  get readable(): ReadableStream<Out | Out[]> {
    if (this.#readable) return this.#readable;
    this.#claim("readable");
    return this.#readable = new DirectReadable<Out | Out[]>({
      start: (controller) => {
        this.#readController = controller;
        this.#makeViewHandlers();
      },
      pull: async (controller) => {
        this.#pulling = true;
        let result: IteratorResult<Out | Out[]>;
        try {
          result = await this.next();
        } finally {
          this.#pulling = false;
        }
        if (result.done) this.#closeReadable();
        else {
          controller.enqueue(result.value);
          // The rest of the read's messages, decoded already: one pull per
          // socket read rather than per message (nothing more is read).
          while (this.#next < this.#queue.length) {
            controller.enqueue(this.#take().value);
          }
        }
      },
      cancel: (reason) => {
        this.#readableEnded = true;
        if (this.#messages) return this.#messages.cancel(reason);
        this.#port.cancel(reason);
      },
    }, this);
  }

  /**
   * For the readable's default readers and own async iteration (`for
   * await`, `values()`): while the stream has no message queued and no pull
   * is under way, the messages come from here, a function call each, rather
   * than from a stream read each.
   */
  [READ_NOW](
    ended?: () => void,
    reader?: ReleaseFlag,
  ):
    | IteratorResult<Out | Out[]>
    | Promise<IteratorResult<Out | Out[]>>
    | undefined {
    if (
      this.#pulling || this.#readableEnded || this.#filling ||
      this.#readController!.desiredSize !== 0
    ) return undefined;
    if (this.#next < this.#queue.length) return this.#take();
    this.#viewEnded = ended;
    this.#viewReader = reader;
    return this.next().then(this.#viewRead, this.#viewFailed);
  }

  /**
   * The handlers of a read for the readable view: the stream is closed or
   * errored as the messages end, as its pull would.
   */
  #makeViewHandlers(): void {
    const controller = this.#readController!;
    this.#viewRead = (result) => {
      if (result.done) {
        this.#closeReadable();
        this.#viewEnded?.();
      } else if (this.#viewReader?.[RELEASED]) {
        // Its reader let go before the read came: the messages stay for
        // the next one (nothing else has taken any since).
        this.#next = 0;
      }
      return result;
    };
    this.#viewFailed = (error) => {
      controller.error(error);
      this.#viewEnded?.();
      throw error;
    };
  }

  /** The messages ended: the readable view closes, once. */
  #closeReadable(): void {
    if (this.#readableEnded) return;
    this.#readableEnded = true;
    this.#readController!.close();
  }

  // -------------------------------------------------------------------------
  // Writing

  write(message: In): Promise<void> {
    if (this.#closingWrite) {
      return Promise.reject(
        new TypeError(
          "Cannot write framed message as the write side is closed: closeWrite() was called",
        ),
      );
    }
    if (this.#encoderStream) return this.#writeToStream(message);
    if (this.#encodeInto) {
      let written: Promise<void> | undefined | false;
      try {
        // Into the held segment while replies are held, else the buffer.
        written = this.#held ? this.#writeHeld(message) : false;
        if (written === false) {
          written = this.#port.encode(
            this.#encoder as unknown as EncodesInto<In>,
            message,
          );
        }
      } catch (error) {
        return Promise.reject(error);
      }
      if (written === undefined) return RESOLVED;
      if (written !== false) {
        written.catch(noop);
        return written;
      }
    }
    this.#wait = undefined;
    try {
      this.#encoder!.transform(message, this.#send);
    } catch (error) {
      return Promise.reject(error);
    }
    const wait = this.#wait as Promise<void> | undefined;
    if (wait === undefined) return RESOLVED;
    // A caller that does not await it must not crash the process: the
    // error also reaches the connection's `closed` and the next read.
    wait.catch(noop);
    return wait;
  }

  #send = (bytes: Uint8Array): void => {
    const wait = this.#port.write(bytes);
    // Writes leave in order: the last one to wait settles after the others.
    if (wait) {
      this.#wait?.catch(noop);
      this.#wait = wait;
    }
  };

  #writeToStream(message: In): Promise<void> {
    const written = this.#openEncoder().write(message);
    written.catch(noop);
    return written;
  }

  /** For an encoder that is only a stream: its writer, piped to the port. */
  #openEncoder(): WritableStreamDefaultWriter<In> {
    if (this.#encoderWriter === undefined) {
      const stream = this.#encoderStream!;
      this.#encoderWriter = stream.writable.getWriter();
      this.#encoderPipe = stream.readable.pipeTo(this.#portWritable());
      this.#encoderPipe.catch(noop);
    }
    return this.#encoderWriter;
  }

  /** The bytes as a stream, for an encoder that is only a stream. */
  #portWritable(): WritableStream<Uint8Array> {
    const port = this.#port;
    return new WritableStream<Uint8Array>({
      write: (bytes) => port.write(bytes),
      close: () => port.closeWrite(),
      abort: (reason) => port.close(reason),
    });
  }

  closeWrite(): Promise<void> {
    return this.#closingWrite ??= this.#closeWrite();
  }

  async #closeWrite(): Promise<void> {
    if (this.#encoderStream) {
      // Closing the encoder flushes it; the pipe then ends our output.
      await this.#openEncoder().close();
      return this.#encoderPipe;
    }
    this.#wait = undefined;
    this.#release();
    this.#encoder!.flush?.(this.#send);
    this.#port.uncork();
    await this.#port.closeWrite();
  }

  close(reason?: unknown): void {
    this.#held = false;
    this.#outEnd = 0;
    this.#port.close(reason);
  }

  get writable(): WritableStream<In> {
    return this.#writable ??= new DirectWritable<In>({
      start: (controller) => {
        this.#writeController = controller;
        this.#port.closed.catch((error) => controller.error(error));
      },
      write: (message) => {
        const written = this.write(message);
        // Taken into the buffer: nothing to wait for, and no promise made.
        if (written === RESOLVED) return;
        return written.catch((error) => {
          this.#writeFailed(error);
          throw error;
        });
      },
      close: () => this.closeWrite(),
      abort: (reason) => this.#port.close(reason),
    }, this);
  }

  /** A writer's write, straight to the message path while the stream is idle. */
  [WRITE_NOW](message: In): Promise<void> | undefined {
    const written = this.write(message);
    return written === RESOLVED ? undefined : written;
  }

  /** A writer's write failed: the stream errors, as through its sink. */
  [WRITE_FAILED](error: unknown): void {
    this.#writeFailed(error);
    this.#writeController!.error(error);
  }

  /** The writable view's write failed: an encoder's error aborts the bytes, as a pipe would. */
  #writeFailed(error: unknown): void {
    if (!(error instanceof TypeError) || !this.#closingWrite) {
      this.#port.close(error);
    }
  }
}

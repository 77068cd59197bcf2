/**
 * What `framed()` returns (the `Framed` of `framed.ts`, which checks it
 * against that interface where it returns one): a decoded-message queue
 * filled one socket read at a time, its iterator and stream views, and
 * writes encoded straight into the port.
 *
 * @module
 */

import type { BytePort, EncodesInto } from "../_connection/byte_port.ts";
import { clear } from "../_connection/bytes.ts";
import type { SyncEncoder } from "./sync_encoder.ts";
import type { SyncDecoder } from "./sync_decoder.ts";
import type { SyncTransformer } from "../sync_transform.ts";
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

function noop(): void {}

const RESOLVED = Promise.resolve();

/**
 * The least of a message's rest that is read straight into the memory its
 * decoder reserves (`SyncDecoder.reserve`); less is read with what follows
 * it, in one system call, and copied (a system call more per read cost
 * 16,000-byte frames more than copying: measured with 4 KiB here,
 * bench/framed_bench.ts --size 16000). A read into the message also puts
 * the next read at a message's start, so that messages about the size of a
 * read are not cut one after another.
 */
const DIRECT_READ = 16384;

/**
 * The `Framed` behind `framed()`: a decoded-message queue filled one socket
 * read at a time, and writes encoded straight into the port.
 */
export class FramedMessages<In, Out>
  implements DirectSource<Out | Out[]>, DirectSink<In> {
  readonly #port: BytePort;
  readonly #batch: boolean;
  readonly #maxReadSize: number;
  #decoder?: SyncTransformer<Uint8Array, Out>;
  /** The decoder lends its message under way, to read the rest into. */
  #reserves = false;
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
    else {
      this.#decoder = decoder;
      const lends = decoder as SyncDecoder<Out>;
      this.#reserves = typeof lends.reserve === "function" &&
        typeof lends.commit === "function";
    }
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
        /** Bytes read straight into the decoder's message under way. */
        let direct = 0;
        try {
          // The rest of a large message is read into the memory its decoder
          // reserves: no window of fresh memory for it, and no copy.
          const rest = this.#reserves
            ? (this.#decoder as SyncDecoder<Out>).reserve!(port.readSize)
            : undefined;
          const into = rest !== undefined && rest.length >= DIRECT_READ
            ? port.startReadInto(rest)
            : undefined;
          if (into !== undefined) {
            direct = port.endReadInto(await into) ?? 0;
            chunk = direct === 0 ? null : rest!;
          } else {
            const reading = port.startRead();
            chunk = reading === undefined
              ? await port.read()
              : port.endRead(await reading);
          }
        } catch (error) {
          chunk = port.readFailed(error); // throws, or the input just ends
        }
        try {
          if (chunk === null) {
            this.#ended = true;
            this.#decoder!.flush?.(this.#push);
          } else if (direct > 0) {
            (this.#decoder as SyncDecoder<Out>).commit!(direct, this.#push);
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

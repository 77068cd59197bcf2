/**
 * The web-stream views of {@linkcode framed}'s messages: a `ReadableStream`
 * and a `WritableStream` that are the streams they claim to be for
 * `pipeThrough()`, `pipeTo()` and every other use, but whose own async
 * iteration, default readers and writers (the shape a message server takes
 * with streams) call `framed()`'s message path directly, a function call per
 * message, while the stream has nothing of its own queued.
 *
 * @module
 */

const RESOLVED = Promise.resolve();

/** The key of a reader's "released" flag, for its source to see. */
export const RELEASED: unique symbol = Symbol("released");

/** A reader as its source sees it: whether its lock is released. */
export interface ReleaseFlag {
  readonly [RELEASED]: boolean;
}

/** The key of {@linkcode MessageSource}'s method. */
export const READ_NOW: unique symbol = Symbol("readNow");

/**
 * What the readable view's readers and iteration call: the message path
 * (`framed()`'s own object, under a symbol, so that a view costs no objects
 * of its own).
 */
export interface MessageSource<T> {
  /**
   * The next message straight from the message path: at once when one is
   * decoded already, else the promise of the next read's first; or
   * `undefined` when the stream must answer for itself (it holds messages,
   * a pull is giving it some, a read is under way, or it has ended).
   *
   * When the messages end this way, the source closes (or errors) the
   * stream, then calls `ended`. When `reader` has let go of the stream by
   * the time a read's messages come, the source keeps them for the next
   * reader (the reader refuses its read itself).
   */
  [READ_NOW](
    ended?: () => void,
    reader?: ReleaseFlag,
  ): IteratorResult<T> | Promise<IteratorResult<T>> | undefined;
}

/**
 * The readable view: a `ReadableStream` (with no queue of its own:
 * `highWaterMark` 0) whose default readers (`getReader()`) and own async
 * iteration take each message from `source` while the stream has none
 * queued, instead of a pull and a stream chunk each. Everything else,
 * `pipeThrough()` among it, is the stream's.
 */
export class MessageReadable<T> extends ReadableStream<T> {
  readonly #source: MessageSource<T>;

  constructor(source: UnderlyingDefaultSource<T>, messages: MessageSource<T>) {
    super(source, { highWaterMark: 0 });
    this.#source = messages;
  }

  override getReader(options: { mode: "byob" }): ReadableStreamBYOBReader;
  override getReader(): ReadableStreamDefaultReader<T>;
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<T>;
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<T> {
    // A BYOB reader is refused by the stream itself (it is not a byte
    // stream); the default one throws, as the stream's does, while locked.
    if (options?.mode !== undefined) return super.getReader(options);
    return new MessageReader<T>(this as ReadableStream<T>, this.#source);
  }

  override values(
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    const reader = this.getReader() as MessageReader<T>;
    return reader.iterate(options?.preventCancel === true);
  }

  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    return this.values(options);
  }
}

const DONE: IteratorReturnResult<undefined> = Object.freeze({
  done: true,
  value: undefined,
});

/**
 * A default reader of {@linkcode MessageReadable}: the stream's own, whose
 * `read()` takes the next message from the message path while the stream
 * has none queued; and the stream's async iteration over it.
 */
class MessageReader<T> extends ReadableStreamDefaultReader<T>
  implements ReleaseFlag {
  readonly #source: MessageSource<T>;
  #locked = true;
  /** How each read under way from the message path is refused. */
  #refusals?: Set<(error: TypeError) => void>;

  constructor(stream: ReadableStream<T>, source: MessageSource<T>) {
    super(stream);
    this.#source = source;
  }

  override read(): Promise<ReadableStreamReadResult<T>> {
    if (!this.#locked) return super.read();
    const next = this.#source[READ_NOW](undefined, this);
    if (next === undefined) return super.read();
    if (!(next instanceof Promise)) {
      return Promise.resolve(next as ReadableStreamReadResult<T>);
    }
    // A read of the socket: refused at once, as the stream's own reads
    // are, if the lock is released before it ends.
    return new Promise((resolve, reject) => {
      const refusals = this.#refusals ??= new Set();
      refusals.add(reject);
      (next as Promise<ReadableStreamReadResult<T>>).then(resolve, reject)
        .finally(() => refusals.delete(reject));
    });
  }

  get [RELEASED](): boolean {
    return !this.#locked;
  }

  override releaseLock(): void {
    this.#locked = false;
    super.releaseLock();
    for (const refuse of this.#refusals ?? []) {
      refuse(
        new TypeError("Cannot read framed message as the reader was released"),
      );
    }
    this.#refusals = undefined;
  }

  /**
   * The stream's async iteration over this reader, as the stream's own:
   * the lock is released at the end, and leaving the loop cancels the
   * stream unless `preventCancel`.
   */
  iterate(preventCancel: boolean): AsyncIterableIterator<T> {
    const release = () => {
      if (this.#locked) this.releaseLock();
    };
    const settle = (result: ReadableStreamReadResult<T>) => {
      if (result.done) release();
      return result;
    };
    const fail = (error: unknown): never => {
      release();
      throw error;
    };
    const iterator: AsyncIterableIterator<T> = {
      next: () => {
        if (!this.#locked) return Promise.resolve(DONE);
        const next = this.#source[READ_NOW](release);
        if (next === undefined) {
          return super.read().then(settle, fail) as Promise<IteratorResult<T>>;
        }
        return next instanceof Promise ? next : Promise.resolve(next);
      },
      return: async (value?: unknown) => {
        if (this.#locked) {
          // As the stream's own iteration: leaving the loop cancels the
          // stream, unless asked not to.
          const cancelled = preventCancel ? undefined : this.cancel(value);
          release();
          await cancelled;
        }
        return { done: true, value: value as T };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }
}

/** The keys of {@linkcode MessageSink}'s methods. */
export const WRITE_NOW: unique symbol = Symbol("writeNow");
/** The keys of {@linkcode MessageSink}'s methods. */
export const WRITE_FAILED: unique symbol = Symbol("writeFailed");

/**
 * What the writable view's writers call: the message path's `write()`, and
 * what a refused or failed write does to the stream (as its sink does);
 * `framed()`'s own object, under symbols.
 */
export interface MessageSink<T> {
  /**
   * Writes one message: `undefined` when the buffer took it, else the
   * promise of room (or of the write's failure).
   */
  [WRITE_NOW](message: T): Promise<void> | undefined;
  /** A write failed with `error`: the stream errors, as a sink's would. */
  [WRITE_FAILED](error: unknown): void;
}

/**
 * The writable view: a `WritableStream` whose writers
 * (`getWriter()`) hand each message straight to the message path while the
 * stream has nothing queued (which, with only such writers, is always),
 * instead of a trip through the stream's queue and a promise each. Closing,
 * aborting, `pipeTo()` and everything else are the stream's.
 */
export class MessageWritable<T> extends WritableStream<T> {
  readonly #sink: MessageSink<T>;

  constructor(source: UnderlyingSink<T>, sink: MessageSink<T>) {
    super(source);
    this.#sink = sink;
  }

  override getWriter(): WritableStreamDefaultWriter<T> {
    // Throws, as the stream's own does, while it is locked.
    return new MessageWriter(this, this.#sink);
  }
}

/**
 * A writer of {@linkcode MessageWritable}: the stream's own, whose
 * `write()` goes straight to the message path while the stream is writable
 * with nothing queued, and whose `ready` and `desiredSize` also answer for
 * the writes that wait there for room.
 */
class MessageWriter<T> extends WritableStreamDefaultWriter<T> {
  readonly #sink: MessageSink<T>;
  /** `close()`, `abort()` or `releaseLock()` was called. */
  #done = false;
  /** The last direct write that waits for room, until it settles. */
  #waiting?: Promise<void>;

  constructor(stream: WritableStream<T>, sink: MessageSink<T>) {
    super(stream);
    this.#sink = sink;
  }

  override write(chunk: T): Promise<void> {
    // The stream's queue is empty (its desired size is its high-water
    // mark, 1) only while it is writable and nothing went its way.
    if (this.#done || super.desiredSize !== 1) return super.write(chunk);
    let written: Promise<void> | undefined;
    try {
      written = this.#sink[WRITE_NOW](chunk);
    } catch (error) {
      this.#sink[WRITE_FAILED](error);
      return Promise.reject(error);
    }
    if (written === undefined) return RESOLVED;
    this.#waiting = written;
    const settled = () => {
      if (this.#waiting === written) this.#waiting = undefined;
    };
    written.then(settled, (error) => {
      settled();
      this.#sink[WRITE_FAILED](error);
    });
    return written;
  }

  override get desiredSize(): number | null {
    const size = super.desiredSize;
    return this.#waiting && size !== null ? 0 : size;
  }

  override get ready(): Promise<void> {
    const waiting = this.#waiting;
    if (waiting === undefined) return super.ready;
    return waiting.then(() => this.ready, () => this.ready);
  }

  override close(): Promise<void> {
    this.#done = true;
    return super.close();
  }

  override abort(reason?: unknown): Promise<void> {
    this.#done = true;
    return super.abort(reason);
  }

  override releaseLock(): void {
    this.#done = true;
    super.releaseLock();
  }
}

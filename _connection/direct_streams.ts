/**
 * Web streams with a direct way in: a `ReadableStream` and a
 * `WritableStream` that are the streams they claim to be for
 * `pipeThrough()`, `pipeTo()` and every other use, but whose own async
 * iteration, default readers and writers (the shape a handler takes with
 * streams) call what is behind them directly, a function call per chunk,
 * while the stream has nothing of its own queued: a connection's
 * `readable` and `writable`, and `framed()`'s message views.
 *
 * @module
 */

const RESOLVED = Promise.resolve();

/** The key of {@linkcode DirectSource}'s method. */
export const READ_NOW: unique symbol = Symbol("readNow");

/** The key of a reader's "released" flag, for its source to see. */
export const RELEASED: unique symbol = Symbol("released");

/** A reader as its source sees it: whether its lock is released. */
export interface ReleaseFlag {
  readonly [RELEASED]: boolean;
}

/**
 * What a readable's direct readers and iteration call (an object the
 * stream's owner has anyway, under a symbol, so that the way in costs no
 * objects of its own).
 */
export interface DirectSource<T> {
  /**
   * The next chunk straight from behind the stream: at once when one is
   * there already, else its promise; or `undefined` when the stream must
   * answer for itself (it holds chunks, a pull is filling it, a direct read
   * is under way, or it has ended).
   *
   * When the chunks end this way, the source closes (or errors) the
   * stream, then calls `ended`. When `reader` has let go of the stream by
   * the time a chunk comes, the source keeps it for the next reader (the
   * reader refuses its read itself).
   */
  [READ_NOW](
    ended?: () => void,
    reader?: ReleaseFlag,
  ): IteratorResult<T> | Promise<IteratorResult<T>> | undefined;
}

/**
 * `ReadableStream`'s constructor for a default or a byte source, which
 * TypeScript does not offer a subclass's `super()` by itself.
 */
const AnyReadable = ReadableStream as new <T>(
  source: UnderlyingDefaultSource<T> | UnderlyingByteSource,
  strategy: { highWaterMark: number },
) => ReadableStream<T>;

/**
 * A `ReadableStream` (a default or a byte stream, with no queue of its own:
 * `highWaterMark` 0) whose default readers (`getReader()`) and own async
 * iteration take each chunk from `direct` while the stream has none queued,
 * instead of a pull and a stream chunk each. Everything else, `pipeThrough()`
 * and BYOB readers among it, is the stream's.
 */
export class DirectReadable<T> extends AnyReadable<T> {
  readonly #direct: DirectSource<T>;

  constructor(
    source: UnderlyingDefaultSource<T> | UnderlyingByteSource,
    direct: DirectSource<T>,
  ) {
    super(source, { highWaterMark: 0 });
    this.#direct = direct;
  }

  override getReader(options: { mode: "byob" }): ReadableStreamBYOBReader;
  override getReader(): ReadableStreamDefaultReader<T>;
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<T>;
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<T> {
    // A BYOB reader is the stream's (a default stream refuses it).
    if (options?.mode !== undefined) return super.getReader(options);
    return new DirectReader<T>(this as ReadableStream<T>, this.#direct);
  }

  override values(
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    return new DirectReader<T>(this as ReadableStream<T>, this.#direct)
      .iterate(options?.preventCancel === true);
  }

  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    return this.values(options);
  }
}

/** The end of a stream's chunks, as readers and iterators report it. */
export const DONE: IteratorReturnResult<undefined> = Object.freeze({
  done: true,
  value: undefined,
});

/**
 * A default reader of a stream with a direct way in: the stream's own
 * reader (it takes the stream's lock, and throws as it does while the
 * stream is locked), whose `read()` takes the next chunk from `source`
 * while the stream has none queued; and the stream's async iteration over
 * it.
 */
export class DirectReader<T> extends ReadableStreamDefaultReader<T>
  implements ReleaseFlag {
  readonly #source: DirectSource<T>;
  #locked = true;
  /**
   * The direct read under way (a source serves one at a time: another read
   * meanwhile is the stream's), which release and cancel settle at once.
   */
  #pending?: PromiseWithResolvers<ReadableStreamReadResult<T>>;

  constructor(stream: ReadableStream<T>, source: DirectSource<T>) {
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
    // A read under way: as the stream's own reads, refused at once if the
    // lock is released, and done at once if the stream is cancelled.
    const read = this.#pending = Promise.withResolvers();
    (next as Promise<ReadableStreamReadResult<T>>).then(
      read.resolve,
      read.reject,
    ).finally(() => {
      if (this.#pending === read) this.#pending = undefined;
    });
    return read.promise;
  }

  get [RELEASED](): boolean {
    return !this.#locked;
  }

  override releaseLock(): void {
    this.#locked = false;
    super.releaseLock();
    this.#pending?.reject(
      new TypeError("Cannot read from the stream as its reader was released"),
    );
    this.#pending = undefined;
  }

  override cancel(reason?: unknown): Promise<void> {
    const cancelled = super.cancel(reason);
    this.#pending?.resolve(DONE);
    this.#pending = undefined;
    return cancelled;
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

/** The key of {@linkcode DirectSink}'s write. */
export const WRITE_NOW: unique symbol = Symbol("writeNow");
/** The key of {@linkcode DirectSink}'s failure. */
export const WRITE_FAILED: unique symbol = Symbol("writeFailed");

/**
 * What a writable's direct writers call (an object the stream's owner has
 * anyway, under symbols): the write behind the stream, and what a refused or
 * failed write does to the stream (as its sink's failure would).
 */
export interface DirectSink<T> {
  /**
   * Writes one chunk: `undefined` when it was taken at once, else the
   * promise of its write (or of its failure). May throw where the write
   * cannot start.
   */
  [WRITE_NOW](chunk: T): Promise<void> | undefined;
  /** A write failed with `error`: the stream errors, as a sink's would. */
  [WRITE_FAILED](error: unknown): void;
}

/**
 * A `WritableStream` whose writers (`getWriter()`) hand each chunk straight
 * to `direct` while the stream has nothing queued (which, with only such
 * writers, is always), instead of a trip through the stream's queue and a
 * promise each. Closing, aborting, `pipeTo()` and everything else are the
 * stream's.
 */
export class DirectWritable<T> extends WritableStream<T> {
  readonly #direct: DirectSink<T>;

  constructor(sink: UnderlyingSink<T>, direct: DirectSink<T>) {
    super(sink);
    this.#direct = direct;
  }

  override getWriter(): WritableStreamDefaultWriter<T> {
    // Throws, as the stream's own does, while it is locked.
    return new DirectWriter(this, this.#direct);
  }
}

/**
 * A writer of {@linkcode DirectWritable}: the stream's own, whose `write()`
 * goes straight to the sink's direct way while the stream is writable with
 * nothing queued, and whose `ready` and `desiredSize` also answer for the
 * writes that wait there.
 */
class DirectWriter<T> extends WritableStreamDefaultWriter<T> {
  readonly #sink: DirectSink<T>;
  /** `close()`, `abort()` or `releaseLock()` was called. */
  #done = false;
  /** The last direct write that waits for room, until it settles. */
  #waiting?: Promise<void>;

  constructor(stream: WritableStream<T>, sink: DirectSink<T>) {
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

/**
 * The web-stream views of {@linkcode framed}'s messages: a `ReadableStream`
 * and a `WritableStream` that are the streams they claim to be for
 * `pipeThrough()`, `pipeTo()` and every other use, but whose own async
 * iteration and whose writers (the shape a message server takes with
 * streams) call `framed()`'s message path directly, a function call per
 * message, while the stream has nothing of its own queued.
 *
 * @module
 */

const RESOLVED = Promise.resolve();

/**
 * The readable view: a `ReadableStream` (with no queue of its own:
 * `highWaterMark` 0) whose async iteration is handed to `iterate`, which
 * holds the stream's lock as the stream's own iteration does. Everything
 * else, `pipeThrough()` among it, is the stream's.
 */
export class MessageReadable<T> extends ReadableStream<T> {
  readonly #iterate: (
    reader: ReadableStreamDefaultReader<T>,
    controller: ReadableStreamDefaultController<T>,
    preventCancel: boolean,
  ) => AsyncIterableIterator<T>;
  readonly #controller: ReadableStreamDefaultController<T>;

  constructor(
    source: UnderlyingDefaultSource<T>,
    iterate: (
      reader: ReadableStreamDefaultReader<T>,
      controller: ReadableStreamDefaultController<T>,
      preventCancel: boolean,
    ) => AsyncIterableIterator<T>,
  ) {
    let controller: ReadableStreamDefaultController<T> | undefined;
    super({
      ...source,
      start: (c) => {
        controller = c;
      },
    }, { highWaterMark: 0 });
    this.#controller = controller!;
    this.#iterate = iterate;
  }

  override values(
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    // Throws, as the stream's own does, while it is locked.
    const reader = this.getReader();
    return this.#iterate(
      reader,
      this.#controller,
      options?.preventCancel === true,
    );
  }

  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<T> {
    return this.values(options);
  }
}

/**
 * What the writable view's writers call: the message path's `write()`, and
 * what a refused or failed write does to the stream (as its sink does).
 */
export interface MessageSink<T> {
  /**
   * Writes one message: `undefined` when the buffer took it, else the
   * promise of room (or of the write's failure).
   */
  write(message: T): Promise<void> | undefined;
  /** A write failed with `error`: the stream errors, as a sink's would. */
  failed(error: unknown, controller: WritableStreamDefaultController): void;
}

/**
 * The writable view: a `WritableStream` whose writers
 * (`getWriter()`) hand each message straight to `sink.write()` while the
 * stream has nothing queued (which, with only such writers, is always),
 * instead of a trip through the stream's queue and a promise each. Closing,
 * aborting, `pipeTo()` and everything else are the stream's.
 */
export class MessageWritable<T> extends WritableStream<T> {
  readonly #sink: MessageSink<T>;
  readonly #controller: WritableStreamDefaultController;

  constructor(source: UnderlyingSink<T>, sink: MessageSink<T>) {
    let controller: WritableStreamDefaultController | undefined;
    super({
      ...source,
      start: (c) => {
        controller = c;
        return source.start?.(c);
      },
    });
    this.#controller = controller!;
    this.#sink = sink;
  }

  override getWriter(): WritableStreamDefaultWriter<T> {
    // Throws, as the stream's own does, while it is locked.
    return new MessageWriter(this, this.#sink, this.#controller);
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
  readonly #controller: WritableStreamDefaultController;
  /** `close()`, `abort()` or `releaseLock()` was called. */
  #done = false;
  /** The last direct write that waits for room, until it settles. */
  #waiting?: Promise<void>;

  constructor(
    stream: WritableStream<T>,
    sink: MessageSink<T>,
    controller: WritableStreamDefaultController,
  ) {
    super(stream);
    this.#sink = sink;
    this.#controller = controller;
  }

  override write(chunk: T): Promise<void> {
    // The stream's queue is empty (its desired size is its high-water
    // mark, 1) only while it is writable and nothing went its way.
    if (this.#done || super.desiredSize !== 1) return super.write(chunk);
    let written: Promise<void> | undefined;
    try {
      written = this.#sink.write(chunk);
    } catch (error) {
      this.#sink.failed(error, this.#controller);
      return Promise.reject(error);
    }
    if (written === undefined) return RESOLVED;
    this.#waiting = written;
    const settled = () => {
      if (this.#waiting === written) this.#waiting = undefined;
    };
    written.then(settled, (error) => {
      settled();
      this.#sink.failed(error, this.#controller);
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

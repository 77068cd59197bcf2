/**
 * A {@linkcode BytePort} over any pair of byte streams, for `framed()` on
 * something other than a connection.
 *
 * @module
 */

import type { BytePort } from "../_connection/byte_port.ts";

/**
 * A port over a pair of byte streams: each is locked when first used, so
 * that until then it stays the caller's.
 */
export class StreamPort implements BytePort {
  readonly #readable: ReadableStream<Uint8Array>;
  readonly #writable: WritableStream<Uint8Array>;
  #reader?: ReadableStreamDefaultReader<Uint8Array>;
  #writer?: WritableStreamDefaultWriter<Uint8Array>;
  #closed = Promise.withResolvers<void>();

  constructor(pair: {
    readable: ReadableStream<Uint8Array>;
    writable: WritableStream<Uint8Array>;
  }) {
    this.#readable = pair.readable;
    this.#writable = pair.writable;
    this.#closed.promise.catch(() => {});
  }

  get closed(): Promise<void> {
    return this.#closed.promise;
  }

  #getWriter(): WritableStreamDefaultWriter<Uint8Array> {
    if (this.#writer === undefined) {
      this.#writer = this.#writable.getWriter();
      this.#writer.closed.then(this.#closed.resolve, this.#closed.reject);
    }
    return this.#writer;
  }

  // Chunks come as the stream makes them: there is no read to size.
  take(): void {
    this.#reader = this.#readable.getReader();
  }

  async read(): Promise<Uint8Array | null> {
    const { done, value } = await this.#reader!.read();
    return done ? null : value;
  }

  startRead(): undefined {
    return undefined; // no socket of its own: read() it is
  }

  endRead(): null {
    return null; // never called: startRead() starts nothing
  }

  /** Chunks come as the stream makes them: there is no read to size. */
  readonly readSize = 0;

  startReadInto(): undefined {
    return undefined; // as startRead()
  }

  endReadInto(): null {
    return null; // never called: startReadInto() starts nothing
  }

  readFailed(error: unknown): never {
    throw error; // read()'s failure, as it is
  }

  cancel(reason: unknown): void {
    (this.#reader ?? this.#readable).cancel(reason).catch(() => {});
  }

  write(bytes: Uint8Array): Promise<void> {
    // A stream keeps what it is given: hand it a copy.
    return this.#getWriter().write(bytes.slice());
  }

  encode(): false {
    return false; // a stream keeps its chunks: nothing to write into
  }

  room(): Promise<void> | undefined {
    const writer = this.#getWriter();
    return (writer.desiredSize ?? 1) > 0 ? undefined : writer.ready;
  }

  segment(): undefined {
    return undefined;
  }

  hand(): undefined {
    return undefined;
  }

  hold(): void {}

  cork(): void {}

  uncork(): void {}

  closeWrite(): Promise<void> {
    return this.#getWriter().close();
  }

  close(reason?: unknown): void {
    this.#getWriter().abort(reason).catch(() => {});
    this.cancel(reason);
  }
}

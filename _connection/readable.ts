/**
 * A connection's `readable`: a byte stream whose `pipeTo()` and
 * `pipeThrough()` let the connection feed the destination straight from the
 * socket. The connection supplies the source ({@linkcode PipingSource}),
 * which holds the way into its private state.
 *
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * using connection = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * using _accepted = await listener.accept();
 * assert.ok(connection.readable instanceof ReadableStream);
 * ```
 *
 * @module
 */

import { DirectReader, type DirectSource } from "./direct_streams.ts";

/** The underlying source of a connection's `readable`. */
export interface PipingSource
  extends UnderlyingByteSource, DirectSource<Uint8Array> {
  /**
   * Feeds `destination` from the socket: the pipe's promise, or undefined
   * when the generic pipe must do it.
   */
  pipe(
    destination: unknown,
    options: StreamPipeOptions | undefined,
  ): Promise<void> | undefined;
}

/** Does nothing: for promises whose outcome the streams report. */
export function noop(): void {}

/**
 * `ReadableStream`'s byte-source constructor, which TypeScript does not
 * offer a subclass's `super()` by itself.
 */
export const ByteStream = ReadableStream as new (
  source: UnderlyingByteSource,
  strategy?: { highWaterMark?: number },
) => ReadableStream<Uint8Array>;

/**
 * A connection's `readable`: a byte stream whose `pipeTo()` and
 * `pipeThrough()` let the connection feed the destination straight from
 * the socket, as the engine does, rather than through a generic pipe (fewer
 * promises per chunk, no copy, and about 3 KiB less per connection). The
 * outcome is a pipe's; everything else is `ReadableStream`'s.
 */
export class ConnectionReadable extends ByteStream {
  #source: PipingSource;

  /** Makes the stream over `source`, reading nothing ahead. */
  constructor(source: PipingSource) {
    super(source, { highWaterMark: 0 });
    this.#source = source;
  }

  override getReader(options: { mode: "byob" }): ReadableStreamBYOBReader;
  override getReader(): ReadableStreamDefaultReader<Uint8Array>;
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<Uint8Array>;
  /**
   * A BYOB reader is the stream's; a default one is the stream's too, but
   * its reads come straight from the socket while the stream holds nothing.
   */
  override getReader(
    options?: ReadableStreamGetReaderOptions,
  ): ReadableStreamReader<Uint8Array> {
    if (options?.mode !== undefined) return super.getReader(options);
    return new DirectReader(this, this.#source);
  }

  /** The stream's iteration, with reads straight from the socket. */
  override values(
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<Uint8Array> {
    return new DirectReader(this, this.#source).iterate(
      options?.preventCancel === true,
    );
  }

  /** As `values()`. */
  override [Symbol.asyncIterator](
    options?: ReadableStreamIteratorOptions,
  ): AsyncIterableIterator<Uint8Array> {
    return this.values(options);
  }

  /** The source's own pipe when it takes this one, else the generic one. */
  override pipeTo(
    destination: WritableStream<Uint8Array>,
    options?: StreamPipeOptions,
  ): Promise<void> {
    return this.#source.pipe(destination, options) ??
      super.pipeTo(destination, options);
  }

  /** The source's own pipe when it takes this one, else the generic one. */
  override pipeThrough<T>(
    transform: ReadableWritablePair<T, Uint8Array>,
    options?: StreamPipeOptions,
  ): ReadableStream<T> {
    if (transform?.readable instanceof ReadableStream) {
      const piping = this.#source.pipe(transform.writable, options);
      if (piping) {
        piping.catch(noop); // as pipeThrough() does: the streams tell
        return transform.readable;
      }
    }
    return super.pipeThrough(transform, options);
  }
}

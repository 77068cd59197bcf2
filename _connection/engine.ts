/**
 * The engine: runs one service over one connection. Private; reached
 * through `Connection.prototype.serve`, which `serve()` uses for every
 * service.
 *
 * Two paths, chosen by a documented mechanism rather than by class:
 *
 * - a `SyncTransformStream` whose streams are unlocked runs inside the
 *   read loop: read, call the transformer, write what it emitted (several
 *   chunks in one system call), read again. No stream, no promise per chunk
 *   beyond the read and the write. A transformer that declares it keeps
 *   nothing of its input (`input: "borrow"` or `"overwrite"`) is handed
 *   the connection's reused read buffer, and what it emits is written
 *   straight from there; any other is handed memory of its own.
 * - any other `ReadableWritablePair` (a `TransformStream`, a
 *   `CompressionStream`, a `{ readable, writable }` pair) is fed by a read
 *   loop and drained by a write loop, both at once, with the service's own
 *   backpressure between them.
 *
 * @module
 */

import { describeType } from "../_defaults.ts";
import { clear } from "./bytes.ts";
import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";

/** What the engine needs of a connection (see `Connection`). */
export interface PumpIO {
  /**
   * The next bytes, or `null` at the peer's FIN. An `owned` chunk is never
   * reused; otherwise it is valid until the next call.
   */
  read(owned: boolean): Promise<Uint8Array | null>;
  /**
   * `read()` in two halves, for a caller that awaits the socket itself (a
   * promise fewer per read): starts the socket read and returns its
   * promise, or `undefined` when `read()` must be used (the bytes are at
   * hand without one). What it brings goes to `finishRead()`, a failure
   * (of either way) to `readFailed()`.
   */
  startRead(owned: boolean): Promise<number | null> | undefined;
  /** The chunk of a read that brought `n` bytes, or null (EOF). */
  finishRead(n: number | null): Uint8Array | null;
  /** A failed read: null when the input just ends, else it throws. */
  readFailed(error: unknown): null;
  /** The coalescing write: the caller may reuse `chunk` once it resolves. */
  write(chunk: Uint8Array): Promise<void>;
  /** Sends the chunks in full before resolving, several in one call. */
  writeAll(chunks: Uint8Array[]): Promise<void>;
  /** Flushes, then sends our FIN. */
  closeWrite(): Promise<void>;
  /** Tears the connection down with `reason`. */
  fail(reason: unknown): void;
  /** Puts bytes back in front of the input. */
  unread(bytes: Uint8Array): void;
}

/**
 * Runs `service` over `io` until both directions are done.
 *
 * @param io The connection's internals.
 * @param service The per-connection behaviour: anything `pipeThrough()`
 * takes.
 * @returns Resolves when the service has flushed and our FIN is sent;
 * rejects with the first error, of the service or of the network.
 */
export function pump(
  io: PumpIO,
  service: ReadableWritablePair<Uint8Array, Uint8Array<ArrayBuffer>>,
): Promise<void> {
  if (!isService(service)) {
    return Promise.reject(
      new TypeError(
        `Cannot serve connection as the service must be a ReadableWritablePair (a TransformStream or any { readable, writable } pair of streams): current type is ${
          describeService(service)
        }`,
      ),
    );
  }
  if (
    service instanceof SyncTransformStream && !service.readable.locked &&
    !service.writable.locked
  ) {
    return pumpSync(io, service.transformer);
  }
  return pumpStreams(io, service);
}

/**
 * Whether `value` is something `pipeThrough()` takes: a readable and a
 * writable stream.
 */
export function isService(
  value: unknown,
): value is ReadableWritablePair<Uint8Array, Uint8Array<ArrayBuffer>> {
  if (typeof value !== "object" || value === null) return false;
  const pair = value as Partial<ReadableWritablePair<unknown, unknown>>;
  return pair.readable instanceof ReadableStream &&
    pair.writable instanceof WritableStream;
}

/** What a refused service is, for its message. */
export function describeService(value: unknown): string {
  const type = describeType(value);
  if (typeof value !== "object" || value === null) return type;
  const pair = value as Record<string, unknown>;
  const missing = [
    pair.readable instanceof ReadableStream ? "" : "readable ReadableStream",
    pair.writable instanceof WritableStream ? "" : "writable WritableStream",
  ].filter(Boolean);
  return `${type} with no ${missing.join(" and no ")}`;
}

async function pumpSync(
  io: PumpIO,
  transformer: SyncTransformer<Uint8Array, Uint8Array>,
): Promise<void> {
  // Only memory the transformer said it keeps nothing of is lent to it.
  const owned = transformer.input !== "borrow" &&
    transformer.input !== "overwrite";
  const out: Uint8Array[] = [];
  const emit = (chunk: Uint8Array) => {
    if (chunk.length > 0) out.push(chunk);
  };
  while (true) {
    let chunk: Uint8Array | null;
    try {
      const reading = io.startRead(owned);
      chunk = reading === undefined
        ? await io.read(owned)
        : io.finishRead(await reading);
    } catch (error) {
      chunk = io.readFailed(error);
    }
    if (chunk === null) break;
    try {
      transformer.transform(chunk, emit);
    } catch (error) {
      // What it emitted before it threw was meant for the peer.
      if (out.length > 0) await io.writeAll(out).catch(() => {});
      throw error;
    }
    if (out.length > 0) {
      await io.writeAll(out);
      clear(out);
    }
  }
  try {
    transformer.flush?.(emit);
  } catch (error) {
    if (out.length > 0) await io.writeAll(out).catch(() => {});
    throw error;
  }
  if (out.length > 0) await io.writeAll(out);
  await io.closeWrite();
}

async function pumpStreams(
  io: PumpIO,
  service: ReadableWritablePair<Uint8Array, Uint8Array<ArrayBuffer>>,
): Promise<void> {
  const writer = service.writable.getWriter();
  const reader = service.readable.getReader();
  let failed = false;
  let failure: unknown;
  const fail = (error: unknown) => {
    if (failed) return;
    failed = true;
    failure = error;
    io.fail(error);
    writer.abort(error).catch(() => {});
    reader.cancel(error).catch(() => {});
  };

  const input = async () => {
    try {
      while (!failed) {
        let chunk: Uint8Array | null;
        try {
          const reading = io.startRead(true);
          chunk = reading === undefined
            ? await io.read(true)
            : io.finishRead(await reading);
        } catch (error) {
          chunk = io.readFailed(error);
        }
        if (chunk === null) break;
        // Wait for the service's backpressure, not for each chunk's end.
        await writer.ready;
        // The connection's reads are its own ArrayBuffers, never shared.
        writer.write(chunk as Uint8Array<ArrayBuffer>).catch(fail);
      }
      if (!failed) await writer.close();
    } catch (error) {
      fail(error);
    }
  };

  const output = async () => {
    try {
      while (true) {
        const result = await reader.read();
        if (result.done) break;
        await io.write(result.value);
      }
      await io.closeWrite();
    } catch (error) {
      fail(error);
    }
  };

  await Promise.all([input(), output()]);
  if (failed) throw failure;
}

/**
 * The bytes under `framed()`: a port with reads that hand over their chunk,
 * writes that copy into the connection's buffer without a promise while it
 * has room, and corking, so that the replies to one read's messages leave in
 * one system call. `Connection` registers the factory of its own port here
 * (it alone can reach its private state); `framed()` asks for one with
 * {@linkcode bytePort}.
 *
 * @module
 */

/** What `framed()` needs of the bytes it runs over. */
export interface BytePort {
  /**
   * Takes the read side for good; throws a `TypeError` when it is held.
   *
   * @param maxReadSize The most one read may bring from now on (a port
   * whose reads it does not size ignores it).
   */
  take(maxReadSize: number): void;
  /** The next chunk, the caller's to keep, or null at the end of input. */
  read(): Promise<Uint8Array | null>;
  /**
   * `read()` in two halves, for a caller that awaits the socket itself (a
   * promise fewer per read than awaiting `read()`): starts the socket read
   * and returns its promise, or returns `undefined` when `read()` must be
   * used instead (the bytes are at hand without one, or this port has no
   * socket). What the socket read brings goes to
   * {@linkcode BytePort.endRead}, a failure to {@linkcode BytePort.readFailed}.
   */
  startRead(): Promise<number | null> | undefined;
  /** The chunk of a read from `startRead()` that brought `n` bytes (null: EOF). */
  endRead(n: number | null): Uint8Array | null;
  /**
   * As `startRead()`, into `buffer`, which stays the caller's: for the rest
   * of a frame under way, read straight into the frame. What it brings goes
   * to {@linkcode BytePort.endReadInto}.
   */
  startReadInto(buffer: Uint8Array): Promise<number | null> | undefined;
  /** How many bytes a read from `startReadInto()` brought (null: EOF). */
  endReadInto(n: number | null): number | null;
  /**
   * What the next read would take at most: it grows while reads fill their
   * buffer (a busy peer) and shrinks while they do not (0 where this port
   * does not size its reads).
   */
  readonly readSize: number;
  /**
   * A read failed with `error`: null when the input just ends (our own
   * close cut it short), else it throws what broke the bytes (for a
   * failure `read()` reported, the same again).
   */
  readFailed(error: unknown): null;
  /** Stops reading: the read side ends, as a cancelled readable's does. */
  cancel(reason: unknown): void;
  /**
   * Queues `bytes`, which the caller may reuse once this returns
   * `undefined` (they were copied) or once the promise resolves (the buffer
   * was full, or they were too large to copy). Throws where a write cannot
   * start.
   */
  write(bytes: Uint8Array): Promise<void> | undefined;
  /**
   * Has `encoder` write `message` straight into the write buffer, with no
   * allocation: as `write()`, or `false` when it cannot (the message does
   * not fit in a buffer segment, writes are waiting, or this port has no
   * buffer): the caller then encodes with `transform()` and `write()`.
   */
  encode<M>(
    encoder: EncodesInto<M>,
    message: M,
  ): Promise<void> | undefined | false;
  /** `undefined` while the write buffer has room; a promise of room otherwise. */
  room(): Promise<void> | undefined;
  /**
   * A buffer segment for the caller to fill while the port is corked, or
   * `undefined` when this port has no buffer: handed back full or in part
   * with {@linkcode BytePort.hand}, so that a message costs an `encodeInto`
   * call and nothing else.
   */
  segment(): Uint8Array | undefined;
  /**
   * Queues the first `length` bytes of a segment from
   * {@linkcode BytePort.segment}, which is the port's again: as `write()`.
   * Dropped when the write side has failed or closed (its error is seen
   * elsewhere).
   */
  hand(segment: Uint8Array, length: number): Promise<void> | undefined;
  /**
   * Says who holds bytes that must go before any other write: `release` is
   * called (and must hand them over) before a write made through any other
   * way while the port is corked, and before it is uncorked.
   */
  hold(release: () => void): void;
  /** Holds queued bytes back until {@linkcode BytePort.uncork}. */
  cork(): void;
  /** Sends what was held back, in one write where it fits. */
  uncork(): void;
  /** Sends what is queued, then the end of our output. */
  closeWrite(): Promise<void>;
  /** Closes both directions now. */
  close(reason?: unknown): void;
  /** Rejects with the error that broke the bytes, if any. */
  readonly closed: Promise<void>;
}

/** An encoder that writes into a buffer (framing's `SyncEncoder`). */
export interface EncodesInto<M> {
  encodeInto(message: M, buffer: Uint8Array, offset: number): number;
}

let factory: ((connection: object) => BytePort) | undefined;

/** Called once, by `Connection`, to say how its ports are made. */
export function registerBytePort(
  make: (connection: object) => BytePort,
): void {
  factory = make;
}

/** A port over `connection`, a `Connection`. */
export function bytePort(connection: object): BytePort {
  return factory!(connection);
}

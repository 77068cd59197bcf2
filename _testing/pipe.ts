/**
 * The bytes travelling one way between the two ends of a
 * {@linkcode connPair}, and the lock that keeps reads (and writes) in call
 * order.
 *
 * @module
 */

/**
 * The bytes travelling one way, as the receiving end's buffer: written
 * chunks (copies) queued in order, with one promise that settles whenever
 * anything changes, for both ends' waiting reads and writes to look again.
 */
export class Pipe {
  readonly capacity: number;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #offset = 0;
  size = 0;
  /** The writer sent its FIN (`closeWrite()` or `close()`). */
  finished = false;
  /** The reader closed; unread bytes were dropped. */
  readerClosed = false;
  #waiters: (() => void)[] = [];
  /** Serialise reads and writes each in call order, as a socket does. */
  readLock: Promise<void> = Promise.resolve();
  writeLock: Promise<void> = Promise.resolve();

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  push(bytes: Uint8Array): void {
    this.#chunks.push(bytes);
    this.size += bytes.length;
    this.changed();
  }

  /** Moves up to `n` bytes into `target`, oldest first. */
  take(target: Uint8Array, n: number): void {
    let done = 0;
    while (done < n) {
      const chunk = this.#chunks[this.#head]!;
      const count = Math.min(n - done, chunk.length - this.#offset);
      target.set(chunk.subarray(this.#offset, this.#offset + count), done);
      done += count;
      this.#offset += count;
      if (this.#offset === chunk.length) {
        this.#chunks[this.#head++] = undefined as unknown as Uint8Array;
        this.#offset = 0;
      }
    }
    if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
      this.#chunks = this.#chunks.slice(this.#head);
      this.#head = 0;
    }
    this.size -= n;
    this.changed();
  }

  drop(): void {
    this.#chunks = [];
    this.#head = 0;
    this.#offset = 0;
    this.size = 0;
  }

  /** Resolves at the next change. */
  wait(): Promise<void> {
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  changed(): void {
    if (this.#waiters.length === 0) return;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** Runs `body` after every earlier holder of the lock has finished. */
export async function locked<T>(
  pipe: Pipe,
  which: "readLock" | "writeLock",
  body: () => Promise<T>,
): Promise<T> {
  const before = pipe[which];
  let release!: () => void;
  pipe[which] = new Promise<void>((resolve) => release = resolve);
  try {
    await before;
    return await body();
  } finally {
    release();
  }
}

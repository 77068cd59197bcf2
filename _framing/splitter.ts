/**
 * The splitting engine behind the line and delimiter decoders.
 *
 * @module
 */

import { FrameTooLargeError } from "../_errors.ts";
import { CR, indexOfBytes, INITIAL_BUFFER, view } from "./bytes.ts";
import { type checkPolicy, replace } from "./options.ts";

/**
 * The splitting engine behind the line and delimiter decoders: finds each
 * delimiter under any chunking, hands whole messages in one chunk on as views
 * of it, copies only a message that spans chunks (into a buffer that grows
 * as bytes arrive, up to the limit), and drops oversized messages when asked.
 */
export class Splitter {
  readonly #what: string;
  readonly #delimiter: Uint8Array;
  readonly #first: number;
  readonly #stripCR: boolean;
  readonly #keep: boolean;
  readonly #limit: number;
  /** Bytes a held message may exceed the limit by: a delimiter's prefix or a CR. */
  readonly #slack: number;
  readonly #discard: boolean;
  readonly #onOversize?: (error: FrameTooLargeError) => Uint8Array | void;
  /** The start of a message that began in an earlier chunk (a copy). */
  #buffer: Uint8Array | undefined = undefined;
  #fill = 0;
  /** Dropping an oversized message until its delimiter. */
  #skipping = false;
  /** The last bytes of the current message, to find a delimiter across chunks. */
  readonly #tail: Uint8Array;
  #tailLength = 0;
  #failure: unknown = undefined;
  #failed = false;

  constructor(
    what: string,
    delimiter: Uint8Array,
    stripCR: boolean,
    keep: boolean,
    limit: number,
    policy: ReturnType<typeof checkPolicy>,
  ) {
    this.#what = what;
    this.#delimiter = delimiter;
    this.#first = delimiter[0]!;
    this.#stripCR = stripCR;
    this.#keep = keep;
    this.#limit = limit;
    this.#slack = delimiter.length - 1 + (stripCR ? 1 : 0);
    this.#discard = policy.discard;
    this.#onOversize = policy.onOversize;
    this.#tail = new Uint8Array(delimiter.length - 1);
  }

  transform(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    try {
      if (this.#delimiter.length === 1 && this.#fill === 0 && !this.#skipping) {
        this.#splitFast(chunk, 0, emit);
      } else this.#split(chunk, emit);
    } catch (error) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  flush(emit: (message: Uint8Array) => void): void {
    if (this.#failed) throw this.#failure;
    try {
      this.#tailLength = 0;
      if (this.#skipping) {
        this.#skipping = false; // the dropped message ended with the input
        return;
      }
      const fill = this.#fill;
      if (fill === 0) return;
      const buffer = this.#buffer!;
      this.#buffer = undefined;
      this.#fill = 0;
      // Without a delimiter nothing is stripped: the bytes are the message.
      if (fill > this.#limit) this.#oversize(fill, true, emit);
      else emit(buffer.subarray(0, fill));
    } catch (error) {
      this.#failed = true;
      this.#failure = error;
      throw error;
    }
  }

  /** One-byte delimiter, nothing held: the common case, kept tight. */
  #splitFast(
    chunk: Uint8Array,
    from: number,
    emit: (message: Uint8Array) => void,
  ): void {
    const first = this.#first;
    const limit = this.#limit;
    const keep = this.#keep;
    const stripCR = this.#stripCR;
    let start = from;
    let end = chunk.indexOf(first, start);
    while (end !== -1) {
      let contentEnd = end;
      if (stripCR && end > start && chunk[end - 1] === CR) contentEnd--;
      if (contentEnd - start > limit) {
        this.#oversize(contentEnd - start, true, emit);
      } else emit(view(chunk, start, keep ? end + 1 : contentEnd));
      start = end + 1;
      end = chunk.indexOf(first, start);
    }
    if (start < chunk.length) this.#hold(chunk, start, emit);
  }

  #split(chunk: Uint8Array, emit: (message: Uint8Array) => void): void {
    const length = this.#delimiter.length;
    let start = 0;
    if (this.#tailLength > 0 && chunk.length > 0) {
      const k = this.#straddle(chunk);
      if (k > 0) {
        this.#endAcross(k, emit);
        start = length - k;
      }
    }
    while (start < chunk.length) {
      const end = length === 1
        ? chunk.indexOf(this.#first, start)
        : indexOfBytes(chunk, this.#delimiter, start);
      if (end === -1) {
        this.#hold(chunk, start, emit);
        return;
      }
      this.#end(chunk, start, end, emit);
      start = end + length;
      // The held message has ended: the rest takes the fast path.
      if (length === 1) return this.#splitFast(chunk, start, emit);
    }
  }

  /**
   * How many bytes of a delimiter that ends inside `chunk` were at the end of
   * earlier chunks (the earliest such delimiter), or 0.
   */
  #straddle(chunk: Uint8Array): number {
    const delimiter = this.#delimiter;
    const tail = this.#tail;
    const held = this.#tailLength;
    for (let k = held; k >= 1; k--) {
      const need = delimiter.length - k;
      if (chunk.length < need) continue;
      let match = true;
      for (let j = 0; match && j < k; j++) {
        match = tail[held - k + j] === delimiter[j];
      }
      for (let j = 0; match && j < need; j++) {
        match = chunk[j] === delimiter[k + j];
      }
      if (match) return k;
    }
    return 0;
  }

  /** A message ends at `end` in `chunk`, where its delimiter starts. */
  #end(
    chunk: Uint8Array,
    start: number,
    end: number,
    emit: (message: Uint8Array) => void,
  ): void {
    this.#tailLength = 0;
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    const fill = this.#fill;
    const stripCR = this.#stripCR;
    if (fill === 0) {
      let contentEnd = end;
      if (stripCR && end > start && chunk[end - 1] === CR) contentEnd--;
      if (contentEnd - start > this.#limit) {
        this.#oversize(contentEnd - start, true, emit);
      } else {
        emit(view(
          chunk,
          start,
          this.#keep ? end + this.#delimiter.length : contentEnd,
        ));
      }
      return;
    }
    // The message began in an earlier chunk: complete the copy.
    let length = fill + end - start;
    if (
      stripCR &&
      (end > start ? chunk[end - 1] : this.#buffer![fill - 1]) === CR
    ) length--;
    if (length > this.#limit) {
      this.#buffer = undefined;
      this.#fill = 0;
      this.#oversize(length, true, emit);
      return;
    }
    const piece = chunk.subarray(
      start,
      this.#keep ? end + this.#delimiter.length : end,
    );
    const total = fill + piece.length;
    const buffer = this.#reserve(total);
    buffer.set(piece, fill);
    // The consumer owns the message now: the next one gets a new buffer.
    this.#buffer = undefined;
    this.#fill = 0;
    emit(buffer.subarray(0, this.#keep ? total : length));
  }

  /** A message ends where a delimiter begins `k` bytes before this chunk. */
  #endAcross(k: number, emit: (message: Uint8Array) => void): void {
    this.#tailLength = 0;
    if (this.#skipping) {
      this.#skipping = false;
      return;
    }
    const fill = this.#fill;
    const length = fill - k;
    if (length > this.#limit) {
      this.#buffer = undefined;
      this.#fill = 0;
      this.#oversize(length, true, emit);
      return;
    }
    let total = length;
    if (this.#keep) {
      total = fill + this.#delimiter.length - k;
      this.#reserve(total).set(this.#delimiter.subarray(k), fill);
    }
    const buffer = this.#buffer!;
    this.#buffer = undefined;
    this.#fill = 0;
    emit(buffer.subarray(0, total));
  }

  /** No delimiter from `start` to the end of `chunk`: keep those bytes. */
  #hold(
    chunk: Uint8Array,
    start: number,
    emit: (message: Uint8Array) => void,
  ): void {
    if (!this.#skipping) {
      const total = this.#fill + chunk.length - start;
      if (total > this.#limit + this.#slack) {
        // Too long whatever follows: what is held may be at most `slack`
        // bytes of delimiter.
        this.#buffer = undefined;
        this.#fill = 0;
        this.#oversize(total - this.#slack, false, emit);
        this.#skipping = true;
      } else {
        this.#reserve(total).set(chunk.subarray(start), this.#fill);
        this.#fill = total;
      }
    }
    if (this.#tail.length > 0) this.#remember(chunk, start);
  }

  /** Keeps the last bytes of the current message for `#straddle`. */
  #remember(chunk: Uint8Array, start: number): void {
    const tail = this.#tail;
    const rest = chunk.length - start;
    if (rest >= tail.length) {
      tail.set(chunk.subarray(chunk.length - tail.length));
      this.#tailLength = tail.length;
      return;
    }
    const kept = Math.min(this.#tailLength, tail.length - rest);
    tail.copyWithin(0, this.#tailLength - kept, this.#tailLength);
    tail.set(chunk.subarray(start), kept);
    this.#tailLength = kept + rest;
  }

  /** The held buffer, grown (doubling, as bytes arrive) to hold `total`. */
  #reserve(total: number): Uint8Array {
    const buffer = this.#buffer;
    if (buffer !== undefined && buffer.length >= total) return buffer;
    const size = Math.max(
      total,
      Math.min(
        buffer === undefined ? INITIAL_BUFFER : buffer.length * 2,
        this.#limit + this.#slack + this.#delimiter.length,
      ),
    );
    const grown = new Uint8Array(size);
    if (buffer !== undefined) grown.set(buffer.subarray(0, this.#fill));
    this.#buffer = grown;
    return grown;
  }

  #oversize(
    length: number,
    exact: boolean,
    emit: (message: Uint8Array) => void,
  ): void {
    const error = new FrameTooLargeError(
      `Cannot decode ${this.#what} as its length must be <= ${this.#limit} bytes: current length is ${
        exact ? "" : "at least "
      }${length} bytes`,
      length,
      this.#limit,
    );
    if (!this.#discard) throw error;
    replace(this.#onOversize, error, emit);
  }
}

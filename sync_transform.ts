/**
 * Transform streams built from a synchronous transformer, which a
 * connection's engine may run inside its own read loop with no stream hop.
 *
 * A `TransformStream` costs a few promise turns per chunk. For work that is
 * synchronous per chunk (upper-casing, decoding frames, answering pipelined
 * requests), {@linkcode SyncTransformStream} keeps its
 * {@linkcode SyncTransformer} in view: used with `pipeThrough` it is an
 * ordinary `TransformStream`, and when it is the service of a
 * {@linkcode Connection} (as `serve()` and `Connection.serve()` run it), the
 * engine calls the transformer directly between a read and a write. Any
 * code can opt in by building its stream this way; {@linkcode chain} fuses
 * stages so that a whole pipeline runs in one call per chunk.
 *
 * ```ts
 * import { chain, SyncTransformStream } from "@x/sock/sync-transform";
 * import assert from "node:assert/strict";
 *
 * const double = new SyncTransformStream<number, number>({
 *   transform: (n, emit) => emit(n * 2),
 * });
 * const out = await Array.fromAsync(
 *   ReadableStream.from([1, 2, 3]).pipeThrough(double),
 * );
 * assert.deepEqual(out, [2, 4, 6]);
 *
 * const both = chain<number, number, string>(
 *   { transform: (n, emit) => emit(n + 1) },
 *   { transform: (n, emit) => emit(`#${n}`) },
 * );
 * const labels: string[] = [];
 * both.transform(1, (s) => labels.push(s));
 * assert.deepEqual(labels, ["#2"]);
 * ```
 *
 * @module
 */

/**
 * Synchronous per-chunk work: the contract a connection's engine relies on
 * to run it without web streams.
 *
 * - `transform` is called once per chunk and hands its output to `emit`,
 *   zero or more times, before it returns.
 * - `chunk` is the transformer's to keep, unless it declares
 *   {@linkcode SyncTransformer.input} `"borrow"` or `"overwrite"`: then it
 *   may be a view of a buffer the caller reuses once `transform` returns,
 *   and the transformer keeps nothing of it (it copies what must outlive
 *   the call, such as the partial message at the end of a chunk). Emitted
 *   chunks may be views of `chunk`; they are consumed (written or copied)
 *   before the next call.
 * - `flush` is called once after the last chunk, for trailing output.
 * - Throwing errors the stream (or, in the engine, ends the connection and
 *   reports the error as the service's). The engine still sends what the
 *   call emitted before it threw; a web stream, by its rules, drops chunks
 *   still queued in its readable when it errors, so a decoder that must
 *   deliver every message before an error hands them on first (as
 *   `framed()` does).
 *
 * @typeParam I The type of chunks in.
 * @typeParam O The type of chunks out.
 *
 * @example Count lines and answer in `flush`
 * ```ts
 * import type { SyncTransformer } from "@x/sock/sync-transform";
 * import assert from "node:assert/strict";
 *
 * let count = 0;
 * const counter: SyncTransformer<Uint8Array, string> = {
 *   transform(chunk) {
 *     for (const byte of chunk) if (byte === 0x0a) count++;
 *   },
 *   flush(emit) {
 *     emit(`${count}\n`);
 *   },
 * };
 * const out: string[] = [];
 * counter.transform(new TextEncoder().encode("a\nb\n"), (s) => out.push(s));
 * counter.flush!((s) => out.push(s));
 * assert.deepEqual(out, ["2\n"]);
 * ```
 */
export interface SyncTransformer<I, O> {
  /**
   * What `transform` does with the chunks it is handed, so that a caller
   * may lend it memory it reuses:
   *
   * - `"keep"`: it may keep a chunk (or views of it) after the call. A
   *   connection's engine hands it memory that nobody reuses.
   * - `"borrow"`: it keeps nothing of a chunk past the call and does not
   *   modify it. The engine hands it a view of its reused read buffer.
   * - `"overwrite"`: as `"borrow"`, and it may also modify the chunk, to
   *   work in place and emit views of it (upper-casing, masking, XOR). The
   *   engine hands it its reused read buffer and writes the result straight
   *   from there, with no allocation per read; as a web stream,
   *   {@linkcode SyncTransformStream} hands it a copy of each chunk, which
   *   belongs to whoever wrote it.
   *
   * @default {"keep"}
   * @experimental
   *
   * @example XOR every byte in place, as a service
   * ```ts
   * import { SyncTransformStream } from "@x/sock/sync-transform";
   * import assert from "node:assert/strict";
   *
   * const xor = new SyncTransformStream<Uint8Array, Uint8Array>({
   *   input: "overwrite",
   *   transform(chunk, emit) {
   *     for (let i = 0; i < chunk.length; i++) chunk[i] ^= 0xff;
   *     emit(chunk);
   *   },
   * });
   * const mine = new Uint8Array([0, 1]);
   * const out = await Array.fromAsync(
   *   ReadableStream.from([mine]).pipeThrough(xor),
   * );
   * assert.deepEqual(out, [new Uint8Array([0xff, 0xfe])]);
   * assert.deepEqual(mine, new Uint8Array([0, 1])); // a stream's input is copied
   * ```
   */
  readonly input?: "keep" | "borrow" | "overwrite";
  /**
   * Transforms one chunk.
   *
   * @param chunk The input; with {@linkcode SyncTransformer.input}
   * `"borrow"` or `"overwrite"`, valid only until this call returns.
   * @param emit Hands one chunk of output on.
   */
  transform(chunk: I, emit: (chunk: O) => void): void;
  /**
   * Emits what is left after the last chunk.
   *
   * @param emit Hands one chunk of output on.
   */
  flush?(emit: (chunk: O) => void): void;
}

/**
 * A `TransformStream` built from a {@linkcode SyncTransformer}, which stays
 * available as {@linkcode SyncTransformStream.prototype.transformer} so that
 * a connection's engine can run it without the stream.
 *
 * Extend it (as `UpperCaseStream` does) to give a service the fast path;
 * nothing else marks a stream as fast. Once its `readable` or `writable` is
 * locked (piped), it is an ordinary stream and the engine pipes it.
 *
 * @typeParam I The type of chunks in.
 * @typeParam O The type of chunks out.
 *
 * @example A per-chunk service for `serve()`
 * ```ts
 * import { SyncTransformStream } from "@x/sock/sync-transform";
 * import assert from "node:assert/strict";
 *
 * // Swaps every byte's case bit for ASCII letters: a toy, but synchronous.
 * class SwapCaseStream extends SyncTransformStream<Uint8Array, Uint8Array> {
 *   constructor() {
 *     super({
 *       transform(chunk, emit) {
 *         const out = chunk.slice();
 *         for (let i = 0; i < out.length; i++) {
 *           const lower = out[i] | 0x20;
 *           if (lower >= 0x61 && lower <= 0x7a) out[i] ^= 0x20;
 *         }
 *         emit(out);
 *       },
 *     });
 *   }
 * }
 * const text = await new Response(
 *   ReadableStream.from([new TextEncoder().encode("Hello")])
 *     .pipeThrough(new SwapCaseStream()),
 * ).text();
 * assert.equal(text, "hELLO");
 * ```
 */
export class SyncTransformStream<I, O> extends TransformStream<I, O> {
  /** The synchronous work this stream runs; the engine may call it. */
  readonly transformer: SyncTransformer<I, O>;

  /**
   * Creates the stream.
   *
   * @param transformer The synchronous work.
   */
  constructor(transformer: SyncTransformer<I, O>) {
    if (typeof transformer?.transform !== "function") {
      throw new TypeError(
        `Cannot create SyncTransformStream as transformer.transform must be a function: current type is ${typeof transformer
          ?.transform}`,
      );
    }
    // A web stream's chunk belongs to whoever wrote it: a transformer that
    // overwrites its input works on a copy.
    const copy = transformer.input === "overwrite";
    super({
      transform: (chunk, controller) =>
        transformer.transform(
          copy && chunk instanceof Uint8Array ? chunk.slice() as I : chunk,
          (out) => controller.enqueue(out),
        ),
      flush: transformer.flush
        ? (controller) => transformer.flush!((out) => controller.enqueue(out))
        : undefined,
    });
    this.transformer = transformer;
  }
}

/**
 * Fuses synchronous stages into one: what each stage emits goes straight
 * into the next, with no stream and no copy between them. It takes two to
 * six stages, each typed against its neighbours; chain the result again
 * for longer pipelines.
 *
 * @typeParam A The type of chunks into `first`.
 * @typeParam B The type of chunks between the stages.
 * @typeParam C The type of chunks out of `second`.
 * @param first The first stage.
 * @param second The second stage.
 * @returns One transformer doing both; its `flush` flushes `first` into
 * `second`, then `second`. It borrows its input (its
 * {@linkcode SyncTransformer.input}) as `first` does when both stages
 * borrow or overwrite theirs, and keeps it otherwise.
 *
 * @example Decode, answer and encode in one call per chunk
 * ```ts
 * import { chain, SyncTransformStream } from "@x/sock/sync-transform";
 * import assert from "node:assert/strict";
 *
 * const words = chain<string, string, string>(
 *   { transform: (text, emit) => text.split(" ").forEach(emit) },
 *   { transform: (word, emit) => emit(word.toUpperCase()) },
 * );
 * const out = await Array.fromAsync(
 *   ReadableStream.from(["a b", "c"]).pipeThrough(
 *     new SyncTransformStream(words),
 *   ),
 * );
 * assert.deepEqual(out, ["A", "B", "C"]);
 * ```
 *
 * @example Three stages, each typed against the next
 * ```ts
 * import { chain, SyncTransformStream } from "@x/sock/sync-transform";
 * import assert from "node:assert/strict";
 *
 * const lengths = chain(
 *   { transform: (text: string, emit: (word: string) => void) => text.split(" ").forEach(emit) },
 *   { transform: (word: string, emit: (n: number) => void) => emit(word.length) },
 *   { transform: (n: number, emit: (s: string) => void) => emit(`${n}`) },
 * );
 * const out = await Array.fromAsync(
 *   ReadableStream.from(["ab c"]).pipeThrough(new SyncTransformStream(lengths)),
 * );
 * assert.deepEqual(out, ["2", "1"]);
 * ```
 */
export function chain<A, B, C>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
): SyncTransformer<A, C>;
/** Fuses three stages, as the two-stage form does. */
export function chain<A, B, C, D>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
  third: SyncTransformer<C, D>,
): SyncTransformer<A, D>;
/** Fuses four stages, as the two-stage form does. */
export function chain<A, B, C, D, E>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
  third: SyncTransformer<C, D>,
  fourth: SyncTransformer<D, E>,
): SyncTransformer<A, E>;
/** Fuses five stages, as the two-stage form does. */
export function chain<A, B, C, D, E, F>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
  third: SyncTransformer<C, D>,
  fourth: SyncTransformer<D, E>,
  fifth: SyncTransformer<E, F>,
): SyncTransformer<A, F>;
/** Fuses six stages, as the two-stage form does. */
export function chain<A, B, C, D, E, F, G>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
  third: SyncTransformer<C, D>,
  fourth: SyncTransformer<D, E>,
  fifth: SyncTransformer<E, F>,
  sixth: SyncTransformer<F, G>,
): SyncTransformer<A, G>;
export function chain(
  ...stages: SyncTransformer<unknown, unknown>[]
): SyncTransformer<unknown, unknown> {
  if (stages.length < 2) {
    throw new TypeError(
      `Cannot chain stages as it takes at least two: current count is ${stages.length}`,
    );
  }
  return stages.reduce((first, second) => fuse(first, second));
}

/** Fuses two stages: the work of {@linkcode chain}. */
function fuse<A, B, C>(
  first: SyncTransformer<A, B>,
  second: SyncTransformer<B, C>,
): SyncTransformer<A, C> {
  // `second` is handed what `first` emits, which may be views of the
  // chunk: the chain may borrow its input only if both stages may. A second
  // stage that overwrites its input gets a copy, as what `first` emits may
  // be anybody's (a constant answer, say).
  const overwrite = second.input === "overwrite";
  const pass = overwrite
    ? (middle: B, emit: (chunk: C) => void) =>
      second.transform(
        middle instanceof Uint8Array ? middle.slice() as B : middle,
        emit,
      )
    : (middle: B, emit: (chunk: C) => void) => second.transform(middle, emit);
  const input = first.input === undefined || first.input === "keep" ||
      second.input === undefined || second.input === "keep"
    ? "keep"
    : first.input;
  return {
    input,
    transform(chunk, emit) {
      first.transform(chunk, (middle) => pass(middle, emit));
    },
    flush(emit) {
      first.flush?.((middle) => pass(middle, emit));
      second.flush?.(emit);
    },
  };
}

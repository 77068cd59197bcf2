/**
 * {@linkcode BatchStream}: all the messages of a chunk handed on at once.
 *
 * @module
 */

import {
  type SyncTransformer,
  SyncTransformStream,
} from "../sync_transform.ts";

/**
 * Hands on everything a synchronous transformer emits for one chunk as one
 * array: for a decoder, all the messages of a read in one stream chunk,
 * which saves the few promise turns each chunk costs when messages are small.
 * Chunks for which nothing is emitted produce no array.
 *
 * If the transformer throws, what it emitted before the throw is handed on
 * first, then the stream errors. Messages may be views of the input chunk,
 * as the transformer made them.
 *
 * @typeParam I The type of chunks in.
 * @typeParam O The type of the transformer's output (arrays of it come out).
 *
 * @experimental
 *
 * @example Lines in batches, one per chunk
 * ```ts
 * import { BatchStream, LineDecoder } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * const batches = await Array.fromAsync(
 *   ReadableStream.from(["a\nb\nc", "\nd\n"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new BatchStream(new LineDecoder())),
 *   (batch) => batch.map((line) => new TextDecoder().decode(line)),
 * );
 * assert.deepEqual(batches, [["a", "b"], ["c", "d"]]);
 * ```
 */
export class BatchStream<I, O> extends SyncTransformStream<I, O[]> {
  /**
   * Creates the stream.
   *
   * @param transformer The work whose output is batched, such as a
   * {@linkcode LineDecoder}.
   */
  constructor(transformer: SyncTransformer<I, O>) {
    const collect = (
      run: (push: (item: O) => void) => void,
      emit: (batch: O[]) => void,
    ) => {
      const batch: O[] = [];
      try {
        run((item) => batch.push(item));
      } finally {
        // Before any error, so that nothing decoded is lost: transform runs
        // only while the consumer waits for a read, which this fulfils.
        if (batch.length > 0) emit(batch);
      }
    };
    super({
      transform: (chunk, emit) =>
        collect((push) => transformer.transform(chunk, push), emit),
      flush: (emit) => collect((push) => transformer.flush?.(push), emit),
    });
  }
}

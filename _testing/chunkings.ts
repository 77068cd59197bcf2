/**
 * {@linkcode chunkings}: the ways a network may cut bytes into chunks, for
 * testing that a decoder never depends on them.
 *
 * @module
 */

import { describe } from "./describe.ts";
import { seededRandom } from "./seeded_random.ts";

/**
 * Options for {@linkcode chunkings}.
 *
 * @example More random splittings, from another seed
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const all = chunkings("some bytes", { seed: 42, splits: 10 });
 * assert.equal(all.length, 12); // whole, one-byte, and 10 random
 * assert.equal(all[2]!.name, "random split 1 of seed 42");
 * ```
 */
export interface ChunkingsOptions {
  /**
   * Seeds the random splits: the same seed gives the same chunkings, so a
   * failure names a chunking you can replay.
   *
   * @default {1}
   */
  seed?: number;
  /**
   * How many random splittings to make, besides the whole and one-byte
   * ones.
   *
   * @default {4}
   */
  splits?: number;
}

/**
 * One way of cutting bytes into chunks, from {@linkcode chunkings}.
 *
 * @example The chunks, and a stream of them
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [whole, bytes] = chunkings("abc");
 * assert.equal(whole!.name, "one chunk");
 * assert.equal(bytes!.chunks.length, 3);
 * const text = await new Response(bytes!.stream()).text();
 * assert.equal(text, "abc");
 * ```
 */
export interface Chunking {
  /**
   * Says how the bytes were cut, for an assertion message: `"one chunk"`,
   * `"one-byte chunks"` or `"random split 2 of seed 1"`.
   */
  readonly name: string;
  /** The chunks, in order: copies, together exactly the bytes given. */
  readonly chunks: readonly Uint8Array[];
  /** Returns a stream of fresh copies of the chunks, for `pipeThrough`. */
  stream(): ReadableStream<Uint8Array>;
}

/**
 * Cuts `bytes` in the ways a network may deliver them: as one chunk, as
 * one-byte chunks, and at seeded random places (each random splitting with
 * its own typical chunk size, from a few bytes to most of the input). A
 * decoder must give the same messages for every one of them.
 *
 * @param bytes The input, or text to encode as UTF-8.
 * @param options The seed and how many random splittings.
 * @returns The chunkings, named.
 * @throws {RangeError} `splits` is not a non-negative integer, or `seed`
 * not an integer.
 *
 * @example Test a line decoder under every chunking
 * ```ts
 * import { chunkings } from "@x/sock/testing";
 * import { TextLineDecoderStream } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * for (const { name, stream } of chunkings("one\ntwo\r\nthree\n")) {
 *   const lines = await Array.fromAsync(
 *     stream()
 *       .pipeThrough(new TextLineDecoderStream()),
 *   );
 *   assert.deepEqual(lines, ["one", "two", "three"], name);
 * }
 * ```
 */
export function chunkings(
  bytes: Uint8Array | string,
  options: ChunkingsOptions = {},
): Chunking[] {
  const { seed = 1, splits = 4 } = options;
  if (typeof bytes === "string") bytes = new TextEncoder().encode(bytes);
  else if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(
      `Cannot cut bytes into chunks as the input must be a Uint8Array or a string: current value is ${
        describe(bytes)
      }`,
    );
  }
  if (!Number.isInteger(splits) || splits < 0) {
    throw new RangeError(
      `Cannot cut bytes into chunks as splits must be a non-negative integer: current value is ${splits}`,
    );
  }
  if (!Number.isInteger(seed)) {
    throw new RangeError(
      `Cannot cut bytes into chunks as seed must be an integer: current value is ${seed}`,
    );
  }
  const input = bytes;
  const cut = (sizes: Iterable<number>): Uint8Array[] => {
    const chunks: Uint8Array[] = [];
    let at = 0;
    for (const size of sizes) {
      chunks.push(input.slice(at, at + size));
      at += size;
    }
    return chunks;
  };
  const result = [
    chunking("one chunk", [input.slice()]),
    chunking("one-byte chunks", cut(Array(input.length).fill(1))),
  ];
  const random = seededRandom(seed);
  for (let i = 1; i <= splits; i++) {
    // A typical size spread evenly on a log scale from 1 byte to the whole.
    const typical = Math.max(1, Math.round((input.length || 1) ** random()));
    const sizes: number[] = [];
    for (let left = input.length; left > 0;) {
      const size = Math.min(left, 1 + Math.floor(random() * 2 * typical));
      sizes.push(size);
      left -= size;
    }
    result.push(chunking(`random split ${i} of seed ${seed}`, cut(sizes)));
  }
  return result;
}

function chunking(name: string, chunks: Uint8Array[]): Chunking {
  return {
    name,
    chunks,
    stream: () => ReadableStream.from(chunks.map((chunk) => chunk.slice())),
  };
}

/**
 * Decode throughput of the framing streams beside an identity
 * `TransformStream` baseline on the same chunks, in the same run: 4 MiB per
 * run, as 64 KiB chunks holding small (16-byte) or large (16 KiB) messages;
 * the best of 15 runs each.
 *
 * ```sh
 * deno run bench/framing_bench.ts
 * ```
 *
 * A plain script rather than `Deno.bench`: under `deno bench` (Deno 2.9.6)
 * the small-message case ran the process out of memory (4 GB heap), while
 * the same loop in a script stays near 30 MB.
 *
 * @module
 */

import {
  LengthPrefixDecoderStream,
  LengthPrefixEncoderStream,
  LineDecoderStream,
} from "../framing.ts";

const TOTAL = 4 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** `TOTAL` bytes of `message`-sized messages, cut into 64 KiB chunks. */
async function chunksOf(
  messageSize: number,
  framing: "lines" | "length",
): Promise<Uint8Array[]> {
  let bytes: Uint8Array;
  if (framing === "lines") {
    const line = new Uint8Array(messageSize).fill(0x61);
    line[messageSize - 1] = 0x0a; // the delimiter counts in the size
    bytes = new Uint8Array(TOTAL);
    for (let i = 0; i + messageSize <= TOTAL; i += messageSize) {
      bytes.set(line, i);
    }
  } else {
    const payload = new Uint8Array(messageSize - 4).fill(0x62);
    const count = Math.floor(TOTAL / messageSize);
    bytes = await new Response(
      ReadableStream.from(Array.from({ length: count }, () => payload))
        .pipeThrough(new LengthPrefixEncoderStream()),
    ).bytes();
  }
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    chunks.push(bytes.subarray(i, i + CHUNK));
  }
  return chunks;
}

async function drain(
  chunks: Uint8Array[],
  stream: TransformStream<Uint8Array, Uint8Array>,
): Promise<void> {
  const reader = ReadableStream.from(chunks).pipeThrough(stream).getReader();
  while (!(await reader.read()).done) { /* count nothing: just decode */ }
}

/** Best of `rounds` runs of `fn`, in MB/s (decimal megabytes). */
async function rate(
  fn: () => Promise<void>,
  bytes: number,
  rounds = 15,
): Promise<number> {
  let best = Infinity;
  for (let round = 0; round < rounds; round++) {
    const start = performance.now();
    await fn();
    best = Math.min(best, performance.now() - start);
  }
  return bytes / 1e6 / (best / 1000);
}

console.log("| messages | decoder | MB/s | identity MB/s | ratio |");
console.log("| --- | --- | --- | --- | --- |");
for (const size of [16, 16384]) {
  const label = size === 16 ? "16 B" : "16 KiB";
  const lines = await chunksOf(size, "lines");
  const frames = await chunksOf(size, "length");
  const total = (chunks: Uint8Array[]) =>
    chunks.reduce((n, c) => n + c.length, 0);
  for (
    const [name, chunks, make] of [
      ["LineDecoderStream", lines, () => new LineDecoderStream()],
      [
        "LengthPrefixDecoderStream",
        frames,
        () => new LengthPrefixDecoderStream(),
      ],
    ] as const
  ) {
    // The baseline runs on the same chunks, interleaved with the decoder.
    const identity = await rate(
      () => drain(chunks, new TransformStream()),
      total(chunks),
    );
    const decoder = await rate(() => drain(chunks, make()), total(chunks));
    console.log(
      `| ${label} | ${name} | ${decoder.toFixed(0)} | ${
        identity.toFixed(0)
      } | ${(decoder / identity).toFixed(3)} |`,
    );
  }
}

/**
 * Decode throughput of the framing module against its floor, in one run:
 * 4 MiB of 16-byte or 16 KiB messages (framing included), cut into 64 KiB
 * chunks, decoded by
 *
 * - **floor**: a plain loop that splits the same chunks with `indexOf` or
 *   by reading the length, carrying a message that spans chunks (the least
 *   any decoder must do);
 * - **sync core**: the decoder's `transform(chunk, emit)` (what the
 *   connection engine and hot loops call);
 * - **stream**: the decoder stream under `pipeThrough`, one stream chunk per
 *   message;
 * - **batch stream**: a `BatchStream` over the core, one stream chunk per
 *   64 KiB read.
 *
 * After a warm-up run, which also sets how many passes over the 4 MiB make
 * one timed run last at least 20 ms (the fast paths take well under a
 * millisecond a pass), each path runs 9 times, interleaved with the others.
 * The table gives the median MB/s (decimal megabytes of input), the spread
 * (slowest and fastest run against the median) and the median's ratio to
 * the floor's median. The whole script takes a few seconds.
 *
 * ```sh
 * deno run bench/framing_bench.ts
 * ```
 *
 * A plain script rather than `Deno.bench`: under `deno bench` (Deno 2.9.6)
 * the small-message stream case ran the process out of memory, while the
 * same loop in a script stays near 30 MB.
 *
 * @module
 */

import {
  BatchStream,
  DelimiterDecoder,
  DelimiterDecoderStream,
  LengthPrefixDecoder,
  LengthPrefixDecoderStream,
  LineDecoder,
  LineDecoderStream,
} from "../framing.ts";
import type { SyncTransformer } from "../sync_transform.ts";

const TOTAL = 4 * 1024 * 1024;
const CHUNK = 64 * 1024;
const ROUNDS = 9;

type Framing = "lines" | "crlf-delimiter" | "length";

/** `TOTAL` bytes of `size`-byte messages, framing included, in 64 KiB chunks. */
function chunksOf(size: number, framing: Framing): Uint8Array[] {
  const message = new Uint8Array(size).fill(0x61);
  if (framing === "lines") message[size - 1] = 0x0a;
  else if (framing === "crlf-delimiter") message.set([0x0d, 0x0a], size - 2);
  else new DataView(message.buffer).setUint32(0, size - 4);
  const bytes = new Uint8Array(Math.floor(TOTAL / size) * size);
  for (let i = 0; i < bytes.length; i += size) bytes.set(message, i);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += CHUNK) {
    chunks.push(bytes.subarray(i, i + CHUNK));
  }
  return chunks;
}

let messages = 0;
let payload = 0;
const sink = (message: Uint8Array) => {
  messages++;
  payload += message.length;
};

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** The floor for delimited messages: indexOf, views, a carried copy. */
function floorDelimited(chunks: Uint8Array[], delimiter: number[]): void {
  const last = delimiter[delimiter.length - 1]!;
  const width = delimiter.length;
  let carry: Uint8Array | undefined;
  for (const chunk of chunks) {
    let start = 0;
    let end = chunk.indexOf(last);
    while (end !== -1) {
      // (A multi-byte delimiter split across chunks is not looked for: the
      // floor may cut corners a decoder cannot.)
      if (carry === undefined) {
        sink(chunk.subarray(start, end + 1 - width));
      } else {
        sink(join(carry, chunk.subarray(start, end + 1 - width)));
        carry = undefined;
      }
      start = end + 1;
      end = chunk.indexOf(last, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      carry = carry === undefined ? rest.slice() : join(carry, rest);
    }
  }
}

/** The floor for 4-byte big-endian length prefixes. */
function floorLength(chunks: Uint8Array[]): void {
  let carry: Uint8Array | undefined;
  for (let chunk of chunks) {
    if (carry !== undefined) {
      chunk = join(carry, chunk);
      carry = undefined;
    }
    let i = 0;
    while (chunk.length - i >= 4) {
      const length = (chunk[i]! << 24 | chunk[i + 1]! << 16 |
        chunk[i + 2]! << 8 | chunk[i + 3]!) >>> 0;
      if (chunk.length - i - 4 < length) break;
      sink(chunk.subarray(i + 4, i + 4 + length));
      i += 4 + length;
    }
    if (i < chunk.length) carry = chunk.slice(i);
  }
}

function core(
  chunks: Uint8Array[],
  decoder: SyncTransformer<Uint8Array, Uint8Array>,
): void {
  for (const chunk of chunks) decoder.transform(chunk, sink);
  decoder.flush?.(sink);
}

async function stream(
  chunks: Uint8Array[],
  decoder: TransformStream<Uint8Array, Uint8Array>,
): Promise<void> {
  const reader = ReadableStream.from(chunks).pipeThrough(decoder).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    sink(r.value);
  }
}

async function batches(
  chunks: Uint8Array[],
  decoder: SyncTransformer<Uint8Array, Uint8Array>,
): Promise<void> {
  const reader = ReadableStream.from(chunks)
    .pipeThrough(new BatchStream(decoder)).getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    for (const message of r.value) sink(message);
  }
}

interface Path {
  name: string;
  run: (chunks: Uint8Array[]) => void | Promise<void>;
}

function paths(framing: Framing): Path[] {
  const decoder = () =>
    framing === "lines"
      ? new LineDecoder()
      : framing === "crlf-delimiter"
      ? new DelimiterDecoder({ delimiter: "\r\n" })
      : new LengthPrefixDecoder();
  const decoderStream = () =>
    framing === "lines"
      ? new LineDecoderStream()
      : framing === "crlf-delimiter"
      ? new DelimiterDecoderStream({ delimiter: "\r\n" })
      : new LengthPrefixDecoderStream();
  return [
    {
      name: "floor",
      run: (chunks) =>
        framing === "length"
          ? floorLength(chunks)
          : floorDelimited(chunks, framing === "lines" ? [0x0a] : [0x0d, 0x0a]),
    },
    { name: "sync core", run: (chunks) => core(chunks, decoder()) },
    { name: "stream", run: (chunks) => stream(chunks, decoderStream()) },
    { name: "batch stream", run: (chunks) => batches(chunks, decoder()) },
  ];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

console.log(
  `Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs; ` +
    `${TOTAL / 1048576} MiB in ${
      CHUNK / 1024
    } KiB chunks; median of ${ROUNDS} runs\n`,
);
console.log("| messages | framing | path | MB/s | spread | × floor |");
console.log("| --- | --- | --- | ---: | ---: | ---: |");
for (const size of [16, 16384]) {
  for (const framing of ["lines", "crlf-delimiter", "length"] as const) {
    const chunks = chunksOf(size, framing);
    const bytes = chunks.reduce((n, c) => n + c.length, 0);
    const list = paths(framing);
    const rates: number[][] = list.map(() => []);
    const passes: number[] = [];
    let expected = -1;
    const time = async (path: Path, count: number) => {
      const start = performance.now();
      for (let pass = 0; pass < count; pass++) {
        messages = 0;
        payload = 0;
        await path.run(chunks);
        // Every path must see the same messages, or the race is unfair.
        if (expected === -1) expected = messages;
        else if (messages !== expected) {
          throw new Error(
            `${path.name} decoded ${messages} messages, not ${expected}`,
          );
        }
      }
      return performance.now() - start;
    };
    for (const path of list) {
      passes.push(
        Math.max(1, Math.ceil(20 / Math.max(0.01, await time(path, 1)))),
      );
    }
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, path] of list.entries()) {
        const ms = await time(path, passes[i]!);
        rates[i]!.push(bytes * passes[i]! / 1e6 / (ms / 1000));
      }
    }
    const floor = median(rates[0]!);
    for (const [i, path] of list.entries()) {
      const m = median(rates[i]!);
      const low = Math.min(...rates[i]!);
      const high = Math.max(...rates[i]!);
      const spread = `−${((1 - low / m) * 100).toFixed(0)}% +${
        ((high / m - 1) * 100).toFixed(0)
      }%`;
      console.log(
        `| ${size === 16 ? "16 B" : "16 KiB"} | ${framing} | ${path.name} | ${
          m.toFixed(0)
        } | ${spread} | ${(m / floor).toFixed(2)} |`,
      );
    }
  }
}

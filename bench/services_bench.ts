/**
 * Micro-benchmarks of upper-casing, for `deno bench`: `upperCase()` against
 * a plain byte loop on the same bytes (64 B and 64 KiB, lower case and
 * already upper case), and the cost of running it as a `TransformStream`.
 *
 * ```sh
 * deno bench bench/services_bench.ts
 * ```
 *
 * Each group's first entry is its baseline: read the "x faster/slower"
 * lines of the summary, not the absolute times, which vary by machine.
 *
 * @module
 */

import { upperCase, UpperCaseStream } from "../services.ts";

/** ASCII text, a quarter of it already upper case or not letters. */
function text(size: number): Uint8Array {
  const sample = new TextEncoder().encode(
    "The quick brown fox jumps over the lazy dog, 1234567890! ",
  );
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = sample[i % sample.length]!;
  return bytes;
}

/** The obvious implementation: one byte at a time, always a copy. */
function naiveUpperCase(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    out[i] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
  }
  return out;
}

const small = text(64);
const large = text(64 * 1024);
const largeUpper = naiveUpperCase(large);

// Results go here so that the work cannot be optimised away.
let sink = 0;

Deno.bench({
  name: "byte loop, 64 B",
  group: "upper-case 64 B",
  baseline: true,
  fn: () => {
    sink ^= naiveUpperCase(small)[0]!;
  },
});
Deno.bench({
  name: "upperCase(), 64 B",
  group: "upper-case 64 B",
  fn: () => {
    sink ^= upperCase(small)[0]!;
  },
});

Deno.bench({
  name: "byte loop, 64 KiB",
  group: "upper-case 64 KiB",
  baseline: true,
  fn: () => {
    sink ^= naiveUpperCase(large)[0]!;
  },
});
Deno.bench({
  name: "upperCase(), 64 KiB",
  group: "upper-case 64 KiB",
  fn: () => {
    sink ^= upperCase(large)[0]!;
  },
});

Deno.bench({
  name: "byte loop, 64 KiB already upper case",
  group: "upper-case 64 KiB, nothing to change",
  baseline: true,
  fn: () => {
    sink ^= naiveUpperCase(largeUpper)[0]!;
  },
});
Deno.bench({
  name: "upperCase(), 64 KiB already upper case (no copy)",
  group: "upper-case 64 KiB, nothing to change",
  fn: () => {
    sink ^= upperCase(largeUpper)[0]!;
  },
});

// The same 16 chunks of 64 KiB, through a stream or by direct calls.
const chunks = Array.from({ length: 16 }, () => large);

Deno.bench({
  name: "upperCase() on 16 chunks of 64 KiB",
  group: "upper-case as a stream, 1 MiB",
  baseline: true,
  fn: () => {
    for (const chunk of chunks) sink ^= upperCase(chunk)[0]!;
  },
});
Deno.bench({
  name: "UpperCaseStream via pipeThrough, 16 chunks of 64 KiB",
  group: "upper-case as a stream, 1 MiB",
  fn: async () => {
    const out = ReadableStream.from(chunks).pipeThrough(new UpperCaseStream());
    for await (const chunk of out) sink ^= chunk[0]!;
  },
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink); // never true; keeps `sink` alive
});

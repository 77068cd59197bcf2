/**
 * `Deno.bench` view of the framing cores on 16-byte messages: one 64 KiB
 * chunk (4096 messages) per iteration, the decoder against a plain loop
 * that splits the same bytes (the baseline of each group). Streams are left
 * to bench/framing_bench.ts, a script: under `deno bench` their per-message
 * chunks ran the process out of memory.
 *
 * ```sh
 * deno bench bench/framing_micro_bench.ts
 * ```
 *
 * @module
 */

import { LengthPrefixDecoder, LineDecoder } from "../framing.ts";

const SIZE = 16;
const lines = new Uint8Array(64 * 1024).fill(0x61);
for (let i = SIZE - 1; i < lines.length; i += SIZE) lines[i] = 0x0a;
const frames = new Uint8Array(64 * 1024).fill(0x62);
for (let i = 0; i < frames.length; i += SIZE) {
  new DataView(frames.buffer).setUint32(i, SIZE - 4);
}

let count = 0;
const sink = (message: Uint8Array) => {
  count += message.length;
};

Deno.bench("lines: plain indexOf loop", {
  group: "16-byte lines",
  baseline: true,
}, () => {
  let start = 0;
  for (
    let end = lines.indexOf(0x0a);
    end !== -1;
    end = lines.indexOf(0x0a, start)
  ) {
    sink(lines.subarray(start, end));
    start = end + 1;
  }
});

Deno.bench("lines: LineDecoder.transform", { group: "16-byte lines" }, () => {
  new LineDecoder().transform(lines, sink);
});

Deno.bench(
  "length: plain loop",
  { group: "16-byte frames", baseline: true },
  () => {
    for (let i = 0; i + 4 <= frames.length;) {
      const length = (frames[i]! << 24 | frames[i + 1]! << 16 |
        frames[i + 2]! << 8 | frames[i + 3]!) >>> 0;
      sink(frames.subarray(i + 4, i + 4 + length));
      i += 4 + length;
    }
  },
);

Deno.bench(
  "length: LengthPrefixDecoder.transform",
  { group: "16-byte frames" },
  () => {
    new LengthPrefixDecoder().transform(frames, sink);
  },
);

globalThis.addEventListener("unload", () => {
  if (count === 0) throw new Error("nothing was decoded");
});

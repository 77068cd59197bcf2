import assert from "node:assert/strict";
import {
  BatchStream,
  type Codec,
  delimited,
  DelimiterDecoder,
  DelimiterDecoderStream,
  DelimiterEncoder,
  DelimiterEncoderStream,
  framed,
  FrameTooLargeError,
  LENGTH_PREFIX_PRESETS,
  LengthPrefixDecoder,
  LengthPrefixDecoderStream,
  lengthPrefixed,
  LengthPrefixEncoder,
  LengthPrefixEncoderStream,
  type LengthPrefixOptions,
  LineDecoder,
  LineDecoderStream,
  LineEncoder,
  LineEncoderStream,
  lines,
  type OversizeOptions,
  TextLineDecoder,
  TextLineDecoderStream,
  TruncatedFrameError,
} from "../framing.ts";
import type { SyncTransformer } from "../sync_transform.ts";
import { chunkings as kitChunkings } from "../testing.ts";
import { Connection } from "../connection.ts";
import { concat } from "./_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

/** A seeded, reproducible generator of 32-bit numbers. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return state;
  };
}

/**
 * The same bytes as one chunk, one-byte chunks and seeded random splits:
 * the test kit's (sizes spread on a log scale), and small ones with empty
 * chunks among them.
 */
function chunkings(bytes: Uint8Array, seeds = 6): [string, Uint8Array[]][] {
  const out: [string, Uint8Array[]][] = kitChunkings(bytes, {
    seed: 1,
    splits: seeds,
  }).map(({ name, chunks }) => [name, [...chunks]]);
  for (let seed = 1; seed <= Math.max(1, seeds / 2); seed++) {
    const next = prng(seed);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length;) {
      const size = next() % 23; // empty chunks too
      chunks.push(bytes.slice(i, i + size));
      i += size;
    }
    out.push([`small random splits, seed ${seed}`, chunks]);
  }
  return out;
}

/** What a decoder produced: messages (copied), reports and the error. */
interface Outcome {
  messages: Uint8Array[];
  reports: FrameTooLargeError[];
  error?: unknown;
}

const MARKER = new Uint8Array([0xde, 0xad]); // in place of a dropped message

/**
 * Feeds a synchronous decoder the chunks, each through one scratch buffer
 * that is overwritten after every call, as a connection's engine reuses its
 * read buffer: a decoder that kept a view instead of copying would give
 * wrong bytes. Returns the error it threw, if any.
 */
function feedReused<O>(
  decoder: SyncTransformer<Uint8Array, O>,
  chunks: Uint8Array[],
  emit: (out: O) => void,
): { error?: unknown } {
  const scratch = new Uint8Array(Math.max(1, ...chunks.map((c) => c.length)));
  try {
    for (const chunk of chunks) {
      scratch.set(chunk);
      decoder.transform(scratch.subarray(0, chunk.length), emit);
      scratch.fill(0xee);
    }
    decoder.flush?.(emit);
  } catch (error) {
    return { error };
  }
  return {};
}

/** Runs a synchronous decoder over chunks through a reused buffer. */
function runSync(
  decoder: SyncTransformer<Uint8Array, Uint8Array>,
  chunks: Uint8Array[],
): Outcome {
  const messages: Uint8Array[] = [];
  const emit = (m: Uint8Array) => messages.push(m === MARKER ? m : m.slice());
  return { messages, reports: [], ...feedReused(decoder, chunks, emit) };
}

/** Oversize options that record reports and put MARKER in their place. */
function discarding(reports: FrameTooLargeError[]): OversizeOptions {
  return {
    oversize: "discard",
    onOversize: (error) => {
      reports.push(error);
      return MARKER;
    },
  };
}

/** One framing under test: how to make its decoders, and some traffic. */
interface Kind {
  name: string;
  limit: number;
  decoder(policy: OversizeOptions): SyncTransformer<Uint8Array, Uint8Array>;
  stream(policy: OversizeOptions): TransformStream<Uint8Array, Uint8Array>;
  /** Wire bytes of `message`, and what the decoder gives back for it. */
  encode(message: Uint8Array): [Uint8Array, Uint8Array];
  /** Wire bytes of a message over the limit. */
  oversized(size: number, next: () => number): Uint8Array;
  /** A message body of `size` random bytes that encodes. */
  body(size: number, next: () => number): Uint8Array;
}

const LIMIT = 40;

function randomBytes(
  size: number,
  next: () => number,
  alphabet?: number[],
): Uint8Array {
  return Uint8Array.from(
    { length: size },
    () => alphabet ? alphabet[next() % alphabet.length]! : next() & 0xff,
  );
}

function encodeWith(
  transformer: SyncTransformer<Uint8Array | string, Uint8Array>,
  message: Uint8Array | string,
): Uint8Array {
  const out: Uint8Array[] = [];
  transformer.transform(message, (b) => out.push(b));
  return concat(out);
}

function lineKind(newline: "\n" | "\r\n", keepDelimiter: boolean): Kind {
  const wide = new LineEncoder({ newline });
  const plain = new LineEncoder({ newline, maxEncodedLength: LIMIT });
  // Bytes without "\n"; with "\n" endings also no "\r" last, which would
  // read back as part of a CRLF.
  const body = (size: number, next: () => number) => {
    const bytes = randomBytes(size, next).map((b) => b === 0x0a ? 0x20 : b);
    if (newline === "\n" && size > 0 && bytes[size - 1] === 0x0d) {
      bytes[size - 1] = 0x21;
    }
    return bytes;
  };
  return {
    name: `lines ${JSON.stringify(newline)}${keepDelimiter ? " kept" : ""}`,
    limit: LIMIT,
    decoder: (policy) =>
      new LineDecoder({ maxLineLength: LIMIT, keepDelimiter, ...policy }),
    stream: (policy) =>
      new LineDecoderStream({ maxLineLength: LIMIT, keepDelimiter, ...policy }),
    encode(message) {
      const wire = encodeWith(plain, message);
      return [wire, keepDelimiter ? wire : message];
    },
    oversized: (size, next) => encodeWith(wide, body(size, next)),
    body,
  };
}

function delimiterKind(delimiter: string, alphabet?: string): Kind {
  const bytes = encoder.encode(delimiter);
  const plain = new DelimiterEncoder({ delimiter, maxEncodedLength: LIMIT });
  const wide = new DelimiterEncoder({ delimiter });
  const letters = alphabet ? Array.from(encoder.encode(alphabet)) : undefined;
  // Long messages avoid the delimiter's first byte, or would hardly ever
  // encode.
  const all = letters ?? Array.from({ length: 256 }, (_, i) => i);
  const safe = all.filter((b) => b !== bytes[0]);
  const body = (size: number, next: () => number) => {
    if (size > LIMIT) return randomBytes(size, next, safe);
    // Draw until the message encodes (it may hold the delimiter).
    while (true) {
      const candidate = randomBytes(size, next, letters);
      try {
        plain.transform(candidate, () => {});
        return candidate;
      } catch { /* draw again */ }
    }
  };
  return {
    name: `delimiter ${JSON.stringify(delimiter)}${
      alphabet ? ` over ${JSON.stringify(alphabet)}` : ""
    }`,
    limit: LIMIT,
    decoder: (policy) =>
      new DelimiterDecoder({ delimiter: bytes, maxLength: LIMIT, ...policy }),
    stream: (policy) =>
      new DelimiterDecoderStream({ delimiter, maxLength: LIMIT, ...policy }),
    encode: (message) => [encodeWith(plain, message), message],
    oversized: (size, next) => encodeWith(wide, body(size, next)),
    body,
  };
}

function prefixKind(layout: LengthPrefixOptions): Kind {
  const plain = new LengthPrefixEncoder({
    ...layout,
    maxEncodedLength: LIMIT,
  });
  // A 1-byte field cannot announce much more than the limit.
  const wideMax = layout.lengthFieldBytes === 1 ? 200 : 5000;
  const wide = new LengthPrefixEncoder({
    ...layout,
    maxEncodedLength: wideMax,
  });
  const header = (layout.lengthFieldOffset ?? 0) +
    (layout.lengthFieldBytes ?? 4);
  // With keepHeader a message is its header (offset bytes random) and payload.
  const withHeader = (payload: Uint8Array, next: () => number) => {
    if (!layout.keepHeader) return payload;
    return concat([randomBytes(header, next), payload]);
  };
  const least = Math.max(
    0,
    (layout.lengthAdjustment ?? 0) -
      (layout.lengthIncludesHeader ? header : 0),
  );
  return {
    name: `length prefix ${JSON.stringify(layout)}`,
    limit: LIMIT,
    decoder: (policy) =>
      new LengthPrefixDecoder({ ...layout, maxFrameLength: LIMIT, ...policy }),
    stream: (policy) =>
      new LengthPrefixDecoderStream({
        ...layout,
        maxFrameLength: LIMIT,
        ...policy,
      }),
    encode(message) {
      const wire = encodeWith(plain, message);
      return [wire, layout.keepHeader ? wire : message];
    },
    oversized: (size, next) =>
      encodeWith(
        wide,
        withHeader(randomBytes(Math.min(size, wideMax), next), next),
      ),
    body: (size, next) =>
      withHeader(randomBytes(Math.max(size, least), next), next),
  };
}

const KINDS: Kind[] = [
  lineKind("\n", false),
  lineKind("\r\n", false),
  lineKind("\r\n", true),
  delimiterKind("\0"),
  delimiterKind("||"),
  delimiterKind("\r\n\r\n", "\r\nab"),
  delimiterKind("aab", "ab"),
  prefixKind({ lengthFieldBytes: 1 }),
  prefixKind({ lengthFieldBytes: 2 }),
  prefixKind({ lengthFieldBytes: 3, littleEndian: true }),
  prefixKind({ lengthFieldBytes: 4 }),
  prefixKind({ lengthFieldBytes: 4, littleEndian: true }),
  prefixKind({ lengthFieldBytes: 8 }),
  prefixKind({ lengthFieldBytes: 8, littleEndian: true }),
  prefixKind({
    lengthFieldOffset: 3,
    lengthFieldBytes: 2,
    keepHeader: true,
  }),
  prefixKind({
    lengthFieldBytes: 4,
    littleEndian: true,
    lengthIncludesHeader: true,
    keepHeader: true,
  }),
  prefixKind({
    lengthFieldOffset: 1,
    lengthFieldBytes: 4,
    lengthAdjustment: -4,
    keepHeader: true,
  }),
  prefixKind({ lengthFieldBytes: 2, lengthAdjustment: 3 }),
];

/** Traffic for a kind: wire bytes and the messages a decoder gives back. */
function traffic(kind: Kind, seed: number, oversized: boolean) {
  const next = prng(seed);
  const wire: Uint8Array[] = [];
  const want: Uint8Array[] = [];
  let dropped = 0;
  for (let i = 0; i < 30; i++) {
    if (oversized && i % 6 === 3) {
      // Over the limit by one, and by a lot.
      const size = i % 12 === 3 ? LIMIT + 1 : LIMIT + 1 + next() % 300;
      wire.push(kind.oversized(size, next));
      want.push(MARKER);
      dropped++;
      continue;
    }
    const size = i % 7 === 0 ? 0 : i % 5 === 0 ? LIMIT : next() % LIMIT;
    const [bytes, decoded] = kind.encode(kind.body(size, next));
    wire.push(bytes);
    want.push(decoded);
  }
  return { bytes: concat(wire), want, dropped };
}

Deno.test("every decoder gives the same messages under any chunking", () => {
  for (const kind of KINDS) {
    const { bytes, want } = traffic(kind, 7, false);
    for (const [name, chunks] of chunkings(bytes)) {
      const got = runSync(kind.decoder({}), chunks);
      assert.equal(got.error, undefined, `${kind.name}, ${name}`);
      assert.deepEqual(got.messages, want, `${kind.name}, ${name}`);
    }
  }
});

Deno.test('every decoder drops oversized messages under "discard", reports each once and goes on', () => {
  for (const kind of KINDS) {
    const { bytes, want, dropped } = traffic(kind, 11, true);
    assert.ok(dropped >= 4);
    for (const [name, chunks] of chunkings(bytes)) {
      const reports: FrameTooLargeError[] = [];
      const got = runSync(kind.decoder(discarding(reports)), chunks);
      const label = `${kind.name}, ${name}`;
      assert.equal(got.error, undefined, label);
      assert.deepEqual(got.messages, want, label);
      assert.equal(reports.length, dropped, label);
      for (const report of reports) {
        assert.ok(report instanceof FrameTooLargeError, label);
        assert.equal(report.limit, LIMIT, label);
        assert.ok(report.length > LIMIT, label);
      }
    }
  }
});

Deno.test('without onOversize, "discard" drops oversized messages silently and goes on', () => {
  for (const kind of KINDS) {
    const { bytes, want } = traffic(kind, 5, true);
    const { messages, error } = runSync(
      kind.decoder({ oversize: "discard" }),
      [bytes],
    );
    assert.equal(error, undefined, kind.name);
    assert.deepEqual(messages, want.filter((m) => m !== MARKER), kind.name);
  }
});

Deno.test("every decoder fails on an oversized message with the numbers, after every earlier message", () => {
  for (const kind of KINDS) {
    const { bytes, want } = traffic(kind, 3, true);
    const before = want.slice(0, want.indexOf(MARKER));
    for (const [name, chunks] of chunkings(bytes, 4)) {
      const label = `${kind.name}, ${name}`;
      const decoder = kind.decoder({});
      const got = runSync(decoder, chunks);
      assert.deepEqual(got.messages, before, label);
      const error = got.error;
      assert.ok(error instanceof FrameTooLargeError, label);
      assert.ok(error instanceof RangeError);
      assert.equal(error.limit, LIMIT, label);
      assert.ok(error.length > LIMIT, label);
      assert.match(
        error.message,
        /^Cannot decode (line|message|frame) as its length must be <= 40 bytes: current length is (at least )?\d+ bytes$/,
        label,
      );
      assert.ok(error.message.includes(`${error.length} bytes`), label);
      // A failed decoder stays failed.
      assert.throws(() => decoder.transform(new Uint8Array(1), () => {}), {
        message: error.message,
      });
    }
  }
});

Deno.test("every decoder stream gives the same messages as its core, batched too", async () => {
  for (const kind of KINDS) {
    const { bytes, want } = traffic(kind, 13, true);
    for (const [name, chunks] of chunkings(bytes, 2)) {
      const label = `${kind.name}, ${name}`;
      const reports: FrameTooLargeError[] = [];
      const streamed = await Array.fromAsync(
        ReadableStream.from(chunks).pipeThrough(
          kind.stream(discarding(reports)),
        ),
        (m) => m === MARKER ? m : m.slice(),
      );
      assert.deepEqual(streamed, want, label);
      const batches = await Array.fromAsync(
        ReadableStream.from(chunks).pipeThrough(
          new BatchStream(kind.decoder(discarding([]))),
        ),
        (batch) => batch.map((m) => m === MARKER ? m : m.slice()),
      );
      assert.ok(batches.every((batch) => batch.length > 0), label);
      assert.deepEqual(batches.flat(), want, label);
    }
  }
});

Deno.test("BatchStream and framed() deliver every message before a decoding error", async () => {
  const bytes = encoder.encode("a\nb\nc\n" + "x".repeat(50) + "\nnever\n");
  const batches: string[][] = [];
  await assert.rejects(
    (async () => {
      for await (
        const batch of ReadableStream.from([bytes]).pipeThrough(
          new BatchStream(new LineDecoder({ maxLineLength: 10 })),
        )
      ) batches.push(batch.map(text));
    })(),
    { name: "FrameTooLargeError", length: 50, limit: 10 },
  );
  assert.deepEqual(batches, [["a", "b", "c"]]);

  for (const batch of [false, true]) {
    const seen: string[] = [];
    const { readable, writable } = framed(
      {
        readable: ReadableStream.from([bytes]),
        writable: new WritableStream(),
      },
      lines({ maxLineLength: 10 }),
      { batch },
    );
    await assert.rejects(
      (async () => {
        for await (const item of readable) {
          for (const line of Array.isArray(item) ? item : [item]) {
            seen.push(text(line));
          }
        }
      })(),
      FrameTooLargeError,
    );
    assert.deepEqual(seen, ["a", "b", "c"], `batch: ${batch}`);
    await writable.close();
  }
});

Deno.test("a line decoder with its limit accepts a line at the limit, CRLF or not, and no more", () => {
  const ok = "x".repeat(8);
  for (
    const [name, chunks] of chunkings(
      encoder.encode(`${ok}\r\n${ok}\n${ok}`),
    )
  ) {
    const got = runSync(new LineDecoder({ maxLineLength: 8 }), chunks);
    assert.deepEqual(got.messages.map(text), [ok, ok, ok], name);
  }
  for (const bad of [`${ok}y\n`, `${ok}y\r\n`, `${ok}\r\r\n`, `${ok}y`]) {
    for (const [name, chunks] of chunkings(encoder.encode(`a\n${bad}`), 4)) {
      const got = runSync(new LineDecoder({ maxLineLength: 8 }), chunks);
      assert.deepEqual(got.messages.map(text), ["a"], `${bad} ${name}`);
      assert.ok(got.error instanceof FrameTooLargeError, `${bad} ${name}`);
      assert.equal(got.error.length, 9, `${bad} ${name}`);
    }
  }
});

Deno.test("a line decoder waiting for a newline holds no more than its limit", async () => {
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(1000).fill(0x61));
    },
  }, { highWaterMark: 0 });
  await assert.rejects(
    Array.fromAsync(
      endless.pipeThrough(new LineDecoderStream({ maxLineLength: 4096 })),
    ),
    {
      name: "FrameTooLargeError",
      message:
        "Cannot decode line as its length must be <= 4096 bytes: current length is at least 4999 bytes",
    },
  );
  // 4096 bytes (+1 for a possible "\r") fit in five chunks; the fifth fails.
  assert.equal(pulled, 5);
});

Deno.test('"discard" skips a line that never ends without holding it', () => {
  const reports: FrameTooLargeError[] = [];
  const decoder = new LineDecoder({
    maxLineLength: 16,
    ...discarding(reports),
  });
  const out: Uint8Array[] = [];
  decoder.transform(
    encoder.encode("ok\n" + "z".repeat(20)),
    (m) => out.push(m),
  );
  for (let i = 0; i < 1000; i++) {
    decoder.transform(new Uint8Array(1000).fill(0x7a), (m) => out.push(m));
  }
  decoder.transform(encoder.encode("zz\nnext\n"), (m) => out.push(m));
  assert.deepEqual(out.map((m) => m === MARKER ? "MARKER" : text(m)), [
    "ok",
    "MARKER",
    "next",
  ]);
  assert.equal(reports.length, 1);
  assert.equal(reports[0]!.length, 19);
  assert.equal(
    reports[0]!.message,
    "Cannot decode line as its length must be <= 16 bytes: current length is at least 19 bytes",
  );
});

Deno.test("decoders hand on messages inside one chunk as views and copy only across chunks", () => {
  const chunk = encoder.encode("one\ntwo\nthr");
  const out: Uint8Array[] = [];
  const lineDecoder = new LineDecoder();
  lineDecoder.transform(chunk, (m) => out.push(m));
  lineDecoder.transform(encoder.encode("ee\n"), (m) => out.push(m));
  assert.equal(out[0]!.buffer, chunk.buffer);
  assert.equal(out[1]!.buffer, chunk.buffer);
  assert.notEqual(out[2]!.buffer, chunk.buffer);
  assert.deepEqual(out.map(text), ["one", "two", "three"]);

  const frames: Uint8Array[] = [];
  const wire = new Uint8Array([0, 0, 0, 2, 7, 8, 0, 0, 0, 3, 9]);
  const prefixDecoder = new LengthPrefixDecoder();
  prefixDecoder.transform(wire, (f) => frames.push(f));
  prefixDecoder.transform(new Uint8Array([9, 9]), (f) => frames.push(f));
  assert.equal(frames[0]!.buffer, wire.buffer);
  assert.equal(frames[0]!.byteOffset, 4);
  assert.deepEqual(frames[1], new Uint8Array([9, 9, 9]));
  assert.equal(frames[1]!.buffer.byteLength, 3);
});

Deno.test("a length prefix announcing a large frame reserves memory only as bytes arrive", () => {
  const decoders: LengthPrefixDecoder[] = [];
  const before = Deno.memoryUsage().external;
  for (let i = 0; i < 100; i++) {
    const decoder = new LengthPrefixDecoder({ maxFrameLength: 8 << 20 });
    // A header announcing 8 MiB, and 10 bytes of it.
    decoder.transform(
      new Uint8Array([0, 0x80, 0, 0, ...new Uint8Array(10)]),
      () => {},
    );
    decoders.push(decoder);
  }
  const grown = Deno.memoryUsage().external - before;
  // Reserving the announced length would be 800 MiB.
  assert.ok(grown < 8 << 20, `external memory grew by ${grown} bytes`);

  // The frame still completes, in pieces of any size.
  const frames: Uint8Array[] = [];
  const decoder = decoders[0]!;
  for (let sent = 10; sent < 8 << 20; sent += 65536) {
    decoder.transform(
      new Uint8Array(Math.min(65536, (8 << 20) - sent)),
      (f) => frames.push(f),
    );
  }
  assert.equal(frames.length, 1);
  assert.equal(frames[0]!.length, 8 << 20);
});

Deno.test("LengthPrefixDecoder.reserve() lends the rest of the frame under way, at most the room asked, and commit() takes it as transform() would", () => {
  const decoder = new LengthPrefixDecoder({ maxFrameLength: 1 << 20 });
  const frames: Uint8Array[] = [];
  const emit = (frame: Uint8Array) => frames.push(frame.slice());
  assert.equal(decoder.reserve(4096), undefined, "before any frame");
  // A header announcing 100,000 bytes, and 3 of them.
  decoder.transform(new Uint8Array([0, 1]), emit);
  assert.equal(decoder.reserve(4096), undefined, "inside a header");
  decoder.transform(new Uint8Array([0x86, 0xa0, 1, 2, 3]), emit);
  const small = decoder.reserve(10)!;
  assert.equal(small.length, 10, "no more than the room asked");
  assert.throws(
    () => decoder.commit(11, emit),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot commit 11 bytes to the frame under way: 10 bytes are reserved",
  );
  small.set([4, 5]);
  decoder.commit(2, emit);
  const large = decoder.reserve(1 << 20)!;
  assert.equal(large.length, 100_000 - 5, "never past the frame's end");
  large.fill(9, 0, 50_000);
  decoder.commit(50_000, emit);
  assert.equal(frames.length, 0);
  // The rest through transform(), with the next frame's start behind it.
  decoder.transform(
    new Uint8Array([...new Uint8Array(49_995).fill(8), 0, 0, 0, 1, 6]),
    emit,
  );
  assert.equal(frames.length, 2);
  const [first, second] = frames as [Uint8Array, Uint8Array];
  assert.equal(first.length, 100_000);
  assert.deepEqual(first.subarray(0, 6), new Uint8Array([1, 2, 3, 4, 5, 9]));
  assert.equal(first[50_004], 9);
  assert.equal(first[50_005], 8);
  assert.equal(first[99_999], 8);
  assert.deepEqual(second, new Uint8Array([6]));
  assert.equal(decoder.reserve(4096), undefined, "between frames");
  // More than was lent is refused, with the numbers.
  decoder.transform(new Uint8Array([0, 0, 0, 3, 1]), emit);
  decoder.reserve(4096);
  assert.throws(
    () => decoder.commit(3, emit),
    (error: unknown) =>
      error instanceof RangeError &&
      error.message ===
        "Cannot commit 3 bytes to the frame under way: 2 bytes are reserved",
  );
  assert.throws(() => decoder.commit(-1, emit), RangeError);
  decoder.commit(2, emit);
  assert.deepEqual(frames.at(-1), new Uint8Array([1, 0, 0]));
  // After a decoding error, as every call.
  assert.throws(() => decoder.transform(new Uint8Array(5).fill(255), emit));
  assert.equal(decoder.reserve(4096), undefined);
  assert.throws(() => decoder.commit(1, emit), FrameTooLargeError);
});

Deno.test("truncated input is a TruncatedFrameError with the numbers, after the frames before it", () => {
  const cases: [LengthPrefixOptions, Uint8Array, number, number][] = [
    [{}, new Uint8Array([0, 0, 0, 5, 1, 2]), 6, 9],
    [{}, new Uint8Array([0, 0]), 2, 4],
    [{ lengthFieldBytes: 2 }, new Uint8Array([0]), 1, 2],
    [
      { lengthFieldBytes: 2, keepHeader: true },
      new Uint8Array([0, 3, 1]),
      3,
      5,
    ],
    [
      { lengthFieldOffset: 3, lengthFieldBytes: 2, keepHeader: true },
      new Uint8Array([22, 3, 3, 0]),
      4,
      5,
    ],
  ];
  for (const [layout, tail, received, expected] of cases) {
    const first = encodeWith(
      new LengthPrefixEncoder(layout),
      layout.keepHeader
        ? new Uint8Array([
          ...new Uint8Array(
            (layout.lengthFieldOffset ?? 0) + (layout.lengthFieldBytes ?? 4),
          ),
          7,
        ])
        : new Uint8Array([7]),
    );
    for (const [name, chunks] of chunkings(concat([first, tail]), 4)) {
      const label = `${JSON.stringify(layout)} ${name}`;
      const got = runSync(new LengthPrefixDecoder(layout), chunks);
      assert.equal(got.messages.length, 1, label);
      assert.equal(got.messages[0]!.at(-1), 7, label);
      assert.ok(got.error instanceof TruncatedFrameError, label);
      assert.ok(got.error instanceof Error);
      assert.equal(got.error.received, received, label);
      assert.equal(got.error.expected, expected, label);
      assert.equal(
        got.error.message,
        `Cannot decode frame as the input ended inside it: received ${received} of ${expected} bytes`,
      );
    }
  }
  // Input that ends inside a dropped frame is truncated too.
  const got = runSync(
    new LengthPrefixDecoder({ maxFrameLength: 4, oversize: "discard" }),
    [new Uint8Array([0, 0, 0, 9, 1, 2])],
  );
  assert.ok(got.error instanceof TruncatedFrameError);
  assert.equal(got.error.received, 6);
  assert.equal(got.error.expected, 13);
});

Deno.test("a length the layout cannot express or make sense of is a named error with the numbers", () => {
  // Counting the header, a 4-byte field must hold at least 4.
  const counted = runSync(
    new LengthPrefixDecoder({
      lengthIncludesHeader: true,
      oversize: "discard",
    }),
    [new Uint8Array([0, 0, 0, 5, 1, 0, 0, 0, 2, 9, 9])],
  );
  assert.deepEqual(counted.messages, [new Uint8Array([1])]);
  assert.ok(counted.error instanceof SyntaxError);
  assert.equal(
    counted.error.message,
    "Cannot decode frame as its length field must be >= 4: current value is 2",
  );
  // An 8-byte length past 2^53 cannot be skipped, even under "discard".
  const huge = runSync(
    new LengthPrefixDecoder({ lengthFieldBytes: 8, oversize: "discard" }),
    [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1])],
  );
  assert.ok(huge.error instanceof FrameTooLargeError);
  assert.equal(huge.error.length, 2 ** 64);
  // Encoding: over the field, or under what the adjustment needs.
  assert.throws(
    () =>
      encodeWith(
        new LengthPrefixEncoder({ lengthFieldBytes: 1 }),
        new Uint8Array(256),
      ),
    {
      name: "FrameTooLargeError",
      message:
        "Cannot encode frame as its length must be <= 255 bytes for a 1-byte length field: current length is 256 bytes",
      length: 256,
      limit: 255,
    },
  );
  assert.throws(
    () =>
      encodeWith(
        new LengthPrefixEncoder({ lengthFieldBytes: 2, lengthAdjustment: 3 }),
        new Uint8Array(2),
      ),
    {
      name: "RangeError",
      message:
        "Cannot encode frame as its length must be >= 3 bytes: current length is 2 bytes",
    },
  );
});

Deno.test("length-prefix options are checked against the field width when made", () => {
  assert.throws(() => new LengthPrefixDecoder({ lengthFieldBytes: 5 as 4 }), {
    name: "RangeError",
    message:
      "Cannot create length-prefix decoder as lengthFieldBytes must be 1, 2, 3, 4 or 8: current value is 5",
  });
  assert.throws(
    () => lengthPrefixed({ lengthFieldBytes: 2, maxFrameLength: 70000 }),
    {
      name: "RangeError",
      message:
        "Cannot create length-prefix decoder as maxFrameLength must be <= 65535 bytes for a 2-byte length field: current value is 70000",
    },
  );
  assert.throws(
    () =>
      new LengthPrefixEncoder({
        lengthFieldBytes: 1,
        lengthAdjustment: -10,
        maxFrameLength: 250,
      }),
    /maxFrameLength must be <= 245 bytes for a 1-byte length field/,
  );
  assert.throws(
    () => new LengthPrefixDecoder({ prefixBytes: 2, lengthFieldBytes: 4 }),
    {
      name: "TypeError",
      message:
        "Cannot create length-prefix decoder as prefixBytes and lengthFieldBytes must agree: current values are 2 and 4",
    },
  );
  assert.throws(
    () => new LengthPrefixEncoder({ lengthFieldOffset: 2 }),
    TypeError,
  );
  assert.throws(() => new LengthPrefixDecoder("nope" as "dns"), {
    name: "RangeError",
    message:
      'Cannot create length-prefix decoder as preset must be one of "uint32be", "dns", "tls-record", "mongodb": current value is "nope"',
  });
  assert.throws(() => new LengthPrefixDecoder({ maxFrameLength: -1 }), {
    name: "RangeError",
    message:
      "Cannot create length-prefix decoder as maxFrameLength must be a non-negative integer: current value is -1",
  });
  assert.throws(() => new LineDecoder({ oversize: "drop" as "discard" }), {
    name: "TypeError",
    message:
      'Cannot create line decoder as oversize must be "error" or "discard": current value is "drop"',
  });
  assert.throws(() => new DelimiterDecoder({ delimiter: "" }), {
    name: "RangeError",
    message:
      "Cannot create delimiter decoder as delimiter must be at least 1 byte long: current length is 0 bytes",
  });
  // The former option name and limits still work; the default limit is
  // what the field can express when that is less than 1 MiB.
  assert.throws(
    () =>
      encodeWith(
        new LengthPrefixEncoder({ prefixBytes: 2 }),
        new Uint8Array(65536),
      ),
    { name: "FrameTooLargeError", limit: 65535 },
  );
});

Deno.test("presets frame DNS over TCP, TLS records and MongoDB messages", () => {
  assert.deepEqual(LENGTH_PREFIX_PRESETS.dns, {
    lengthFieldBytes: 2,
    maxFrameLength: 65535,
  });
  const dns = encodeWith(new LengthPrefixEncoder("dns"), new Uint8Array(300));
  assert.deepEqual(dns.subarray(0, 2), new Uint8Array([1, 44]));
  assert.equal(dns.length, 302);
  // A TLS handshake record: type 22, version 3.1, 5 bytes of payload.
  const record = new Uint8Array([
    22,
    3,
    1,
    0,
    5,
    1,
    2,
    3,
    4,
    5,
    23,
    3,
    3,
    0,
    0,
  ]);
  for (const [name, chunks] of chunkings(record, 3)) {
    const got = runSync(new LengthPrefixDecoder("tls-record"), chunks);
    assert.deepEqual(got.messages, [
      record.subarray(0, 10),
      record.subarray(10),
    ], name);
  }
  // MongoDB: the little-endian length counts itself.
  const message = new Uint8Array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6]);
  const wire = encodeWith(
    new LengthPrefixEncoder({ preset: "mongodb" }),
    message,
  );
  assert.deepEqual(wire.subarray(0, 4), new Uint8Array([10, 0, 0, 0]));
  assert.deepEqual(
    runSync(new LengthPrefixDecoder("mongodb"), [wire]).messages,
    [wire],
  );
  // Settings beside a preset override it.
  assert.throws(
    () =>
      encodeWith(
        new LengthPrefixEncoder({ preset: "dns", maxEncodedLength: 512 }),
        new Uint8Array(513),
      ),
    { name: "FrameTooLargeError", limit: 512 },
  );
  // A preset's limits are the protocol's: they bound what is written too.
  assert.throws(
    () =>
      encodeWith(new LengthPrefixEncoder("tls-record"), new Uint8Array(18438)),
    { name: "FrameTooLargeError", length: 18433, limit: 18432 },
  );
});

Deno.test("encoders take strings and bytes alike and refuse what would not read back", () => {
  const line = new LineEncoder({ newline: "\r\n" });
  const delimiter = new DelimiterEncoder({ delimiter: "aa" });
  const prefix = new LengthPrefixEncoder({ lengthFieldBytes: 1 });
  for (const message of ["héllo", "", "\r"]) {
    const bytes = encoder.encode(message);
    for (const e of [line, delimiter, prefix]) {
      assert.deepEqual(encodeWith(e, message), encodeWith(e, bytes));
    }
  }
  assert.equal(text(encodeWith(line, "a\r")), "a\r\r\n");
  assert.equal(text(encodeWith(new LineEncoder(), "x")), "x\n");
  assert.throws(() => encodeWith(line, "a\nb"), {
    name: "TypeError",
    message:
      'Cannot encode line as it must not contain "\\n": found at index 1',
  });
  assert.throws(
    () => encodeWith(new LineEncoder({ maxEncodedLength: 3 }), "toolong"),
    {
      name: "FrameTooLargeError",
      length: 7,
      limit: 3,
    },
  );
  // "a" + "aa" would read back as "" and then "a".
  assert.throws(() => encodeWith(delimiter, "a"), {
    name: "TypeError",
    message:
      'Cannot encode message as it must not contain its delimiter "aa": found at index 0',
  });
  assert.throws(() => encodeWith(delimiter, "baab"), /found at index 1/);
  for (const e of [line, delimiter, prefix]) {
    assert.throws(() => e.transform(42 as unknown as string, () => {}), {
      name: "TypeError",
      message:
        /^Cannot encode (line|message|frame) as it must be a Uint8Array or a string: current type is number$/,
    });
  }
  assert.throws(() => new LineEncoder({ newline: "\r" as "\n" }), TypeError);
});

Deno.test("encoder streams round-trip through their decoder streams", async () => {
  const messages = ["", "hello", "", "wörld", "a\rb"];
  const pairs: [
    TransformStream<Uint8Array | string, Uint8Array>,
    TransformStream<Uint8Array, Uint8Array>,
  ][] = [
    [new LineEncoderStream({ newline: "\r\n" }), new LineDecoderStream()],
    [
      new DelimiterEncoderStream({ delimiter: "\0\0" }),
      new DelimiterDecoderStream({ delimiter: "\0\0" }),
    ],
    [
      new LengthPrefixEncoderStream({ lengthFieldBytes: 3 }),
      new LengthPrefixDecoderStream({ lengthFieldBytes: 3 }),
    ],
  ];
  for (const [encode, decode] of pairs) {
    const got = await Array.fromAsync(
      ReadableStream.from(messages).pipeThrough(encode).pipeThrough(decode),
      text,
    );
    assert.deepEqual(got, messages);
  }
});

Deno.test('a line the "\\n" encoder ends in "\\r" reads back without it, as CRLF', async () => {
  const bytes = await new Response(
    ReadableStream.from(["\r"]).pipeThrough(new LineEncoderStream()),
  ).bytes();
  assert.deepEqual(runSync(new LineDecoder(), [bytes]).messages, [
    new Uint8Array(0),
  ]);
});

Deno.test("framing.ts loads and decodes without the Deno global", async () => {
  const url = new URL("../framing.ts", import.meta.url).href;
  const script = `
    delete globalThis.Deno;
    if ("Deno" in globalThis) throw new Error("Deno is still there");
    const f = await import(${JSON.stringify(url)});
    const out = [];
    const lines = new f.LineDecoder({ maxLineLength: 4, oversize: "discard", onOversize: (e) => { out.push("dropped " + e.length); } });
    lines.transform(new TextEncoder().encode("ab\\r\\ntoolong\\ncd"), (m) => out.push(new TextDecoder().decode(m)));
    lines.flush((m) => out.push(new TextDecoder().decode(m)));
    const frames = await Array.fromAsync(
      ReadableStream.from([new Uint8Array([0, 1, 9, 0, 1, 8])])
        .pipeThrough(new f.LengthPrefixDecoderStream("dns")),
    );
    out.push(frames.map((x) => x.join(",")).join(";"));
    const d = new f.LengthPrefixDecoder();
    d.transform(new Uint8Array([0, 0]), () => {});
    try { d.flush(() => {}); } catch (e) { out.push(e.name + ": " + e.message); }
    console.log(JSON.stringify(out));
  `;
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-config", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, text(stderr));
  assert.deepEqual(JSON.parse(text(stdout)), [
    "ab",
    "dropped 7",
    "cd",
    "9;8",
    "TruncatedFrameError: Cannot decode frame as the input ended inside it: received 2 of 4 bytes",
  ]);
});

Deno.test("framed() exchanges lines over a loopback connection, answering after half-close", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    const { readable, writable } = framed(conn, lines());
    const writer = writable.getWriter();
    let count = 0;
    for await (const line of readable) {
      count++;
      await writer.write(text(line).toUpperCase());
    }
    await writer.write(`${count} lines`); // after the client's FIN
    await writer.close();
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lines(),
  );
  await ReadableStream.from(["one", "", "three"]).pipeTo(client.writable);
  const answers = await Array.fromAsync(client.readable, text);
  await served;
  assert.deepEqual(answers, ["ONE", "", "THREE", "3 lines"]);
});

Deno.test('framed() lets a line server answer "line too long" in order and go on', async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const TOO_LONG = new Uint8Array(0);
  const served = listener.accept().then(async (conn) => {
    const { readable, writable } = framed(
      conn,
      lines({ maxLineLength: 20, newline: "\r\n" }),
      { batch: true, oversize: "discard", onOversize: () => TOO_LONG },
    );
    const writer = writable.getWriter();
    for await (const batch of readable) {
      for (const line of batch) {
        await writer.write(
          line === TOO_LONG ? "-ERR line too long" : `+${text(line)}`,
        );
      }
    }
    await writer.close();
  });
  await using client = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  );
  const long = "y".repeat(100_000);
  await ReadableStream.from(
    ["a\r\nb\r\n", long.slice(0, 50_000), long.slice(50_000) + "\r\nc\r\n"],
  ).pipeThrough(new TextEncoderStream()).pipeTo(client.writable);
  const answer = await new Response(client.readable).text();
  await served;
  assert.equal(answer, "+a\r\n+b\r\n-ERR line too long\r\n+c\r\n");
});

Deno.test("framed() serves length-prefixed requests and responses both ways", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const codec = lengthPrefixed({ lengthFieldBytes: 2 });
  const served = listener.accept().then(async (conn) => {
    const { readable, writable } = framed(conn, codec);
    await readable
      .pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform: (m, c) => c.enqueue(m.slice().reverse()),
        }),
      )
      .pipeTo(writable);
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    codec,
  );
  const next = prng(42);
  const requests = Array.from(
    { length: 40 },
    (_, i) => randomBytes(i % 5 === 0 ? 0 : next() % 60_000, next),
  )
    .concat([new Uint8Array(65535).fill(3)]);
  const [, responses] = await Promise.all([
    ReadableStream.from(requests).pipeTo(client.writable),
    Array.fromAsync(client.readable, (m) => m.slice()),
    served,
  ]);
  assert.deepEqual(responses, requests.map((r) => r.slice().reverse()));
});

Deno.test("framed() surfaces an oversized frame from the peer on the readable", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    await conn.write(
      new Uint8Array([0, 0, 0, 1, 42, 0, 0, 0, 2, 43, 44, 0, 0, 1, 0]),
    );
    await conn.closeWrite();
    // Wait for the client to go away.
    while (await conn.read(new Uint8Array(16)) !== null) { /* drain */ }
    conn.close();
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lengthPrefixed({ maxFrameLength: 100 }),
  );
  const seen: number[][] = [];
  await assert.rejects(
    (async () => {
      for await (const frame of client.readable) seen.push([...frame]);
    })(),
    { name: "FrameTooLargeError", length: 256, limit: 100 },
  );
  assert.deepEqual(seen, [[42], [43, 44]]);
  await client.writable.close();
  await served;
});

Deno.test("framed() aborts the connection when a message cannot be encoded", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    const buffer = new Uint8Array(64);
    let total = 0;
    try {
      for (let n; (n = await conn.read(buffer)) !== null;) total += n;
    } catch { /* reset */ }
    conn.close();
    return total;
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lines(),
  );
  const writer = client.writable.getWriter();
  await writer.write("fine");
  await assert.rejects(writer.write("not\nfine"), TypeError);
  await assert.rejects(Array.fromAsync(client.readable));
  assert.equal(await served, 5);
});

Deno.test("framed() takes any byte pair and codecs of plain TransformStreams", async () => {
  const sent: Uint8Array[] = [];
  const codec: Codec<Uint8Array> = {
    decoder: () =>
      new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, c) =>
          chunk.forEach((b) => c.enqueue(new Uint8Array([b]))),
      }),
    encoder: () => new TransformStream<Uint8Array, Uint8Array>(),
  };
  const { readable, writable } = framed(
    {
      readable: ReadableStream.from([
        new Uint8Array([1, 2]),
        new Uint8Array([3]),
      ]),
      writable: new WritableStream({ write: (c) => void sent.push(c) }),
    },
    codec,
    { batch: true },
  );
  assert.deepEqual(
    await Array.fromAsync(readable, (batch) => batch.map((m) => m[0])),
    [[1], [2], [3]],
  );
  await ReadableStream.from([new Uint8Array([9])]).pipeTo(writable);
  assert.deepEqual(sent, [new Uint8Array([9])]);
});

Deno.test("delimited() frames messages over framed()", async () => {
  const wire: Uint8Array[] = [];
  const { readable, writable } = framed(
    {
      readable: ReadableStream.from([
        encoder.encode("a\r\n\r"),
        encoder.encode("\nb\r\n\r\n"),
      ]),
      writable: new WritableStream({ write: (c) => void wire.push(c) }),
    },
    delimited({ delimiter: "\r\n\r\n" }),
  );
  assert.deepEqual(await Array.fromAsync(readable, text), ["a", "b"]);
  await ReadableStream.from(["x", encoder.encode("y")]).pipeTo(writable);
  assert.equal(text(concat(wire)), "x\r\n\r\ny\r\n\r\n");
});

Deno.test("framed() uses a Connection, of any subclass, as it is and locks its streams only when used", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  class Tagged extends Connection {}
  const served = listener.accept().then(async (conn) => {
    await using connection = new Tagged(conn);
    // Raw bytes out first, through the connection itself...
    await connection.write(encoder.encode("raw\n"));
    // ...then messages both ways over the same connection.
    const { readable, writable } = framed(connection, lines());
    const writer = writable.getWriter();
    for await (const line of readable) await writer.write(text(line) + "!");
    await writer.close();
    await connection.closed;
  });
  await using client = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  );
  const messages = framed(client, lines());
  await ReadableStream.from(["a", "b"]).pipeTo(messages.writable);
  assert.deepEqual(await Array.fromAsync(messages.readable, text), [
    "raw",
    "a!",
    "b!",
  ]);
  await served;
});

Deno.test("onOversize returns a message or nothing", () => {
  const decoder = new LineDecoder({
    maxLineLength: 1,
    oversize: "discard",
    onOversize: () => 5 as unknown as Uint8Array,
  });
  assert.throws(() => decoder.transform(encoder.encode("abc\n"), () => {}), {
    name: "TypeError",
    message:
      "Cannot hand on a dropped message's replacement as onOversize must return a Uint8Array or undefined: current type is number",
  });
});

// Separate limits for reading and writing (issue 19, item 2).

/** The three codecs, each with a short decoding limit. */
const SHORT_LIMIT = 16;
const SHORT_CODECS: [string, Codec<Uint8Array | string>][] = [
  ["lines", lines({ maxLineLength: SHORT_LIMIT })],
  ["delimited", delimited({ delimiter: "\0", maxLength: SHORT_LIMIT })],
  ["lengthPrefixed", lengthPrefixed({ maxFrameLength: SHORT_LIMIT })],
];

Deno.test("a server with a short input limit sends a long answer whole, with every codec", async () => {
  const answer = "x".repeat(70_000);
  for (const [name, codec] of SHORT_CODECS) {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const served = listener.accept().then(async (conn) => {
      const messages = framed(conn, codec);
      const writer = messages.writable.getWriter();
      for await (const request of messages.readable) {
        await writer.write(text(request) === "long?" ? answer : "short");
      }
      await writer.close();
    });
    // The client reads with a limit large enough for the answer.
    const client = framed(
      await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      name === "lines"
        ? lines({ maxLineLength: 1 << 20 })
        : name === "delimited"
        ? delimited({ delimiter: "\0", maxLength: 1 << 20 })
        : lengthPrefixed({ maxFrameLength: 1 << 20 }),
    );
    await ReadableStream.from(["long?", "hi", "long?"]).pipeTo(
      client.writable,
    );
    const answers = await Array.fromAsync(client.readable, text);
    await served;
    assert.deepEqual(answers, [answer, "short", answer], name);
  }
});

Deno.test("maxEncodedLength refuses a longer message with a FrameTooLargeError naming both numbers", async () => {
  const cases: [SyncTransformer<Uint8Array | string, Uint8Array>, string][] = [
    [
      new LineEncoder({ maxLineLength: 2, maxEncodedLength: 8 }),
      "Cannot encode line as its length must be <= 8 bytes: current length is 9 bytes",
    ],
    [
      new DelimiterEncoder({
        delimiter: "\0",
        maxLength: 2,
        maxEncodedLength: 8,
      }),
      "Cannot encode message as its length must be <= 8 bytes: current length is 9 bytes",
    ],
    [
      new LengthPrefixEncoder({ maxFrameLength: 2, maxEncodedLength: 8 }),
      "Cannot encode frame as its length must be <= 8 bytes: current length is 9 bytes",
    ],
  ];
  for (const [encoderUnderTest, message] of cases) {
    // At the limit: written, though over the decoding limit.
    assert.ok(encodeWith(encoderUnderTest, "12345678").length > 8);
    assert.throws(() => encodeWith(encoderUnderTest, "123456789"), (error) => {
      assert.ok(error instanceof FrameTooLargeError);
      assert.ok(error instanceof RangeError);
      assert.equal(error.message, message);
      assert.equal(error.length, 9);
      assert.equal(error.limit, 8);
      return true;
    });
  }
  // Through framed(): the write is refused and nothing of it is sent.
  const sent: Uint8Array[] = [];
  const messages = framed(
    {
      readable: ReadableStream.from<Uint8Array>([]),
      writable: new WritableStream({ write: (b) => void sent.push(b) }),
    },
    lines({ maxEncodedLength: 4 }),
  );
  const writer = messages.writable.getWriter();
  await writer.write("four");
  await assert.rejects(writer.write("fives"), {
    name: "FrameTooLargeError",
    message:
      "Cannot encode line as its length must be <= 4 bytes: current length is 5 bytes",
  });
  assert.equal(text(concat(sent)), "four\n");
});

Deno.test("maxEncodedLength is checked when made and is unlimited by default", () => {
  const long = "y".repeat(2_000_000);
  assert.equal(encodeWith(new LineEncoder(), long).length, 2_000_001);
  assert.equal(
    encodeWith(new DelimiterEncoder({ delimiter: "\0" }), long).length,
    2_000_001,
  );
  assert.equal(encodeWith(new LengthPrefixEncoder(), long).length, 2_000_004);
  assert.equal(
    encodeWith(new LineEncoder({ maxEncodedLength: Infinity }), "abc").length,
    4,
  );
  for (const bad of [-1, 1.5, NaN, "8"]) {
    for (
      const [make, what] of [
        [(n: number) => new LineEncoder({ maxEncodedLength: n }), "line"],
        [
          (n: number) =>
            new DelimiterEncoder({ delimiter: "\0", maxEncodedLength: n }),
          "delimiter",
        ],
        [
          (n: number) => new LengthPrefixEncoder({ maxEncodedLength: n }),
          "length-prefix",
        ],
        [(n: number) => lines({ maxEncodedLength: n }), "line"],
      ] as const
    ) {
      assert.throws(() => make(bad as number), {
        name: "RangeError",
        message:
          `Cannot create ${what} encoder as maxEncodedLength must be a non-negative integer or Infinity: current value is ${bad}`,
      });
    }
  }
  // Within what the field can express, which is always enforced.
  assert.throws(
    () =>
      new LengthPrefixEncoder({ lengthFieldBytes: 2, maxEncodedLength: 70000 }),
    {
      name: "RangeError",
      message:
        "Cannot create length-prefix encoder as maxEncodedLength must be <= 65535 bytes for a 2-byte length field: current value is 70000",
    },
  );
  assert.throws(
    () => encodeWith(new LengthPrefixEncoder("dns"), new Uint8Array(65536)),
    {
      name: "FrameTooLargeError",
      message:
        "Cannot encode frame as its length must be <= 65535 bytes for a 2-byte length field: current length is 65536 bytes",
      length: 65536,
      limit: 65535,
    },
  );
});

// Lines as text (issue 19, item 3).

/** Runs a text line decoder over chunks, through a reused scratch buffer. */
function runText(
  decoder: SyncTransformer<Uint8Array, string>,
  chunks: Uint8Array[],
): { lines: string[]; error?: unknown } {
  const lines: string[] = [];
  const emit = (line: string) => void lines.push(line);
  return { lines, ...feedReused(decoder, chunks, emit) };
}

Deno.test("a text line decoder keeps empty lines, CRLF or not, under any chunking", async () => {
  const input = "\n\r\none\r\n\n\ntwo\n\r\n \n\rthree\r\n\r\n";
  const want = ["", "", "one", "", "", "two", "", " ", "\rthree", ""];
  for (const [name, chunks] of chunkings(encoder.encode(input))) {
    assert.deepEqual(
      runText(new TextLineDecoder(), chunks),
      { lines: want },
      name,
    );
    const streamed = await Array.fromAsync(
      ReadableStream.from(chunks.map((c) => c.slice()))
        .pipeThrough(new TextLineDecoderStream()),
    );
    assert.deepEqual(streamed, want, name);
  }
  // The pattern it replaces loses them.
  const lossy = await Array.fromAsync(
    ReadableStream.from([encoder.encode(input)])
      .pipeThrough(new LineDecoderStream())
      .pipeThrough(new TextDecoderStream()),
  );
  assert.notDeepEqual(lossy, want);
  // With keepDelimiter each line keeps its ending, and a last line without
  // one is the rest.
  assert.deepEqual(
    runText(new TextLineDecoder({ keepDelimiter: true }), [
      encoder.encode("a\r\n\nb"),
    ]).lines,
    ["a\r\n", "\n", "b"],
  );
});

Deno.test("a text line decoder decodes a 4-byte character split at every offset", () => {
  const input = "a🦕\n🦕\n\nb🦕c\r\n";
  const want = ["a🦕", "🦕", "", "b🦕c"];
  const bytes = encoder.encode(input);
  for (let i = 0; i <= bytes.length; i++) {
    for (let j = i; j <= bytes.length; j++) {
      const chunks = [bytes.slice(0, i), bytes.slice(i, j), bytes.slice(j)];
      assert.deepEqual(
        runText(new TextLineDecoder(), chunks),
        { lines: want },
        `split at ${i} and ${j}`,
      );
    }
  }
});

Deno.test("a text line decoder gives the text of random lines under any chunking", () => {
  const next = prng(19);
  const alphabet = ["a", "é", "€", "🦕", " ", "\r", "\uFEFF"];
  const want: string[] = [];
  let input = "";
  for (let i = 0; i < 60; i++) {
    let line = "";
    const size = i % 5 === 0 ? 0 : next() % 12;
    for (let k = 0; k < size; k++) line += alphabet[next() % alphabet.length];
    if (line.endsWith("\r")) line += "a"; // a final "\r" belongs to a CRLF
    if (i === 0) line = "a" + line; // a first "\uFEFF" would be a BOM
    want.push(line);
    input += line + (next() % 2 ? "\r\n" : "\n");
  }
  for (const [name, chunks] of chunkings(encoder.encode(input))) {
    assert.deepEqual(
      runText(new TextLineDecoder(), chunks),
      { lines: want },
      name,
    );
  }
});

Deno.test("a text line decoder limits lines in bytes and drops or answers them as text", () => {
  // "éé" is 4 bytes: at the limit; "ééé" is 6: over it.
  const bytes = encoder.encode("éé\nééé\nok\n");
  for (const [name, chunks] of chunkings(bytes)) {
    const failed = runText(new TextLineDecoder({ maxLineLength: 4 }), chunks);
    assert.deepEqual(failed.lines, ["éé"], name);
    assert.ok(failed.error instanceof FrameTooLargeError, name);
    assert.equal(failed.error.limit, 4);
    const reports: number[] = [];
    const answered = runText(
      new TextLineDecoder({
        maxLineLength: 4,
        oversize: "discard",
        onOversize: (error) => {
          reports.push(error.limit);
          return "(too long)";
        },
      }),
      chunks,
    );
    assert.deepEqual(answered, { lines: ["éé", "(too long)", "ok"] }, name);
    assert.deepEqual(reports, [4], name);
  }
  // Bytes from onOversize are decoded; nothing drops the line silently;
  // anything else is a TypeError.
  const replacing = (onOversize: () => unknown) =>
    runText(
      new TextLineDecoder({
        maxLineLength: 1,
        oversize: "discard",
        onOversize: onOversize as () => string,
      }),
      [encoder.encode("long\nk\n")],
    );
  assert.deepEqual(replacing(() => encoder.encode("é")), { lines: ["é", "k"] });
  assert.deepEqual(replacing(() => undefined), { lines: ["k"] });
  const bad = replacing(() => 5);
  assert.ok(bad.error instanceof TypeError);
  assert.equal(
    bad.error.message,
    "Cannot hand on a dropped line's replacement as onOversize must return a string, a Uint8Array or undefined: current type is number",
  );
});

Deno.test("a text line decoder handles invalid UTF-8 and a byte order mark as TextDecoder does", () => {
  const invalid = new Uint8Array([0x61, 0xff, 0x0a, 0x62, 0x0a]);
  assert.deepEqual(runText(new TextLineDecoder(), [invalid]).lines, [
    "a\uFFFD",
    "b",
  ]);
  const fatal = new TextLineDecoder({ fatal: true });
  const got = runText(fatal, [invalid]);
  assert.deepEqual(got.lines, []);
  assert.ok(got.error instanceof TypeError);
  assert.equal(
    got.error.message,
    "Cannot decode line as it must be valid UTF-8: current line of 2 bytes is not",
  );
  // After an error, every call throws it again.
  assert.throws(() => fatal.transform(encoder.encode("ok\n"), () => {}), {
    message: got.error.message,
  });
  // A BOM starts the input: removed, unless ignoreBOM; later, always kept.
  const bom = encoder.encode("\uFEFFa\n\uFEFFb\n");
  for (const [name, chunks] of chunkings(bom, 2)) {
    assert.deepEqual(
      runText(new TextLineDecoder(), chunks).lines,
      ["a", "\uFEFFb"],
      name,
    );
    assert.deepEqual(
      runText(new TextLineDecoder({ ignoreBOM: true }), chunks).lines,
      ["\uFEFFa", "\uFEFFb"],
      name,
    );
  }
  assert.throws(() => new TextLineDecoder({ fatal: 1 as unknown as boolean }), {
    name: "TypeError",
    message:
      "Cannot create text line decoder as fatal must be a boolean: current type is number",
  });
  assert.throws(
    () => new TextLineDecoder({ onOversize: 1 as unknown as () => string }),
    /^TypeError: Cannot create text line decoder as onOversize must be a function/,
  );
});

Deno.test("lines({ text: true }) over framed() keeps the blank line of a key-value exchange", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    // A request is "key: value" lines ended by an empty line.
    const messages = framed(conn, lines({ text: true, maxLineLength: 64 }));
    const writer = messages.writable.getWriter();
    let keys: string[] = [];
    for await (const line of messages) {
      const typed: string = line;
      if (typed === "") {
        await writer.write(`got ${keys.join(",")}`);
        keys = [];
      } else keys.push(typed.split(":")[0]!);
    }
    await writer.close();
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lines({ text: true, newline: "\r\n" }),
  );
  await ReadableStream.from(["a: 1", "ü: 2", "", "c: 🦕", ""]).pipeTo(
    client.writable,
  );
  const answers: string[] = await Array.fromAsync(client.readable);
  await served;
  assert.deepEqual(answers, ["got a,ü", "got c"]);
});

Deno.test("lines({ text: true }) streams text, takes framed()'s oversize overrides and checks text", async () => {
  const codec: Codec<Uint8Array | string, string> = lines({
    text: true,
    maxLineLength: 3,
  });
  const streamed = await Array.fromAsync(
    ReadableStream.from(["ab", "", "é"]).pipeThrough(codec.encoder())
      .pipeThrough(codec.decoder()),
  );
  assert.deepEqual(streamed, ["ab", "", "é"]);
  const messages = framed(
    {
      readable: ReadableStream.from([encoder.encode("ok\ntoo long\n\n")]),
      writable: new WritableStream(),
    },
    codec,
    { oversize: "discard", onOversize: () => encoder.encode("-") },
  );
  assert.deepEqual(await Array.fromAsync(messages), ["ok", "-", ""]);
  assert.throws(() => lines({ text: "yes" as unknown as true }), {
    name: "TypeError",
    message:
      "Cannot create line codec as text must be a boolean: current type is string",
  });
  // Without text, lines stay bytes.
  const bytes: Codec<Uint8Array | string, Uint8Array> = lines({ text: false });
  assert.ok(bytes.syncDecoder!() instanceof LineDecoder);
});

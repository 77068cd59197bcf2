import assert from "node:assert/strict";
import {
  framed,
  FrameTooLargeError,
  LengthPrefixDecoderStream,
  lengthPrefixed,
  LengthPrefixEncoderStream,
  type LengthPrefixOptions,
  LineDecoderStream,
  LineEncoderStream,
  lines,
  TruncatedFrameError,
} from "../framing.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A seeded, reproducible generator of 32-bit numbers. */
function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state ^ (state >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    return state;
  };
}

/** The same bytes as one chunk, one-byte chunks and seeded random splits. */
function chunkings(bytes: Uint8Array): [string, Uint8Array[]][] {
  const out: [string, Uint8Array[]][] = [
    ["one chunk", [bytes]],
    ["one-byte chunks", Array.from(bytes, (_, i) => bytes.subarray(i, i + 1))],
  ];
  for (let seed = 1; seed <= 20; seed++) {
    const next = prng(seed);
    const chunks: Uint8Array[] = [];
    for (let i = 0; i < bytes.length;) {
      const size = next() % 23; // empty chunks too
      chunks.push(bytes.slice(i, i + size));
      i += size;
    }
    out.push([`random splits, seed ${seed}`, chunks]);
  }
  return out;
}

async function decodeAll(
  chunks: Uint8Array[],
  stream: TransformStream<Uint8Array, Uint8Array>,
): Promise<Uint8Array[]> {
  // Copy: a decoder may hand on views of chunks that the test reuses.
  return (await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(stream),
  ))
    .map((m) => m.slice());
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

Deno.test("LineDecoderStream gives the same lines under any chunking, LF and CRLF", async () => {
  const text = "alpha\r\n\nbeta\ngamma\r\n\r\nü ß\rmid\nlast";
  const want = ["alpha", "", "beta", "gamma", "", "ü ß\rmid", "last"];
  for (const [name, chunks] of chunkings(encoder.encode(text))) {
    const got = await decodeAll(chunks, new LineDecoderStream());
    assert.deepEqual(got.map((l) => decoder.decode(l)), want, name);
  }
});

Deno.test("LineDecoderStream keeps delimiters when asked", async () => {
  const text = "a\r\nb\n\nc";
  for (const [name, chunks] of chunkings(encoder.encode(text))) {
    const got = await decodeAll(
      chunks,
      new LineDecoderStream({ keepDelimiter: true }),
    );
    assert.deepEqual(
      got.map((l) => decoder.decode(l)),
      ["a\r\n", "b\n", "\n", "c"],
      name,
    );
  }
});

Deno.test("LineDecoderStream accepts a line at its limit and fails one byte over", async () => {
  const ok = "x".repeat(8) + "\r\n";
  for (const [name, chunks] of chunkings(encoder.encode(ok + ok))) {
    const got = await decodeAll(
      chunks,
      new LineDecoderStream({ maxLineLength: 8 }),
    );
    assert.equal(got.length, 2, name);
  }
  const bad = encoder.encode("short\n" + "y".repeat(9) + "\n");
  for (const [name, chunks] of chunkings(bad)) {
    const seen: string[] = [];
    const stream = ReadableStream.from(chunks).pipeThrough(
      new LineDecoderStream({ maxLineLength: 8 }),
    );
    await assert.rejects(
      (async () => {
        for await (const line of stream) seen.push(decoder.decode(line));
      })(),
      (error) => {
        assert.ok(error instanceof FrameTooLargeError, name);
        assert.ok(error instanceof RangeError);
        assert.equal(error.limit, 8);
        assert.ok(error.length >= 9);
        assert.match(
          error.message,
          /^Cannot decode line as its length must be <= 8 bytes: current length is at least \d+ bytes$/,
        );
        return true;
      },
    );
    assert.deepEqual(seen, ["short"], name);
  }
});

Deno.test("LineDecoderStream fails before buffering past its limit when no delimiter comes", async () => {
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
    FrameTooLargeError,
  );
  // 4096 bytes (+1 for a possible "\r") fit in five chunks; the sixth fails.
  assert.ok(pulled <= 7, `pulled ${pulled} chunks`);
});

Deno.test("LineEncoderStream round-trips with LineDecoderStream, empty lines included", async () => {
  const messages = ["", "hello", "", "wörld", "\r"];
  const bytes = await new Response(
    ReadableStream.from(messages).pipeThrough(new LineEncoderStream()),
  ).bytes();
  for (const [name, chunks] of chunkings(bytes)) {
    const got = await decodeAll(chunks, new LineDecoderStream());
    // A lone "\r" before "\n" is read back as a CRLF delimiter.
    assert.deepEqual(got.map((l) => decoder.decode(l)), [
      "",
      "hello",
      "",
      "wörld",
      "",
    ], name);
  }
});

Deno.test("LineEncoderStream refuses a message with a newline or over the limit", async () => {
  await assert.rejects(
    Array.fromAsync(
      ReadableStream.from(["a\nb"]).pipeThrough(new LineEncoderStream()),
    ),
    {
      name: "TypeError",
      message:
        'Cannot encode line as it must not contain "\\n": found at index 1',
    },
  );
  await assert.rejects(
    Array.fromAsync(
      ReadableStream.from(["toolong"]).pipeThrough(
        new LineEncoderStream({ maxLineLength: 3 }),
      ),
    ),
    { name: "FrameTooLargeError", length: 7, limit: 3 },
  );
});

const prefixCases: LengthPrefixOptions[] = [
  { prefixBytes: 1 },
  { prefixBytes: 2 },
  { prefixBytes: 2, littleEndian: true },
  { prefixBytes: 4 },
  { prefixBytes: 4, littleEndian: true },
];

function messagesFor(max: number): Uint8Array[] {
  const next = prng(42);
  return Array.from({ length: 40 }, (_, i) => {
    const size = i % 5 === 0 ? 0 : next() % Math.min(max, 300);
    return Uint8Array.from({ length: size }, () => next() & 0xff);
  });
}

Deno.test("LengthPrefixDecoderStream gives the same frames under any chunking, every prefix", async () => {
  for (const options of prefixCases) {
    const messages = messagesFor(255);
    const bytes = await new Response(
      ReadableStream.from(messages).pipeThrough(
        new LengthPrefixEncoderStream(options),
      ),
    ).bytes();
    for (const [name, chunks] of chunkings(bytes)) {
      assert.deepEqual(
        await decodeAll(chunks, new LengthPrefixDecoderStream(options)),
        messages,
        `${JSON.stringify(options)} ${name}`,
      );
    }
  }
});

Deno.test("LengthPrefixEncoderStream writes big-endian prefixes by default", async () => {
  const bytes = await new Response(
    ReadableStream.from([new Uint8Array([9])]).pipeThrough(
      new LengthPrefixEncoderStream(),
    ),
  ).bytes();
  assert.deepEqual(bytes, new Uint8Array([0, 0, 0, 1, 9]));
  const little = await new Response(
    ReadableStream.from([new Uint8Array(258)]).pipeThrough(
      new LengthPrefixEncoderStream({ prefixBytes: 2, littleEndian: true }),
    ),
  ).bytes();
  assert.deepEqual(little.subarray(0, 2), new Uint8Array([2, 1]));
});

Deno.test("LengthPrefixDecoderStream fails on a prefix over the limit before reading its payload", async () => {
  const good = new Uint8Array([0, 0, 0, 2, 1, 2]);
  const bad = new Uint8Array([0, 0, 0, 17]);
  for (const [name, chunks] of chunkings(concat([good, bad]))) {
    const seen: Uint8Array[] = [];
    const stream = ReadableStream.from(chunks).pipeThrough(
      new LengthPrefixDecoderStream({ maxFrameLength: 16 }),
    );
    await assert.rejects(
      (async () => {
        for await (const frame of stream) seen.push(frame.slice());
      })(),
      (error) => {
        assert.ok(error instanceof FrameTooLargeError, name);
        assert.equal(error.length, 17);
        assert.equal(error.limit, 16);
        assert.equal(
          error.message,
          "Cannot decode frame as its length must be <= 16 bytes: current length is 17 bytes",
        );
        return true;
      },
    );
    assert.deepEqual(seen, [new Uint8Array([1, 2])], name);
  }
  // Exactly at the limit is fine.
  assert.equal(
    (await decodeAll(
      [new Uint8Array([0, 0, 0, 16]), new Uint8Array(16)],
      new LengthPrefixDecoderStream({ maxFrameLength: 16 }),
    ))[0]!.length,
    16,
  );
});

Deno.test("LengthPrefixDecoderStream reports input that ends inside a frame or its prefix", async () => {
  const cases: [Uint8Array, number, number][] = [
    [new Uint8Array([0, 0, 0, 5, 1, 2]), 6, 9],
    [new Uint8Array([0, 0]), 2, 4],
  ];
  for (const [bytes, received, expected] of cases) {
    for (
      const [name, chunks] of chunkings(
        concat([new Uint8Array([0, 0, 0, 1, 7]), bytes]),
      )
    ) {
      const seen: Uint8Array[] = [];
      const stream = ReadableStream.from(chunks).pipeThrough(
        new LengthPrefixDecoderStream(),
      );
      await assert.rejects(
        (async () => {
          for await (const frame of stream) seen.push(frame.slice());
        })(),
        (error) => {
          assert.ok(error instanceof TruncatedFrameError, name);
          assert.ok(error instanceof Deno.errors.UnexpectedEof);
          assert.equal(error.received, received);
          assert.equal(error.expected, expected);
          return true;
        },
      );
      assert.deepEqual(seen, [new Uint8Array([7])], name);
    }
  }
});

Deno.test("LengthPrefixEncoderStream refuses a message its prefix cannot express", async () => {
  await assert.rejects(
    Array.fromAsync(
      ReadableStream.from([new Uint8Array(256)]).pipeThrough(
        new LengthPrefixEncoderStream({ prefixBytes: 1 }),
      ),
    ),
    { name: "FrameTooLargeError", length: 256, limit: 255 },
  );
  assert.throws(
    () => new LengthPrefixEncoderStream({ prefixBytes: 3 as 4 }),
    {
      name: "RangeError",
      message:
        "Cannot create framing stream as prefixBytes must be 1, 2 or 4: current value is 3",
    },
  );
});

Deno.test("framed() exchanges lines over a loopback connection, answering after half-close", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    const { readable, writable } = framed(conn, lines());
    const writer = writable.getWriter();
    let count = 0;
    for await (const line of readable) {
      count++;
      await writer.write(decoder.decode(line).toUpperCase());
    }
    await writer.write(`${count} lines`); // after the client's FIN
    await writer.close();
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lines(),
  );
  await ReadableStream.from(["one", "", "three"]).pipeTo(client.writable);
  const answers = await Array.fromAsync(
    client.readable,
    (l) => decoder.decode(l),
  );
  await served;
  assert.deepEqual(answers, ["ONE", "", "THREE", "3 lines"]);
});

Deno.test("framed() serves length-prefixed requests and responses both ways", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const codec = lengthPrefixed({ prefixBytes: 2 });
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
  const requests = messagesFor(60_000).concat([new Uint8Array(65535).fill(3)]);
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
    await conn.write(new Uint8Array([0, 0, 0, 1, 42, 0, 0, 1, 0]));
    await conn.closeWrite();
    // Wait for the client to go away.
    while (await conn.read(new Uint8Array(16)) !== null) { /* drain */ }
    conn.close();
  });
  const client = framed(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    lengthPrefixed({ maxFrameLength: 100 }),
  );
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const frame of client.readable) seen.push(...frame);
    })(),
    { name: "FrameTooLargeError", length: 256, limit: 100 },
  );
  assert.deepEqual(seen, [42]);
  await client.writable.close();
  await served;
});

import assert from "node:assert/strict";
import {
  chargen,
  CHARGEN_LINE_LENGTH,
  daytime,
  DiscardStream,
  EchoStream,
  formatDaytime,
  upperCase,
  UpperCaseStream,
} from "../services.ts";
import { ConnStreams } from "../conn_streams.ts";
import { Connection } from "../connection.ts";
import { type ConnectionStats, serve } from "../server.ts";
import { chunkings, connPair } from "../testing.ts";

/** Splits `bytes` into chunks at seeded random points. */
function randomSplits(bytes: Uint8Array, seed: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  let state = seed;
  let offset = 0;
  while (offset < bytes.length) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const size = 1 + (state % 97);
    chunks.push(bytes.subarray(offset, offset + size));
    offset += size;
  }
  return chunks;
}

async function collect(
  chunks: Uint8Array[],
  stream: TransformStream<Uint8Array, Uint8Array>,
): Promise<Uint8Array> {
  return await new Response(
    ReadableStream.from(chunks).pipeThrough(stream),
  ).bytes();
}

const text = "Grüße, wörld! ÀÉ ß ǅ a-z {|} `~ 0123456789 façade\r\n";

Deno.test("UpperCaseStream upper-cases ASCII letters only, under any chunking", async () => {
  const bytes = new TextEncoder().encode(text.repeat(50));
  const want = new TextEncoder().encode(
    text.repeat(50).replace(/[a-z]/g, (c) => c.toUpperCase()),
  );
  assert.deepEqual(await collect([bytes], new UpperCaseStream()), want);
  const oneByte = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
  assert.deepEqual(await collect(oneByte, new UpperCaseStream()), want);
  for (const seed of [1, 2, 3]) {
    assert.deepEqual(
      await collect(randomSplits(bytes, seed), new UpperCaseStream()),
      want,
    );
  }
});

Deno.test("UpperCaseStream passes every non-letter byte value through unchanged", async () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const got = await collect([all], new UpperCaseStream());
  for (let i = 0; i < 256; i++) {
    const want = i >= 0x61 && i <= 0x7a ? i - 0x20 : i;
    assert.equal(got[i], want, `byte ${i}`);
  }
});

Deno.test("upperCase() never modifies its input and copies only when needed", () => {
  const lower = new TextEncoder().encode("abc");
  const upper = upperCase(lower);
  assert.deepEqual(lower, new TextEncoder().encode("abc"));
  assert.deepEqual(upper, new TextEncoder().encode("ABC"));
  const already = new TextEncoder().encode("ABC 123");
  assert.equal(upperCase(already), already);
  assert.equal(upperCase(new Uint8Array(0)).length, 0);
});

Deno.test("EchoStream passes the same chunks on without copying", async () => {
  const chunks = [
    new Uint8Array([1, 2]),
    new Uint8Array(0),
    new Uint8Array([3]),
  ];
  const got = await Array.fromAsync(
    ReadableStream.from(chunks).pipeThrough(new EchoStream()),
  );
  assert.equal(got.length, 3);
  got.forEach((chunk, i) => assert.equal(chunk, chunks[i]));
});

Deno.test("UpperCaseStream serves a loopback connection through ConnStreams", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then((conn) => {
    const { readable, writable } = new ConnStreams(conn);
    return readable.pipeThrough(new UpperCaseStream()).pipeTo(writable);
  });
  const client = new ConnStreams(
    await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  );
  const sent = new TextEncoder().encode(text.repeat(20_000));
  const [, answer] = await Promise.all([
    ReadableStream.from(randomSplits(sent, 9)).pipeTo(client.writable),
    new Response(client.readable).text(),
    served,
  ]);
  assert.equal(
    answer,
    text.repeat(20_000).replace(/[a-z]/g, (c) => c.toUpperCase()),
  );
  await client.closed;
});

Deno.test("DiscardStream emits nothing, under any chunking", async () => {
  for (const chunking of chunkings(text.repeat(100))) {
    const out = await Array.fromAsync(
      chunking.stream().pipeThrough(new DiscardStream()),
    );
    assert.deepEqual(out, [], chunking.name);
  }
  assert.deepEqual(
    await Array.fromAsync(
      ReadableStream.from<Uint8Array>([]).pipeThrough(new DiscardStream()),
    ),
    [],
  );
});

Deno.test("DiscardStream takes every byte a client sends, then our FIN follows its FIN", async () => {
  const closed = Promise.withResolvers<ConnectionStats>();
  await using server = serve({
    port: 0,
    onClose: (info) => closed.resolve(info),
  }, () => new DiscardStream());
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addr as Deno.NetAddr).port,
  });
  const bytes = new Uint8Array(4 * 1024 * 1024).fill(7);
  for (let n = 0; n < bytes.length;) n += await conn.write(bytes.subarray(n));
  await conn.closeWrite();
  assert.equal(await conn.read(new Uint8Array(1)), null);
  const stats = await closed.promise;
  assert.equal(stats.bytesIn, bytes.length);
  assert.equal(stats.bytesOut, 0);
  assert.equal(stats.error, undefined);
});

/** The line chargen sends at position `index` of its stream. */
function chargenLine(index: number): string {
  let line = "";
  for (let i = 0; i < CHARGEN_LINE_LENGTH; i++) {
    line += String.fromCharCode(0x20 + (index + i) % 95);
  }
  return line;
}

/** Reads exactly `size` bytes from `conn`. */
async function readExactly(conn: Deno.Conn, size: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(size);
  for (let filled = 0; filled < size;) {
    const n = await conn.read(buffer.subarray(filled));
    if (n === null) throw new Error(`EOF after ${filled} of ${size} bytes`);
    filled += n;
  }
  return buffer;
}

Deno.test("chargen() sends rotating 72-character lines until the client goes, even after its FIN", async () => {
  const ended = Promise.withResolvers<unknown>();
  await using server = serve(
    { port: 0 },
    (connection) =>
      chargen(connection).then(() => ended.resolve("fulfilled"), (error) => {
        ended.resolve(error);
        throw error;
      }),
  );
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addr as Deno.NetAddr).port,
  });
  await conn.write(new TextEncoder().encode("thrown away\n"));
  await conn.closeWrite(); // chargen goes on
  const lines = 1000; // over 10 cycles of 95 lines, several writes
  const text = new TextDecoder().decode(await readExactly(conn, lines * 74));
  const got = text.split("\r\n");
  assert.equal(got.pop(), "");
  assert.equal(got.length, lines);
  got.forEach((line, i) => assert.equal(line, chargenLine(i), `line ${i}`));
  assert.equal(chargenLine(95), chargenLine(0));
  conn.close(); // unread lines: a reset, and chargen's next write fails
  assert.equal(await ended.promise, "fulfilled");
});

Deno.test("chargen() waits for the stream to have room: one write in hand while the client does not read", async () => {
  let calls = 0;
  const firstWrite = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const writable = new WritableStream<Uint8Array>({
    async write() {
      calls++;
      firstWrite.resolve();
      await release.promise; // a client that does not read
    },
  });
  const controller = new AbortController();
  const done = chargen({
    readable: ReadableStream.from<Uint8Array>([]),
    writable,
    signal: controller.signal,
  });
  await firstWrite.promise;
  // A loop without backpressure would have queued more by now.
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
  assert.equal(calls, 1);
  controller.abort(); // the connection closed
  await done;
  release.resolve();
});

Deno.test("chargen() sends our FIN after whole lines when the server shuts down", async () => {
  const closed = Promise.withResolvers<ConnectionStats>();
  await using server = serve({
    port: 0,
    onClose: (info) => closed.resolve(info),
  }, (connection, context) => chargen(connection, context));
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addr as Deno.NetAddr).port,
  });
  await readExactly(conn, 74);
  await conn.closeWrite(); // chargen goes on; a clean end needs both FINs
  const shutdown = server.shutdown();
  const rest = await new Response(conn.readable).text(); // up to our FIN
  await shutdown;
  assert.ok(rest.endsWith("\r\n"));
  const lines = rest.split("\r\n").slice(0, -1);
  lines.forEach((line, i) => assert.equal(line, chargenLine(i + 1)));
  // Our FIN ended it, not the server closing the connection.
  const error = (await closed.promise).error;
  assert.equal(error, undefined, `${error}`);
});

Deno.test("chargen() and daytime() serve connection.ts Connections", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    await using first = new Connection(await listener.accept());
    await daytime(first);
    await using second = new Connection(await listener.accept());
    await chargen(second);
  })();
  const { port } = listener.addr;
  const day = await Deno.connect({ hostname: "127.0.0.1", port });
  assert.match(await new Response(day.readable).text(), /-UTC\r\n$/);
  const gen = await Deno.connect({ hostname: "127.0.0.1", port });
  const text = new TextDecoder().decode(await readExactly(gen, 148));
  assert.equal(text, `${chargenLine(0)}\r\n${chargenLine(1)}\r\n`);
  gen.close();
  await served;
});

Deno.test("daytime() sends one line with the time in UTC, then our FIN", async () => {
  await using server = serve({ port: 0 }, daytime);
  const before = Math.floor(Date.now() / 1000);
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addr as Deno.NetAddr).port,
  });
  const line = await new Response(conn.readable).text();
  const after = Math.floor(Date.now() / 1000);
  const candidates = [];
  for (let s = before; s <= after; s++) {
    candidates.push(formatDaytime(new Date(s * 1000)));
  }
  assert.ok(candidates.includes(line), `${JSON.stringify(line)}`);
});

Deno.test("formatDaytime() writes the RFC 867 style in UTC", () => {
  assert.equal(
    formatDaytime(new Date("2026-12-01T13:27:46Z")),
    "Tuesday, December 1, 2026 13:27:46-UTC\r\n",
  );
  assert.equal(
    formatDaytime(new Date("2000-01-02T00:00:05.999Z")),
    "Sunday, January 2, 2000 00:00:05-UTC\r\n",
  );
  assert.equal(
    formatDaytime(new Date("1999-12-31T23:59:59+02:00")),
    "Friday, December 31, 1999 21:59:59-UTC\r\n",
  );
  assert.throws(
    () => formatDaytime(new Date("nope")),
    new RangeError(
      "Cannot format daytime as the date must be valid: current value is Invalid Date",
    ),
  );
});

/** `size` bytes: seeded random, or lower-case ASCII text with spaces. */
function input(kind: "random" | "ascii", size: number, seed = 7): Uint8Array {
  const bytes = new Uint8Array(size);
  let state = seed;
  for (let i = 0; i < size; i += 4) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    bytes[i] = state >>> 24;
    bytes[i + 1] = state >>> 16;
    bytes[i + 2] = state >>> 8;
    bytes[i + 3] = state;
  }
  if (kind === "ascii") {
    const letters = new TextEncoder().encode("abcdefghijklmnopqrstuvwxyz .,\n");
    for (let i = 0; i < size; i++) bytes[i] = letters[bytes[i]! % 30]!;
  }
  return bytes;
}

/** What the upper-case service answers to `bytes`, a byte at a time. */
function upperOf(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
}

/**
 * Sends `sent` to `port` in writes of seeded random sizes (1 byte to
 * 128 KiB), half-closes, and returns every byte that comes back.
 */
async function exchange(port: number, sent: Uint8Array, seed: number) {
  await using client = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port }),
  );
  const writing = (async () => {
    let state = seed;
    for (let at = 0; at < sent.length;) {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      // Mostly large writes, some tiny: reads on the server then start and
      // end anywhere, aligned or not.
      const size = state % 8 === 0
        ? 1 + (state >>> 8) % 7
        : 1 + (state >>> 3) % 131072;
      await client.write(sent.subarray(at, at + size));
      at += size;
    }
    await client.closeWrite();
  })();
  const answer = await new Response(client.readable).bytes();
  await writing;
  return answer;
}

for (const kind of ["random", "ascii"] as const) {
  Deno.test(`serve(UpperCaseStream) and serve(EchoStream) are byte-exact over 64 MiB of ${kind} input on loopback`, async () => {
    const sent = input(kind, 64 << 20);
    const want = upperOf(sent);
    for (
      const [make, expected] of [
        [() => new UpperCaseStream(), want],
        [() => new EchoStream(), sent],
      ] as const
    ) {
      await using server = serve({ port: 0, hostname: "127.0.0.1" }, make);
      const { port } = server.addr as Deno.NetAddr;
      const got = await exchange(port, sent, kind === "random" ? 3 : 4);
      assert.equal(got.length, expected.length);
      // One comparison of the whole, then the first wrong byte if any.
      if (!got.every((b, i) => b === expected[i])) {
        const at = got.findIndex((b, i) => b !== expected[i]);
        assert.fail(`byte ${at}: got ${got[at]}, want ${expected[at]}`);
      }
    }
  });
}

Deno.test("UpperCaseStream served over a connection is byte-exact under every chunking of input and reads", async () => {
  for (const kind of ["random", "ascii"] as const) {
    const sent = input(kind, 4096, kind === "random" ? 11 : 12);
    const want = upperOf(sent);
    for (const { name, chunks } of chunkings(sent, { seed: 5 })) {
      // The server's reads are cut too: whole, one byte, or at random.
      for (const options of [{}, { maxChunkSize: 1 }, { seed: 9 }]) {
        const [client, server] = connPair(options);
        await using a = new Connection(client);
        const served = new Connection(server).serve(new UpperCaseStream());
        const writing = (async () => {
          for (const chunk of chunks) await a.write(chunk);
          await a.closeWrite();
        })();
        const got = await new Response(a.readable).bytes();
        await Promise.all([writing, served]);
        assert.deepEqual(
          got,
          want,
          `${kind}, ${name}, ${JSON.stringify(options)}`,
        );
      }
    }
  }
});

Deno.test("UpperCaseStream as a web stream leaves the chunks it was given unchanged", async () => {
  const chunk = new TextEncoder().encode("abc");
  const got = await collect([chunk], new UpperCaseStream());
  assert.deepEqual(got, new TextEncoder().encode("ABC"));
  assert.deepEqual(chunk, new TextEncoder().encode("abc"));
});

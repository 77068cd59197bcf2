import assert from "node:assert/strict";
import { EchoStream, upperCase, UpperCaseStream } from "../services.ts";
import { ConnStreams } from "../conn_streams.ts";

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

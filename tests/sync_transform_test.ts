import assert from "node:assert/strict";
import { chain, SyncTransformStream } from "../sync_transform.ts";
import { Connection } from "../connection.ts";
import { connPair } from "../testing.ts";
import { concat } from "./_util.ts";

const encoder = new TextEncoder();

Deno.test("SyncTransformStream is an ordinary TransformStream under pipeThrough, flush included", async () => {
  const stream = new SyncTransformStream<string, string>({
    transform: (text, emit) => text.split(",").forEach(emit),
    flush: (emit) => emit("end"),
  });
  assert.ok(stream instanceof TransformStream);
  const out = await Array.fromAsync(
    ReadableStream.from(["a,b", "c"]).pipeThrough(stream),
  );
  assert.deepEqual(out, ["a", "b", "c", "end"]);
});

Deno.test("SyncTransformStream rejects a transformer without transform()", () => {
  assert.throws(
    () => new SyncTransformStream({} as never),
    {
      name: "TypeError",
      message:
        "Cannot create SyncTransformStream as transformer.transform must be a function: current type is undefined",
    },
  );
});

Deno.test("chain() feeds the first stage into the second and flushes both in order", () => {
  const log: string[] = [];
  const fused = chain<number, number, string>(
    {
      transform: (n, emit) => emit(n * 10),
      flush: (emit) => emit(99),
    },
    {
      transform: (n, emit) => emit(`<${n}>`),
      flush: (emit) => emit("done"),
    },
  );
  fused.transform(1, (s) => log.push(s));
  fused.transform(2, (s) => log.push(s));
  fused.flush!((s) => log.push(s));
  assert.deepEqual(log, ["<10>", "<20>", "<99>", "done"]);
});

Deno.test("Connection.serve() runs an unlocked SyncTransformStream without its streams", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  const seen: number[] = [];
  const service = new SyncTransformStream<Uint8Array, Uint8Array>({
    transform(chunk, emit) {
      seen.push(chunk.length);
      emit(chunk);
    },
  });
  const served = b.serve(service);
  await a.write(encoder.encode("abc"));
  await a.closeWrite();
  assert.equal(await new Response(a.readable).text(), "abc");
  await served;
  // The engine called the transformer itself: the streams were never used.
  assert.equal(service.readable.locked, false);
  assert.equal(service.writable.locked, false);
  assert.deepEqual(seen, [3]);
});

Deno.test("Connection.serve() rejects a service that is not a pair of streams, naming what it got", async () => {
  for (
    const [value, got] of [
      [
        { readable: new ReadableStream() },
        "Object with no writable WritableStream",
      ],
      [
        new ReadableStream(),
        "ReadableStream with no readable ReadableStream and no writable WritableStream",
      ],
      [null, "null"],
      ["upper", "string"],
    ] as const
  ) {
    const [client, server] = connPair();
    using _a = new Connection(client);
    using b = new Connection(server);
    await assert.rejects(b.serve(value as never), {
      name: "TypeError",
      message:
        `Cannot serve connection as the service must be a ReadableWritablePair (a TransformStream or any { readable, writable } pair of streams): current type is ${got}`,
    });
  }
});

Deno.test("Connection.serve() hands a transformer that keeps its chunks memory nobody reuses", async () => {
  // One byte per read, so that a reused read buffer would be overwritten
  // by every later read.
  const [client, server] = connPair({ maxChunkSize: 3 });
  await using a = new Connection(client);
  const kept: Uint8Array[] = [];
  const service = new SyncTransformStream<Uint8Array, Uint8Array>({
    transform(chunk, emit) {
      kept.push(chunk); // no input declared: "keep"
      emit(chunk);
    },
  });
  const served = new Connection(server).serve(service);
  const sent = encoder.encode("the quick brown fox jumps over the lazy dog");
  await a.write(sent);
  await a.closeWrite();
  assert.equal(
    await new Response(a.readable).text(),
    "the quick brown fox jumps over the lazy dog",
  );
  await served;
  assert.ok(kept.length > 1);
  assert.deepEqual(concat(kept), sent);
});

Deno.test("Connection.serve() lends its read buffer to a transformer that borrows, and it may overwrite it", async () => {
  const [client, server] = connPair({ maxChunkSize: 3 });
  await using a = new Connection(client);
  const buffers = new Set<ArrayBufferLike>();
  const service = new SyncTransformStream<Uint8Array, Uint8Array>({
    input: "overwrite",
    transform(chunk, emit) {
      buffers.add(chunk.buffer);
      chunk.reverse();
      emit(chunk);
    },
  });
  const served = new Connection(server).serve(service);
  await a.write(encoder.encode("abcdefghi"));
  await a.closeWrite();
  assert.equal(await new Response(a.readable).text(), "cbafedihg");
  await served;
  assert.equal(buffers.size, 1); // one reused buffer for every read
});

Deno.test("SyncTransformStream hands a transformer that overwrites its input a copy of each stream chunk", async () => {
  const mine = encoder.encode("abc");
  const out = await Array.fromAsync(
    ReadableStream.from([mine]).pipeThrough(
      new SyncTransformStream<Uint8Array, Uint8Array>({
        input: "overwrite",
        transform(chunk, emit) {
          chunk.fill(0x2a);
          emit(chunk);
        },
      }),
    ),
  );
  assert.deepEqual(out, [encoder.encode("***")]);
  assert.deepEqual(mine, encoder.encode("abc"));
});

Deno.test("chain() borrows its input only when both stages do, and copies for a stage that overwrites", () => {
  const borrow = { input: "borrow" as const, transform() {} };
  const keep = { transform() {} };
  const overwrite = {
    input: "overwrite" as const,
    transform(chunk: Uint8Array, emit: (c: Uint8Array) => void) {
      chunk.fill(0);
      emit(chunk);
    },
  };
  assert.equal(chain(borrow, borrow).input, "borrow");
  assert.equal(chain(overwrite, borrow).input, "overwrite");
  assert.equal(chain(borrow, keep).input, "keep");
  assert.equal(chain(keep, borrow).input, "keep");
  // The first stage emits a constant: the second overwrites a copy of it.
  const constant = encoder.encode("+OK");
  const fused = chain<Uint8Array, Uint8Array, Uint8Array>(
    { input: "borrow", transform: (_chunk, emit) => emit(constant) },
    overwrite,
  );
  const out: Uint8Array[] = [];
  fused.transform(new Uint8Array(1), (c) => out.push(c));
  assert.deepEqual(out, [new Uint8Array(3)]);
  assert.deepEqual(constant, encoder.encode("+OK"));
});

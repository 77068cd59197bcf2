import assert from "node:assert/strict";
import { chain, SyncTransformStream } from "../sync_transform.ts";
import { Connection } from "../connection.ts";
import { connPair } from "../testing.ts";

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

Deno.test("Connection.serve() rejects a service that is not a TransformStream, naming it", async () => {
  const [client, server] = connPair();
  using _a = new Connection(client);
  const b = new Connection(server);
  const pair = new TransformStream();
  await assert.rejects(
    b.serve({ readable: pair.readable, writable: pair.writable } as never),
    {
      name: "TypeError",
      message:
        "Cannot serve connection as the service must be a TransformStream: current value is [object Object]",
    },
  );
});

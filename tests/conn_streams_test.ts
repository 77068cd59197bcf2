import assert from "node:assert/strict";
import { ConnStreams } from "../conn_streams.ts";
import { pattern } from "./_util.ts";

const encoder = new TextEncoder();

/** A connected loopback pair: the accepted side and the dialling side. */
async function pair(): Promise<
  { server: Deno.TcpConn; client: Deno.TcpConn } & Disposable
> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [server, client] = await Promise.all([
    listener.accept(),
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
  ]);
  return {
    server,
    client,
    [Symbol.dispose]() {
      for (const conn of [server, client]) {
        try {
          conn.close();
        } catch { /* closed by the test already */ }
      }
    },
  };
}

/** A service that swallows its input and answers only in `flush()`. */
class AnswerInFlush extends TransformStream<Uint8Array, Uint8Array> {
  constructor(answer: (received: number) => Uint8Array) {
    let received = 0;
    super({
      transform: (chunk) => {
        received += chunk.length;
      },
      flush: (controller) => controller.enqueue(answer(received)),
    });
  }
}

Deno.test("ConnStreams delivers a flush() answer sent after the peer's FIN", async () => {
  using p = await pair();
  const answer = pattern(100_000);
  const server = new ConnStreams(p.server);
  const served = server.readable
    .pipeThrough(new AnswerInFlush(() => answer))
    .pipeTo(server.writable);

  const client = new ConnStreams(p.client);
  await ReadableStream.from([encoder.encode("question")]).pipeTo(
    client.writable,
  );
  const got = await new Response(client.readable).bytes();
  await served;
  await Promise.all([server.closed, client.closed]);
  assert.deepEqual(got, answer);
  assert.equal(server.bytesRead, 8);
  assert.equal(server.bytesWritten, answer.length);
  assert.equal(client.bytesRead, answer.length);
});

Deno.test("ConnStreams keeps half-close in the other direction: the server ends first", async () => {
  using p = await pair();
  // The server sends first and half-closes; the client answers in flush()
  // once it has seen the server's FIN, and the server still reads it.
  const server = new ConnStreams(p.server);
  const client = new ConnStreams(p.client);
  const greeting = pattern(300_000, 3);

  const clientDone = client.readable
    .pipeThrough(
      new AnswerInFlush((n) => encoder.encode(`received ${n} bytes`)),
    )
    .pipeTo(client.writable);
  await ReadableStream.from([greeting]).pipeTo(server.writable);
  const reply = await new Response(server.readable).text();
  await clientDone;
  await Promise.all([server.closed, client.closed]);
  assert.equal(reply, `received ${greeting.length} bytes`);
});

Deno.test("ConnStreams closes the connection once, only after both directions end", async () => {
  using p = await pair();
  const server = new ConnStreams(p.server);
  let closed = false;
  server.closed.then(() => closed = true);

  // The peer half-closes; the server reads to the end but has not written.
  await p.client.closeWrite();
  assert.equal((await server.readable.getReader().read()).done, true);
  await Promise.resolve();
  assert.equal(closed, false);

  // The connection is still writable after the read side ended.
  const writer = server.writable.getWriter();
  await writer.write(encoder.encode("late"));
  await writer.close();
  await server.closed;
  assert.equal(closed, true);

  const buffer = new Uint8Array(16);
  assert.equal(await p.client.read(buffer), 4);
  assert.equal(await p.client.read(buffer), null);
  // The server side's resource is gone: closing it again throws.
  assert.throws(() => p.server.close(), Deno.errors.BadResource);
});

Deno.test("ConnStreams hands on chunks under backpressure without reading ahead", async () => {
  using p = await pair();
  const server = new ConnStreams(p.server, { readSize: 8192 });
  const sent = pattern(1 << 20);
  const writing = (async () => {
    await p.client.write(sent).then(async (n) => {
      let offset = n;
      while (offset < sent.length) {
        offset += await p.client.write(sent.subarray(offset));
      }
    });
    await p.client.closeWrite();
  })();
  const reader = server.readable.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    assert.ok(value.length <= 8192);
    chunks.push(value);
    total += value.length;
    // Nothing is read before it is asked for.
    assert.equal(server.bytesRead, total);
  }
  await writing;
  const got = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    got.set(chunk, offset);
    offset += chunk.length;
  }
  assert.deepEqual(got, sent);
  server.close();
  await assert.rejects(server.closed, Deno.errors.Interrupted);
});

Deno.test("ConnStreams fails the writable and closed when the peer resets", async () => {
  using p = await pair();
  const server = new ConnStreams(p.server);
  const writer = server.writable.getWriter();
  await writer.write(encoder.encode("unread"));
  // Deno's close() sends a FIN (shutdown(SHUT_WR)) and then, as the socket
  // has unread data, the kernel sends a reset.
  assert.equal(await p.client.read(new Uint8Array(1)), 1);
  p.client.close();
  // The FIN ends the stream; the reset fails the next write.
  assert.equal((await server.readable.getReader().read()).done, true);
  // A small write is buffered; its failure errors the writable, so the
  // writer sees it (on `closed` and on the next write), never lost.
  await writer.write(encoder.encode("more")).catch(() => {});
  await assert.rejects(
    writer.closed,
    (e) =>
      e instanceof Deno.errors.BrokenPipe ||
      e instanceof Deno.errors.ConnectionReset,
  );
  await assert.rejects(server.closed);
  assert.throws(() => p.server.close(), Deno.errors.BadResource);
});

Deno.test("ConnStreams aborts on the signal with its reason", async () => {
  using p = await pair();
  const controller = new AbortController();
  const server = new ConnStreams(p.server, { signal: controller.signal });
  const reading = server.readable.getReader().read();
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(reading, (error) => error === reason);
  await assert.rejects(server.closed, (error) => error === reason);
  // The peer sees the connection end.
  assert.equal(await p.client.read(new Uint8Array(1)), null);
});

Deno.test("ConnStreams aborting the writable closes the connection", async () => {
  using p = await pair();
  const server = new ConnStreams(p.server);
  const reason = new Error("bad");
  await server.writable.abort(reason);
  await assert.rejects(server.readable.getReader().read(), (e) => e === reason);
  await assert.rejects(server.closed, (e) => e === reason);
});

Deno.test("ConnStreams cancelling the readable still lets the writable finish", async () => {
  using p = await pair();
  const server = new ConnStreams(p.server);
  await server.readable.cancel();
  await ReadableStream.from([encoder.encode("bye")]).pipeTo(server.writable);
  await server.closed;
  const buffer = new Uint8Array(8);
  assert.equal(await p.client.read(buffer), 3);
  assert.equal(await p.client.read(buffer), null);
});

Deno.test("ConnStreams rejects a readSize that is not a positive integer", () => {
  const conn = { read() {}, write() {} } as unknown as Deno.Conn;
  assert.throws(
    () => new ConnStreams(conn, { readSize: 0 }),
    {
      name: "RangeError",
      message:
        "Cannot create connection as maxReadSize must be an integer from 1 to 1073741824: current value is 0",
    },
  );
});

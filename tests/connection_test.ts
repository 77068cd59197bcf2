import assert from "node:assert/strict";
import { Connection } from "../connection.ts";
import { serve } from "../server.ts";
import {
  framed,
  FrameTooLargeError,
  lines,
  TruncatedFrameError,
} from "../framing.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";
import { chain, SyncTransformStream } from "../sync_transform.ts";
import { connPair, type ConnPairOptions } from "../testing.ts";
import { concat, pattern, writeUntilWaiting } from "./_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Every way the in-memory pair can cut the bytes into reads. */
const CHUNKINGS: [string, ConnPairOptions][] = [
  ["whole", {}],
  ["one-byte", { maxChunkSize: 1 }],
  ...[1, 2, 3, 4, 5].map((seed): [string, ConnPairOptions] => [
    `random seed ${seed}`,
    { seed },
  ]),
];

/** A pair of loopback TCP connections. */
async function tcpPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const server = await listener.accept();
  return [await client, server];
}

Deno.test("Connection.readable is a byte stream: read(view, { min }) fills across chunk boundaries", async () => {
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    await using b = new Connection(server);
    const sent = pattern(1000);
    const writing = b.write(sent).then(() => b.closeWrite());
    const reader = a.readable.getReader({ mode: "byob" });
    const first = await reader.read(new Uint8Array(600), { min: 600 });
    assert.equal(first.value!.length, 600, name);
    const rest = await reader.read(new Uint8Array(600), { min: 400 });
    assert.equal(rest.value!.length, 400, name);
    assert.deepEqual(concat([first.value!, rest.value!]), sent, name);
    const end = await reader.read(new Uint8Array(1));
    assert.equal(end.done, true, name);
    await writing;
  }
});

Deno.test("Connection.readable ends at the peer's FIN and the connection still answers", async () => {
  const [client, server] = await tcpPair();
  await using a = new Connection(client);
  await using b = new Connection(server);
  await a.write(encoder.encode("question"));
  await a.closeWrite();
  assert.equal(a.state, "write-closed");
  assert.equal(await new Response(b.readable).text(), "question");
  assert.equal(b.state, "read-closed");
  await b.write(encoder.encode("answer after FIN"));
  await b.closeWrite();
  assert.equal(await new Response(a.readable).text(), "answer after FIN");
  await Promise.all([a.closed, b.closed]);
  assert.equal(a.state, "closed");
  assert.equal(b.state, "closed");
  assert.equal(a.bytesWritten, 8);
  assert.equal(b.bytesRead, 8);
  assert.equal(a.signal.aborted, false);
});

Deno.test("Connection.readable.pipeThrough() feeds the transform every byte without a copy, and its flush() answer follows FIN", async () => {
  const [client, server] = await tcpPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  const views: boolean[] = [];
  const piping = b.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        views.push(chunk.length < chunk.buffer.byteLength);
        controller.enqueue(chunk);
      },
      flush(controller) {
        controller.enqueue(encoder.encode("end\n"));
      },
    }),
  ).pipeTo(b.writable);
  assert.equal(b.readable.locked, true);
  // A small exchange first: its chunk is a view of a larger read buffer.
  await a.write(encoder.encode("hi\n"));
  const reader = a.reader();
  assert.equal(decoder.decode(await reader.readExactly(3)), "hi\n");
  reader.releaseLock();
  const sent = pattern(1 << 20);
  const writing = (async () => {
    for (let at = 0, size = 1; at < sent.length; size = size * 7 % 65521) {
      await a.write(sent.subarray(at, at += size));
    }
    await a.closeWrite();
  })();
  const got = await new Response(a.readable).bytes();
  await writing;
  await piping;
  assert.deepEqual(got, concat([sent, encoder.encode("end\n")]));
  assert.equal(views[0], true);
  assert.equal(b.readable.locked, false);
  assert.equal(b.state, "closed");
  assert.equal(b.bytesRead, sent.length + 3);
});

Deno.test("Connection.readable.pipeTo() writes every byte, closes the destination at FIN, and rejects with the destination's error", async () => {
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    await using b = new Connection(server);
    const chunks: Uint8Array[] = [];
    let closed = false;
    const writing = a.write(pattern(20_000)).then(() => a.closeWrite());
    await b.readable.pipeTo(
      new WritableStream({
        write(chunk) {
          chunks.push(chunk.slice());
        },
        close() {
          closed = true;
        },
      }),
    );
    await writing;
    assert.deepEqual(concat(chunks), pattern(20_000), name);
    assert.equal(closed, true, name);
    assert.equal(b.readable.locked, false, name);
    assert.equal(b.state, "read-closed", name);
  }
  const [client, server] = connPair();
  await using a = new Connection(client);
  await using b = new Connection(server);
  const failure = new Error("disk full");
  const piping = b.readable.pipeTo(
    new WritableStream({
      write() {
        throw failure;
      },
    }),
  );
  await a.write(encoder.encode("x"));
  await assert.rejects(piping, (error) => error === failure);
  // The reading was cancelled, as a pipe cancels its source.
  assert.equal(b.state, "read-closed");
  assert.equal(b.readable.locked, false);
  assert.equal((await b.readable.getReader().read()).done, true);
});

Deno.test("Connection.readable.pipeThrough() with options takes the generic pipe: same bytes, and its signal stops it", async () => {
  const [client, server] = connPair({ seed: 7 });
  await using a = new Connection(client);
  const b = new Connection(server);
  const controller = new AbortController();
  const piping = b.readable.pipeThrough(new TransformStream(), {
    signal: controller.signal,
  }).pipeTo(b.writable);
  await a.write(pattern(5000));
  const reader = a.reader();
  assert.deepEqual(await reader.readExactly(5000), pattern(5000));
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(piping, (error) => error === reason);
  await assert.rejects(b.closed, (error) => error === reason);
  assert.equal(await reader.read(), null);
});

Deno.test("Connection.readable.pipeThrough() stops reading when the transform fails, and the connection closes with its error", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  const failure = new Error("bad input");
  const piping = b.readable.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform() {
        throw failure;
      },
    }),
  ).pipeTo(b.writable);
  await a.write(encoder.encode("x"));
  await assert.rejects(piping, (error) => error === failure);
  await assert.rejects(b.closed, (error) => error === failure);
  assert.equal(b.state, "closed");
  assert.equal(await new Response(a.readable).text(), "");
});

Deno.test("Connection.readable.pipeThrough() aborts the transform with the reason when the connection is closed under it", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  const output = b.readable.pipeThrough(new TransformStream()).getReader();
  await a.write(encoder.encode("first"));
  assert.equal(decoder.decode((await output.read()).value), "first");
  const reason = new Error("shutting down");
  const next = output.read();
  b.close(reason);
  await assert.rejects(next, (error) => error === reason);
  await assert.rejects(b.closed, (error) => error === reason);
});

Deno.test("Connection.reader() reads exactly, until a delimiter and peeks under every chunking", async () => {
  const input = "HELLO 5\r\nworldPING\r\n\r\nrest";
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    await using b = new Connection(server);
    const writing = a.write(encoder.encode(input)).then(() => a.closeWrite());
    const reader = b.reader();
    assert.equal(decoder.decode(await reader.peek(5)), "HELLO", name);
    const line = await reader.readUntil("\r\n");
    assert.equal(decoder.decode(line!), "HELLO 5", name);
    assert.equal(decoder.decode(await reader.readExactly(5)), "world", name);
    assert.equal(
      decoder.decode((await reader.readUntil("\r\n"))!),
      "PING",
      name,
    );
    assert.equal((await reader.readUntil(new Uint8Array([13, 10])))!.length, 0);
    assert.equal(decoder.decode(await reader.readExactly(4)), "rest", name);
    assert.equal(await reader.readUntil("\r\n"), null, name);
    assert.equal(await reader.read(), null, name);
    await writing;
  }
});

Deno.test("ConnectionReader.releaseLock() hands back unread bytes, and the readable reads them first", async () => {
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    await using b = new Connection(server);
    await a.write(encoder.encode("HEAD\nbody and more"));
    await a.closeWrite();
    const reader = b.reader();
    assert.equal(decoder.decode((await reader.readUntil("\n"))!), "HEAD", name);
    await reader.peek(4); // buffers at least "body"
    const unread = reader.releaseLock();
    assert.ok("body and more".startsWith(decoder.decode(unread)), name);
    assert.ok(unread.length >= 4, name);
    assert.equal(await new Response(b.readable).text(), "body and more", name);
  }
});

Deno.test("ConnectionReader reports a missing delimiter over the limit and a truncated message, losing nothing", async () => {
  const [client, server] = connPair({ maxChunkSize: 7 });
  await using a = new Connection(client);
  await using b = new Connection(server);
  await a.write(encoder.encode("0123456789abcdef\nxyz"));
  await a.closeWrite();
  const reader = b.reader();
  await assert.rejects(reader.readUntil("\n", { limit: 8 }), (error) => {
    assert.ok(error instanceof FrameTooLargeError);
    assert.equal(error.limit, 8);
    assert.match(error.message, /must be <= 8 bytes/);
    return true;
  });
  // The bytes stay unread: a larger limit gets the line.
  const line = await reader.readUntil("\n", { limit: 100 });
  assert.equal(decoder.decode(line!), "0123456789abcdef");
  await assert.rejects(reader.readExactly(10), (error) => {
    assert.ok(error instanceof TruncatedFrameError);
    assert.equal(error.received, 3);
    assert.equal(error.expected, 10);
    return true;
  });
  assert.equal(decoder.decode(await reader.readExactly(3)), "xyz");
});

Deno.test("Connection lets one side read at a time: readable, reader() and serve() exclude each other", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  using _b = new Connection(server);
  const reader = a.reader();
  assert.throws(() => a.readable, {
    name: "TypeError",
    message:
      "Cannot use the connection's read side for readable as reader holds it",
  });
  assert.throws(() => a.reader(), TypeError);
  reader.releaseLock();
  a.readable.getReader().releaseLock();
  await assert.rejects(a.serve(new EchoStream()), TypeError);
});

Deno.test("Connection coalesces small writes into few system calls, in order", async () => {
  // Real sockets: a socket write takes a trip through the event loop, and
  // writes made meanwhile join the next one.
  const [client, server] = await tcpPair();
  let calls = 0;
  const write = client.write.bind(client);
  client.write = (p) => {
    calls++;
    return write(p);
  };
  await using a = new Connection(client);
  await using b = new Connection(server);
  const writer = a.writable.getWriter();
  const parts: Uint8Array[] = [];
  for (let i = 0; i < 1000; i++) {
    const part = encoder.encode(`${i},`);
    parts.push(part);
    writer.write(part);
  }
  await writer.close();
  const got = await new Response(b.readable).bytes();
  assert.deepEqual(got, concat(parts));
  assert.ok(calls < 50, `expected few writes, got ${calls}`);
});

Deno.test("Connection.serve() coalesces a stream service's burst of small chunks into few system calls", async () => {
  const [client, server] = await tcpPair();
  let calls = 0;
  const write = server.write.bind(server);
  server.write = (p) => {
    calls++;
    return write(p);
  };
  await using a = new Connection(client);
  const b = new Connection(server);
  const reply = encoder.encode("+PONG\r\n");
  // A plain TransformStream (no fast path): one chunk out per line in.
  const served = b.serve(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        for (const byte of chunk) if (byte === 0x0a) controller.enqueue(reply);
      },
    }),
  );
  await a.write(encoder.encode("PING\n".repeat(2000)));
  await a.closeWrite();
  const answer = await new Response(a.readable).text();
  await served;
  assert.equal(answer, "+PONG\r\n".repeat(2000));
  assert.ok(calls < 100, `expected few writes, got ${calls}`);
});

Deno.test("Connection.write() keeps order between small copied and large direct writes", async () => {
  const [client, server] = connPair({ bufferSize: 4096 });
  await using a = new Connection(client, { writeBufferSize: 1024 });
  await using b = new Connection(server);
  const parts = [
    pattern(10),
    pattern(5000),
    pattern(100),
    pattern(300),
    pattern(700),
    pattern(3),
    pattern(20000),
    pattern(1),
  ];
  // Issued without waiting: the order must still hold.
  const writes = parts.map((part) => a.write(part));
  const reading = new Response(b.readable).bytes();
  await Promise.all(writes);
  await a.closeWrite();
  assert.deepEqual(await reading, concat(parts));
});

Deno.test("Connection.writable applies backpressure: a slow reader never lets buffered bytes grow past the bound", async () => {
  const writeBufferSize = 8192;
  const [client, server] = connPair({ bufferSize: 4096, maxChunkSize: 100 });
  await using a = new Connection(client, { writeBufferSize });
  await using b = new Connection(server);
  const chunk = pattern(1000);
  const reading = new Response(b.readable).bytes();
  const writer = a.writable.getWriter();
  let accepted = 0;
  let most = 0;
  for (let i = 0; i < 500; i++) {
    await writer.write(chunk);
    accepted += chunk.length;
    // What the connection holds: accepted but not yet in the socket.
    most = Math.max(most, accepted - a.bytesWritten);
  }
  await writer.close();
  assert.ok(
    most <= writeBufferSize + chunk.length,
    `held ${most} bytes, bound is ${writeBufferSize}`,
  );
  assert.equal((await reading).length, 500 * chunk.length);
});

Deno.test("Connection rejects a chunk that is not a Uint8Array, and writes after closeWrite()", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  using _b = new Connection(server);
  await assert.rejects(a.write("text" as unknown as Uint8Array), {
    name: "TypeError",
    message:
      "Cannot write to connection as the chunk must be a Uint8Array: current type is string",
  });
  const writer = a.writable.getWriter();
  await assert.rejects(writer.write(42 as unknown as Uint8Array), {
    name: "TypeError",
    message:
      "Cannot write to connection as the chunk must be a Uint8Array: current type is number",
  });
  writer.releaseLock();
  await a.closeWrite();
  await assert.rejects(a.write(new Uint8Array(1)), {
    name: "TypeError",
    message:
      "Cannot write to connection as its write side is closed: current state is write-closed",
  });
  a.close();
  await assert.rejects(a.write(new Uint8Array(1)), Deno.errors.Interrupted);
});

Deno.test("Connection reports a peer's reset to the writer and to closed, never silently", async () => {
  const [client, server] = await tcpPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  // Closing a socket with unread data makes the kernel send a reset (after
  // the FIN Deno's close() sends): b's writes fail.
  await b.write(encoder.encode("unread"));
  await a.reader().peek(1);
  a.close();
  const chunk = pattern(64 * 1024);
  await assert.rejects(
    (async () => {
      for (let i = 0; i < 1000; i++) await b.write(chunk);
    })(),
    (error) =>
      error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe,
  );
  await assert.rejects(b.closed);
  assert.equal(b.state, "closed");
  assert.equal(b.signal.aborted, true);
  await assert.rejects(b.write(new Uint8Array(1)));
});

Deno.test("Connection sets TCP_NODELAY by default, and keepAlive on request", () => {
  const [client, server] = connPair();
  using a = new Connection(client);
  using b = new Connection(server, { noDelay: false, keepAlive: true });
  assert.equal(client.noDelay, true);
  assert.equal(client.keepAlive, false);
  assert.equal(server.noDelay, false);
  assert.equal(server.keepAlive, true);
  a.setKeepAlive();
  b.setNoDelay();
  assert.equal(client.keepAlive, true);
  assert.equal(server.noDelay, true);
});

Deno.test("Connection closes at once on its signal and on close(reason)", async () => {
  const [client, server] = connPair();
  const controller = new AbortController();
  const a = new Connection(client, { signal: controller.signal });
  const b = new Connection(server);
  const reading = a.readable.getReader().read();
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(reading, (error) => error === reason);
  await assert.rejects(a.closed, (error) => error === reason);
  assert.equal(a.signal.reason, reason);
  assert.equal(await b.reader().read(), null);
  b.close();
  await assert.rejects(b.closed, Deno.errors.Interrupted);
});

Deno.test("Connection rejects bad options with the value named", () => {
  const [client, server] = connPair();
  using _b = new Connection(server);
  assert.throws(() => new Connection(client, { writeBufferSize: 0 }), {
    name: "RangeError",
    message:
      "Cannot create connection as writeBufferSize must be an integer from 1 to 1073741824: current value is 0",
  });
  assert.throws(() => new Connection("conn" as unknown as Deno.Conn), {
    name: "TypeError",
    message:
      "Cannot create connection as conn must be a Deno.Conn: current type is string",
  });
  client.close();
});

Deno.test("Connection.serve() runs a SyncTransformStream in the read loop and answers after FIN", async () => {
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    const b = new Connection(server);
    let count = 0;
    const served = b.serve(
      new SyncTransformStream<Uint8Array, Uint8Array>(chain(
        new UpperCaseStream().transformer,
        {
          transform(chunk, emit) {
            count += chunk.length;
            emit(chunk);
          },
          flush(emit) {
            emit(encoder.encode(`|${count}`));
          },
        },
      )),
    );
    await a.write(encoder.encode("hello, world"));
    await a.closeWrite();
    assert.equal(
      await new Response(a.readable).text(),
      "HELLO, WORLD|12",
      name,
    );
    await served;
  }
});

Deno.test("Connection.serve() pipes any TransformStream, with a flush() answer after FIN", async () => {
  const [client, server] = await tcpPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  let lines = 0;
  const served = b.serve(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk) {
        for (const byte of chunk) if (byte === 0x0a) lines++;
      },
      flush(controller) {
        controller.enqueue(pattern(3 << 20));
        controller.enqueue(encoder.encode(`${lines}\n`));
      },
    }),
  );
  await a.write(encoder.encode("a\nb\nc\n"));
  await a.closeWrite();
  const answer = await new Response(a.readable).bytes();
  assert.equal(answer.length, (3 << 20) + 2);
  assert.deepEqual(answer.subarray(0, 3 << 20), pattern(3 << 20));
  assert.equal(decoder.decode(answer.subarray(3 << 20)), "3\n");
  await served;
});

Deno.test("Connection.serve() rejects with the service's error and closes the connection", async () => {
  for (const sync of [true, false]) {
    const [client, server] = connPair();
    await using a = new Connection(client);
    const b = new Connection(server);
    const failure = new Error("bad input");
    const service = sync
      ? new SyncTransformStream<Uint8Array, Uint8Array>({
        transform() {
          throw failure;
        },
      })
      : new TransformStream<Uint8Array, Uint8Array>({
        transform() {
          throw failure;
        },
      });
    const served = b.serve(service);
    await a.write(encoder.encode("x"));
    await assert.rejects(served, (error) => error === failure);
    assert.equal(b.state, "closed");
    assert.equal(await new Response(a.readable).text(), "");
  }
});

Deno.test("Connection.serve() rejects a service that emits strings, naming the type", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  const b = new Connection(server);
  const served = b.serve(
    new SyncTransformStream<Uint8Array, Uint8Array>({
      transform(_chunk, emit) {
        emit("text" as unknown as Uint8Array);
      },
    }),
  );
  await a.write(encoder.encode("x"));
  await assert.rejects(served, {
    name: "TypeError",
    message:
      "Cannot write to connection as the chunk must be a Uint8Array: current type is string",
  });
});

Deno.test("Connection.serve() echoes 8 MiB through both paths byte-exact over TCP", async () => {
  for (const service of [() => new EchoStream(), () => new TransformStream()]) {
    const [client, server] = await tcpPair();
    await using a = new Connection(client);
    const b = new Connection(server);
    const served = b.serve(service());
    const sent = pattern(8 << 20);
    const writing = a.write(sent).then(() => a.closeWrite());
    const got = await new Response(a.readable).bytes();
    await writing;
    await served;
    assert.equal(got.length, sent.length);
    assert.deepEqual(got, sent);
    assert.equal(b.bytesRead, sent.length);
    assert.equal(b.bytesWritten, sent.length);
  }
});

/** A user's pair: bytes → text → upper-case text → bytes. */
function upperPair(): ReadableWritablePair<Uint8Array, Uint8Array> {
  const decode = new TextDecoderStream();
  const encode = new TextEncoderStream();
  decode.readable
    .pipeThrough(
      new TransformStream<string, string>({
        transform: (text, controller) => controller.enqueue(text.toUpperCase()),
      }),
    )
    .pipeTo(encode.writable)
    .catch(() => {});
  return { writable: decode.writable, readable: encode.readable };
}

Deno.test("serve() and Connection.serve() serve a { readable, writable } pair and a CompressionStream", async () => {
  const text = "grüße, wörld\n".repeat(1000);
  for (const via of ["serve()", "Connection.serve()"]) {
    for (
      const [make, decode] of [
        [upperPair, (bytes: Uint8Array) => decoder.decode(bytes)],
        [
          () => new CompressionStream("gzip"),
          async (bytes: Uint8Array) =>
            await new Response(
              ReadableStream.from([bytes as Uint8Array<ArrayBuffer>])
                .pipeThrough(
                  new DecompressionStream("gzip"),
                ),
            ).text(),
        ],
      ] as const
    ) {
      const service = make as () => ReadableWritablePair<
        Uint8Array,
        Uint8Array
      >;
      await using server = via === "serve()"
        ? serve({ port: 0, hostname: "127.0.0.1" }, service)
        : undefined;
      using listener = via === "serve()"
        ? undefined
        : Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = ((server ?? listener)!.addr as Deno.NetAddr).port;
      const served = listener?.accept().then((conn) =>
        new Connection(conn).serve(service())
      );
      await using client = new Connection(
        await Deno.connect({ hostname: "127.0.0.1", port }),
      );
      await client.write(encoder.encode(text));
      await client.closeWrite();
      const answer = await decode(await new Response(client.readable).bytes());
      await served;
      const want = make === upperPair ? text.toUpperCase() : text;
      assert.equal(answer, want, `${via}, ${make.name || "gzip"}`);
    }
  }
});

Deno.test("serve() refuses a handler's value that is not a service, naming what it got", async () => {
  const errors = Promise.withResolvers<unknown>();
  await using server = serve({
    port: 0,
    hostname: "127.0.0.1",
    onError: (error) => errors.resolve(error),
  }, () => ({ readable: new ReadableStream() }) as never);
  const { port } = server.addr as Deno.NetAddr;
  await using client = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port }),
  );
  const error = await errors.promise;
  assert.ok(error instanceof TypeError);
  assert.equal(
    error.message,
    "Cannot serve connection as the handler must return a service (a ReadableWritablePair such as a TransformStream), a promise or nothing: current type is Object with no writable WritableStream",
  );
  // The client is not left waiting: the connection is closed.
  assert.equal((await new Response(client.readable).bytes()).length, 0);
});

Deno.test("Connection.readable's reader and iteration take every byte under every chunking, then end, and closed settles", async () => {
  const bytes = pattern(20_000);
  for (const [name, options] of CHUNKINGS) {
    const [client, server] = connPair(options);
    await using a = new Connection(client);
    await using b = new Connection(server);
    const sending = a.write(bytes).then(() => a.closeWrite());
    const reader = b.readable.getReader();
    const got: Uint8Array[] = [];
    // Half by the reader, the rest by a loop after it lets go.
    let total = 0;
    while (total < bytes.length / 2) {
      const { done, value } = await reader.read();
      assert.equal(done, false, name);
      got.push(value!);
      total += value!.length;
    }
    reader.releaseLock();
    for await (const chunk of b.readable) got.push(chunk);
    await sending;
    assert.deepEqual(concat(got), bytes, name);
    const after = b.readable.getReader();
    assert.deepEqual(await after.read(), { done: true, value: undefined });
    await after.closed;
  }
});

Deno.test("Connection.readable: a released reader's read under way is refused at once, and its bytes go to the next reader", async () => {
  const [client, server] = connPair();
  await using a = new Connection(client);
  await using b = new Connection(server);
  const reader = b.readable.getReader();
  const pending = reader.read(); // nothing sent yet: it waits on the socket
  reader.releaseLock();
  await assert.rejects(pending, TypeError);
  await a.write(encoder.encode("kept"));
  await a.closeWrite();
  assert.equal(decoder.decode(await new Response(b.readable).bytes()), "kept");

  // Cancelled instead: the read under way is done at once.
  const [client2, server2] = connPair();
  await using c = new Connection(client2);
  await using d = new Connection(server2);
  const cancelling = d.readable.getReader();
  const waiting = cancelling.read();
  await cancelling.cancel();
  assert.deepEqual(await waiting, { done: true, value: undefined });
  await c.closeWrite();
});

Deno.test("Connection.readable: a reader's read under way fails with the connection's failure, and the stream stays errored", async () => {
  const [client, server] = connPair();
  using _a = new Connection(client);
  const b = new Connection(server);
  const reader = b.readable.getReader();
  const pending = reader.read(); // waits on the socket
  const reason = new Error("gone");
  b.close(reason);
  await assert.rejects(pending, (error) => error === reason);
  await assert.rejects(reader.closed, (error) => error === reason);
  await assert.rejects(reader.read(), (error) => error === reason);
});

Deno.test("Connection.writable's writer: desiredSize and ready say when a write waits, a pipe after it keeps order, and close() ends it", async () => {
  const [client, server] = connPair({ bufferSize: 1024 });
  const a = new Connection(client, { writeBufferSize: 4096 });
  const writer = a.writable.getWriter();
  assert.equal(writer.desiredSize, 1);
  const chunk = pattern(1000);
  const { written, waiting } = await writeUntilWaiting(writer, chunk);
  assert.ok(waiting, `all ${written} writes taken`);
  assert.equal(writer.desiredSize, 0);
  await using b = new Connection(server);
  const reading = new Response(b.readable).bytes();
  await writer.ready;
  assert.equal(writer.desiredSize, 1);
  writer.releaseLock();
  await ReadableStream.from([encoder.encode("end")]).pipeTo(a.writable);
  await assert.rejects(a.writable.getWriter().write(chunk), TypeError);
  const got = await reading;
  assert.equal(got.length, written * 1000 + 3);
  assert.equal(decoder.decode(got.subarray(-3)), "end");
  a.close();
});

Deno.test("Connection.close() during a socket read: every way of reading reports the close's reason (or Interrupted), and closed rejects with it", async () => {
  // Each way of reading awaits the socket read itself; the close must
  // reach it as it reaches the connection.
  const ways: Record<string, (connection: Connection) => Promise<unknown>> = {
    "readable's iteration": (c) => c.readable[Symbol.asyncIterator]().next(),
    "readable's reader": (c) => c.readable.getReader().read(),
    "readable.pipeTo()": (c) => c.readable.pipeTo(new WritableStream()),
    "framed()'s iteration": (c) =>
      framed(c, lines())[Symbol.asyncIterator]().next(),
    "serve(TransformStream)": (c) => c.serve(new TransformStream()),
    "serve(EchoStream)": (c) => c.serve(new EchoStream()),
  };
  for (const [way, read] of Object.entries(ways)) {
    for (const reason of [undefined, new Error("going away")]) {
      const [client, server] = await tcpPair();
      const connection = new Connection(server);
      const reading = read(connection);
      // The peer writes nothing: the read waits on the socket.
      connection.close(reason);
      const expected = reason ?? { name: "Interrupted" };
      await assert.rejects(reading, expected, way);
      await assert.rejects(connection.closed, expected, way);
      client.close();
    }
  }
});

import assert from "node:assert/strict";
import { chunkings, connPair, testHandler } from "../testing.ts";
import { framed, LineDecoderStream, lines } from "../framing.ts";
import { Connection } from "../connection.ts";
import { UpperCaseStream } from "../services.ts";
import { pattern } from "./_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Lets every promise that is ready settle (one trip round the event loop). */
function turn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** Reads until null and returns everything, with the size of each read. */
async function readAll(
  conn: Deno.Conn,
  size = 1024,
): Promise<{ bytes: Uint8Array; reads: number[] }> {
  const buffer = new Uint8Array(size);
  const parts: Uint8Array[] = [];
  const reads: number[] = [];
  for (let n; (n = await conn.read(buffer)) !== null;) {
    parts.push(buffer.slice(0, n));
    reads.push(n);
  }
  return { bytes: concat(parts), reads };
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** Writes every byte, as a write-all loop does. */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Settles to the error's class name, or "ok: <value>". */
async function outcome(action: () => unknown): Promise<string> {
  try {
    const value = await action();
    return `ok: ${JSON.stringify(value ?? null)}`;
  } catch (error) {
    return (error as Error).constructor.name;
  }
}

Deno.test("connPair() carries bytes in order both ways, copying what is written", async () => {
  const [a, b] = connPair();
  const sent = encoder.encode("hello");
  assert.equal(await a.write(sent), 5);
  sent.fill(0); // the caller may reuse its buffer at once
  const buffer = new Uint8Array(16);
  assert.equal(await b.read(buffer), 5);
  assert.equal(decoder.decode(buffer.subarray(0, 5)), "hello");
  await b.write(encoder.encode("wor"));
  await b.write(encoder.encode("ld"));
  assert.equal(await a.read(buffer), 5); // one byte stream: writes merge
  assert.equal(decoder.decode(buffer.subarray(0, 5)), "world");
  assert.equal(await a.read(new Uint8Array(0)), 0);
  assert.equal(await a.write(new Uint8Array(0)), 0);
  a.close();
  b.close();
});

Deno.test("connPair() half-close: the client's FIN ends the server's reads, the server still answers", async () => {
  const [client, server] = connPair();
  await client.write(encoder.encode("question"));
  await client.closeWrite();
  await client.closeWrite(); // twice is fine, as on a socket
  assert.equal(decoder.decode((await readAll(server)).bytes), "question");
  assert.equal(await server.read(new Uint8Array(4)), null); // and stays ended
  await assert.rejects(client.write(encoder.encode("more")), {
    name: "BrokenPipe",
    message:
      "Cannot write as this end has sent its FIN (closeWrite): broken pipe",
  });
  await server.write(encoder.encode("answer after FIN"));
  await server.closeWrite();
  assert.equal(
    decoder.decode((await readAll(client)).bytes),
    "answer after FIN",
  );
  client.close();
  server.close();
});

Deno.test("connPair() half-close: the server's FIN first, the client still sends", async () => {
  const [client, server] = connPair();
  await server.write(encoder.encode("banner"));
  await server.closeWrite();
  assert.equal(decoder.decode((await readAll(client)).bytes), "banner");
  await client.write(encoder.encode("late words"));
  client.close();
  assert.equal(decoder.decode((await readAll(server)).bytes), "late words");
  server.close();
});

Deno.test("connPair() backpressure: a write waits on a full buffer and resumes as the peer reads", async () => {
  const [a, b] = connPair({ bufferSize: 8 });
  assert.equal(a.bufferSize, 8);
  assert.equal(await a.write(pattern(20)), 8); // a partial write
  assert.equal(a.bufferedAmount, 8);
  let settled = false;
  const blocked = a.write(pattern(20).subarray(8)).then((n) => {
    settled = true;
    return n;
  });
  await turn();
  assert.equal(settled, false, "a write to a full buffer must wait");
  assert.equal(a.bufferedAmount, 8);
  const buffer = new Uint8Array(3);
  assert.equal(await b.read(buffer), 3);
  assert.equal(await blocked, 3); // exactly the room freed
  assert.equal(a.bufferedAmount, 8);
  a.close();
  b.close();
});

Deno.test("connPair() backpressure: 1 MiB through a 1 KiB buffer never holds more than 1 KiB", async () => {
  const [a, b] = connPair({ bufferSize: 1024 });
  const data = pattern(1 << 20);
  let most = 0;
  const writing = (async () => {
    for (let at = 0; at < data.length;) {
      at += await a.write(data.subarray(at, at + 4096));
      most = Math.max(most, a.bufferedAmount);
    }
    await a.closeWrite();
  })();
  const { bytes } = await readAll(b, 700);
  await writing;
  assert.ok(most <= 1024, `buffered ${most} bytes`);
  assert.deepEqual(bytes, data);
  a.close();
  b.close();
});

Deno.test("connPair() maxChunkSize: 1 hands out one byte per read", async () => {
  const [a, b] = connPair({ maxChunkSize: 1 });
  await a.write(encoder.encode("abcdef"));
  await a.closeWrite();
  const { bytes, reads } = await readAll(b);
  assert.equal(decoder.decode(bytes), "abcdef");
  assert.deepEqual(reads, [1, 1, 1, 1, 1, 1]);
  a.close();
  b.close();
});

Deno.test("connPair() seed: random read sizes, the same for the same seed", async () => {
  const run = async (seed: number) => {
    const [a, b] = connPair({ seed, maxChunkSize: 64 });
    const data = pattern(5000);
    const writing = writeAll(a, data).then(() => a.closeWrite());
    const { bytes, reads } = await readAll(b, 1000);
    await writing;
    a.close();
    b.close();
    assert.deepEqual(bytes, data);
    assert.ok(reads.every((n) => n >= 1 && n <= 64), `${reads}`);
    return reads;
  };
  const first = await run(7);
  assert.deepEqual(await run(7), first);
  assert.notDeepEqual(await run(8), first);
  assert.ok(new Set(first).size > 10, "sizes vary");
});

Deno.test("connPair() close(): pending calls are interrupted, later ones are a bad resource", async () => {
  const [a, b] = connPair({ bufferSize: 4 });
  const stuckRead = a.read(new Uint8Array(8)); // waits: b sends nothing
  assert.equal(await a.write(pattern(4)), 4); // fills b's buffer
  const stuckWrite = a.write(pattern(4)); // waits for room
  a.close();
  await assert.rejects(stuckRead, {
    name: "Interrupted",
    message:
      "Cannot finish read as the connection was closed meanwhile: operation canceled",
  });
  await assert.rejects(stuckWrite, Deno.errors.Interrupted);
  await assert.rejects(a.read(new Uint8Array(1)), {
    name: "BadResource",
    message: "Cannot read as the connection is closed: bad resource",
  });
  await assert.rejects(a.write(pattern(1)), Deno.errors.BadResource);
  await assert.rejects(a.closeWrite(), Deno.errors.BadResource);
  assert.throws(() => a.close(), Deno.errors.BadResource);
  assert.throws(() => a.setNoDelay(), Deno.errors.BadResource);
  a[Symbol.dispose](); // never throws
  assert.equal(a.isClosed, true);
  // The peer reads what was sent before the close, then end of stream.
  assert.deepEqual((await readAll(b)).bytes, pattern(4));
  await assert.rejects(b.write(pattern(1)), {
    name: "BrokenPipe",
    message: "Cannot write as the peer has closed the connection: broken pipe",
  });
  await b.closeWrite(); // moot, but not an error (as on Linux)
  b.close();
});

Deno.test("connPair() close() with unread bytes: the peer's waiting write fails, its unread bytes still arrive", async () => {
  const [a, b] = connPair({ bufferSize: 4 });
  await a.write(encoder.encode("bye"));
  assert.equal(await b.write(pattern(4)), 4);
  const waiting = b.write(pattern(4)); // a's buffer is full
  a.close(); // with 4 unread bytes: a reset, for TCP
  await assert.rejects(waiting, Deno.errors.BrokenPipe);
  await assert.rejects(b.write(pattern(1)), Deno.errors.BrokenPipe);
  assert.equal(decoder.decode((await readAll(b)).bytes), "bye");
  b.close();
});

Deno.test("connPair() fails the way a loopback TcpConn fails", async () => {
  // The same sequence on a real socket pair and on connPair(), step by step.
  const script = async (a: Deno.Conn, b: Deno.Conn) => {
    const steps: string[] = [];
    const step = async (name: string, action: () => unknown) =>
      steps.push(`${name}: ${await outcome(action)}`);
    await step("write", () => a.write(encoder.encode("abc")));
    await step("closeWrite", () => a.closeWrite());
    await step("closeWrite again", () => a.closeWrite());
    await step("write after closeWrite", () => a.write(pattern(1)));
    await step("peer read", () => b.read(new Uint8Array(8)));
    await step("peer read at FIN", () => b.read(new Uint8Array(8)));
    await step("peer read again", () => b.read(new Uint8Array(8)));
    await step("peer empty read", () => b.read(new Uint8Array(0)));
    await step("peer write", () => b.write(encoder.encode("xy")));
    await step("read", () => a.read(new Uint8Array(8)));
    await step("peer close", () => b.close());
    await step("read after peer close", () => a.read(new Uint8Array(8)));
    await step("peer read after close", () => b.read(new Uint8Array(8)));
    await step("peer write after close", () => b.write(pattern(1)));
    await step("peer closeWrite after close", () => b.closeWrite());
    await step("peer close again", () => b.close());
    await step("close", () => a.close());
    return steps;
  };
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  using client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const server = await accepted;
  const real = await script(client, server);
  const [a, b] = connPair();
  assert.deepEqual(await script(a, b), real);
});

Deno.test("connPair() readable and writable behave as Deno's: the readable's end closes the connection", async () => {
  const [a, b] = connPair();
  await b.write(encoder.encode("bytes"));
  await b.closeWrite();
  // A byte stream, as Deno's: BYOB reads work.
  const reader = a.readable.getReader({ mode: "byob" });
  const { value } = await reader.read(new Uint8Array(2));
  assert.equal(decoder.decode(value), "by");
  reader.releaseLock();
  const rest = await Array.fromAsync(a.readable);
  assert.equal(decoder.decode(concat(rest)), "tes");
  assert.equal(a.isClosed, true); // Deno's quirk, mirrored
  assert.throws(() => a.close(), Deno.errors.BadResource);
  b.close();
});

Deno.test("connPair() writable behaves as Deno's: closing it closes both directions", async () => {
  const [a, b] = connPair();
  await ReadableStream.from([encoder.encode("hi")]).pipeTo(a.writable);
  assert.equal(a.isClosed, true);
  await assert.rejects(a.read(new Uint8Array(1)), Deno.errors.BadResource);
  assert.equal(decoder.decode((await readAll(b)).bytes), "hi");
  b.close();
});

Deno.test("connPair() addresses: each end's remoteAddr is the other's localAddr", () => {
  const [a, b] = connPair();
  const [c] = connPair({ hostname: "::1" });
  assert.equal(a.localAddr.transport, "tcp");
  assert.equal(a.localAddr.hostname, "127.0.0.1");
  assert.notEqual(a.localAddr.port, b.localAddr.port);
  assert.deepEqual(a.remoteAddr, b.localAddr);
  assert.deepEqual(b.remoteAddr, a.localAddr);
  assert.equal(c.localAddr.hostname, "::1");
  assert.notEqual(c.localAddr.port, a.localAddr.port);
  for (const end of [a, b, c]) end.close();
});

Deno.test("connPair() TCP options are recorded; ref and unref are accepted", () => {
  using a = connPair()[0];
  assert.equal(a.noDelay, false);
  a.setNoDelay();
  a.setKeepAlive(true);
  assert.equal(a.noDelay, true);
  assert.equal(a.keepAlive, true);
  a.setNoDelay(false);
  assert.equal(a.noDelay, false);
  a.unref();
  a.ref();
});

Deno.test("connPair() rejects a wrong chunk type and bad options with clear errors", async () => {
  const [a, b] = connPair();
  await assert.rejects(
    a.write("text" as unknown as Uint8Array),
    {
      name: "TypeError",
      message:
        'Cannot write as the data must be a Uint8Array: current value is a string "text"',
    },
  );
  await assert.rejects(a.read([] as unknown as Uint8Array), {
    name: "TypeError",
    message:
      "Cannot read as the buffer must be a Uint8Array: current value is an object of type Array",
  });
  a.close();
  b.close();
  assert.throws(() => connPair({ bufferSize: 0 }), {
    name: "RangeError",
    message:
      "Cannot create a connection pair as bufferSize must be a positive integer: current value is 0",
  });
  assert.throws(() => connPair({ maxChunkSize: 1.5 }), RangeError);
  assert.throws(() => connPair({ seed: 0.5 }), RangeError);
  assert.throws(() => connPair({ hostname: "" }), TypeError);
});

Deno.test("framed() runs over connPair() with one-byte and random reads", async () => {
  for (const options of [{ maxChunkSize: 1 }, { seed: 3 }, {}]) {
    const [client, server] = connPair(options);
    const served = (async () => {
      const { readable, writable } = framed(server, lines());
      const writer = writable.getWriter();
      for await (const line of readable) {
        await writer.write(decoder.decode(line).toUpperCase());
      }
      await writer.close(); // after the client's FIN: must still arrive
    })();
    const { readable, writable } = framed(client, lines());
    await ReadableStream.from(["alpha", "beta gamma", "", "delta"])
      .pipeTo(writable);
    const answers = await Array.fromAsync(readable, (l) => decoder.decode(l));
    await served;
    assert.deepEqual(
      answers,
      ["ALPHA", "BETA GAMMA", "", "DELTA"],
      JSON.stringify(options),
    );
  }
});

Deno.test("chunkings() cuts bytes whole, into single bytes and at seeded random places", () => {
  const data = pattern(3000);
  const all = chunkings(data);
  assert.deepEqual(all.map((c) => c.name), [
    "one chunk",
    "one-byte chunks",
    "random split 1 of seed 1",
    "random split 2 of seed 1",
    "random split 3 of seed 1",
    "random split 4 of seed 1",
  ]);
  for (const { name, chunks } of all) {
    assert.deepEqual(concat(chunks), data, name);
    assert.ok(chunks.every((c) => c.length > 0), name);
  }
  assert.equal(all[0]!.chunks.length, 1);
  assert.equal(all[1]!.chunks.length, 3000);
  const counts = all.slice(2).map((c) => c.chunks.length);
  assert.ok(counts.every((n) => n > 1 && n < 3000), `${counts}`);
  assert.ok(new Set(counts).size > 1, `${counts}: each split differs`);
  // Reproducible by seed, different across seeds.
  const again = chunkings(data).map((c) => c.chunks.map((x) => x.length));
  assert.deepEqual(again, all.map((c) => c.chunks.map((x) => x.length)));
  const other = chunkings(data, { seed: 2, splits: 1 });
  assert.equal(other.length, 3);
  assert.equal(other[2]!.name, "random split 1 of seed 2");
  assert.notDeepEqual(
    other[2]!.chunks.map((x) => x.length),
    all[2]!.chunks.map((x) => x.length),
  );
  assert.equal(chunkings("", { splits: 0 }).length, 2);
});

Deno.test("chunkings() gives copies: a decoder that modifies its input harms no other run", async () => {
  const data = encoder.encode("abc\ndef\n");
  for (const chunking of chunkings(data)) {
    const spoiled = await Array.fromAsync(chunking.stream(), (chunk) => {
      chunk.fill(0x21);
      return chunk;
    });
    assert.equal(spoiled.length, chunking.chunks.length);
    const lines = await Array.fromAsync(
      chunking.stream().pipeThrough(new LineDecoderStream()),
      (line) => decoder.decode(line),
    );
    assert.deepEqual(lines, ["abc", "def"], chunking.name);
  }
  assert.equal(decoder.decode(data), "abc\ndef\n");
});

Deno.test("chunkings() rejects bad input with clear errors", () => {
  assert.throws(() => chunkings(42 as unknown as string), {
    name: "TypeError",
    message:
      "Cannot cut bytes into chunks as the input must be a Uint8Array or a string: current value is number 42",
  });
  assert.throws(() => chunkings("x", { splits: -1 }), {
    name: "RangeError",
    message:
      "Cannot cut bytes into chunks as splits must be a non-negative integer: current value is -1",
  });
  assert.throws(() => chunkings("x", { seed: 1.5 }), RangeError);
});

Deno.test("Connection runs over connPair(): TCP_NODELAY set, a service answers after the client's FIN", async () => {
  const [client, server] = connPair({ maxChunkSize: 3 });
  const connection = new Connection(server);
  assert.equal(server.noDelay, true, "Connection sets TCP_NODELAY");
  assert.equal(connection.remoteAddr, client.localAddr);
  const served = connection.serve(new UpperCaseStream());
  await using peer = new Connection(client);
  await peer.write(encoder.encode("half-close, "));
  await peer.write(encoder.encode("then the answer"));
  await peer.closeWrite();
  assert.equal(peer.state, "write-closed");
  assert.equal(
    await new Response(peer.readable).text(),
    "HALF-CLOSE, THEN THE ANSWER",
  );
  await served;
  await peer.closed;
  assert.equal(connection.state, "closed");
  assert.equal(connection.bytesRead, 27);
  assert.equal(server.isClosed, true);
});

Deno.test("Connection's pull reader reassembles messages from random reads over connPair()", async () => {
  for (const seed of [1, 2, 3]) {
    const [client, server] = connPair({ seed, maxChunkSize: 5 });
    await using connection = new Connection(server);
    await using peer = new Connection(client);
    const messages = ["first", "second message", "", "the fourth one"];
    const sending = (async () => {
      for (const text of messages) {
        const body = encoder.encode(text);
        await peer.write(new Uint8Array([body.length]));
        await peer.write(body);
        await peer.write(encoder.encode("\r\n"));
      }
      await peer.closeWrite();
    })();
    const reader = connection.reader();
    const got: string[] = [];
    for (let i = 0; i < messages.length; i++) {
      const [length] = await reader.readExactly(1);
      got.push(decoder.decode(await reader.readExactly(length!)));
      assert.deepEqual(await reader.readUntil("\r\n"), new Uint8Array(0));
    }
    assert.equal(await reader.read(), null);
    await sending;
    assert.deepEqual(got, messages, `seed ${seed}`);
  }
});

Deno.test("Connection's writes wait on a connPair() peer that does not read", async () => {
  const [client, server] = connPair({ bufferSize: 4096 });
  await using connection = new Connection(server, { writeBufferSize: 1024 });
  const chunk = new Uint8Array(100);
  let accepted = 0;
  let settled = false;
  const writing = (async () => {
    for (let i = 0; i < 1000; i++) {
      await connection.write(chunk);
      accepted += chunk.length;
    }
  })().finally(() => settled = true);
  await turn();
  await turn();
  assert.equal(settled, false, "writes must wait for the reader");
  // The peer's buffer is full and the connection's own buffer bounded.
  assert.equal(server.bufferedAmount, 4096);
  assert.ok(accepted <= 4096 + 1024, `accepted ${accepted} bytes`);
  // Reading everything lets every write through, in order, intact.
  const reading = readAll(client, 512);
  await writing;
  await connection.closeWrite();
  const { bytes } = await reading;
  assert.equal(bytes.length, 100_000);
  client.close();
});

Deno.test("testHandler() runs a service handler over connPair(): the answer after FIN, and the accounting", async () => {
  await using client = testHandler(() => new UpperCaseStream(), {
    maxChunkSize: 2,
    id: 5,
  });
  await client.write(encoder.encode("quiet words"));
  await client.closeWrite();
  assert.equal(await new Response(client.readable).text(), "QUIET WORDS");
  const summary = await client.served;
  assert.equal(summary.id, 5);
  assert.equal(summary.bytesIn, 11);
  assert.equal(summary.bytesOut, 11);
  assert.equal(summary.error, undefined);
  assert.deepEqual(summary.remoteAddr, client.localAddr);
  assert.equal(client.ends[1].noDelay, true);
});

Deno.test("testHandler() runs a handler of its own; the server sends FIN when it returns", async () => {
  // A tiny protocol: "a b\n" answers "a+b\n" until the client's FIN.
  await using client = testHandler(async (connection) => {
    const reader = connection.reader();
    for (let line; (line = await reader.readUntil("\n")) !== null;) {
      const [a, b] = decoder.decode(line).split(" ").map(Number);
      await connection.write(encoder.encode(`${a! + b!}\n`));
    }
  }, { seed: 11, maxChunkSize: 3 });
  await client.write(encoder.encode("1 2\n40 2\n"));
  await client.write(encoder.encode("100 -1\n"));
  await client.closeWrite();
  assert.equal(await new Response(client.readable).text(), "3\n42\n99\n");
  assert.equal((await client.served).error, undefined);
});

Deno.test("testHandler() reports a handler's error; the client sees the connection end", async () => {
  const reported: unknown[] = [];
  const failure = new Error("handler failed");
  await using client = testHandler(async (connection) => {
    await connection.reader().readExactly(1);
    throw failure;
  }, { onError: (error) => reported.push(error) });
  await client.write(encoder.encode("x"));
  assert.equal(await new Response(client.readable).text(), "");
  assert.equal((await client.served).error, failure);
  assert.deepEqual(reported, [failure]);
});

Deno.test("testHandler() refuses a denied client before the handler runs", async () => {
  let ran = false;
  const reported: unknown[] = [];
  await using client = testHandler(() => {
    ran = true;
  }, {
    hostname: "10.1.2.3",
    deny: ["10.0.0.0/8"],
    onError: (error) => reported.push(error),
  });
  assert.equal(await client.reader().read(), null);
  const { error } = await client.served;
  assert.ok(error instanceof Deno.errors.PermissionDenied, String(error));
  assert.equal(ran, false);
  assert.equal(reported.length, 1);
});

Deno.test("testHandler() shows a handler the real client behind a PROXY header", async () => {
  let seen: Deno.Addr | undefined;
  await using client = testHandler((connection) => {
    seen = connection.remoteAddr;
    return new UpperCaseStream();
  }, { proxyProtocol: true, maxChunkSize: 5 });
  await client.write(
    encoder.encode("PROXY TCP4 192.0.2.7 10.0.0.1 40000 443\r\nhi"),
  );
  await client.closeWrite();
  assert.equal(await new Response(client.readable).text(), "HI");
  assert.deepEqual(seen, {
    transport: "tcp",
    hostname: "192.0.2.7",
    port: 40000,
  });
  assert.equal((await client.served).bytesIn, 2);
});

Deno.test("testHandler(): a client that does not read holds the server's writes at the buffer size", async () => {
  const written = Promise.withResolvers<void>();
  let total = 0;
  await using client = testHandler(async (connection) => {
    const chunk = new Uint8Array(1000);
    try {
      for (let i = 0; i < 1000; i++) {
        await connection.write(chunk);
        total += chunk.length;
        if (total === 20_000) written.resolve();
      }
    } catch {
      // The client went away: the rest cannot be sent.
    }
  }, { bufferSize: 8192, onError: () => {} });
  await written.promise;
  await turn();
  const server = client.ends[1];
  assert.equal(server.bufferedAmount, 8192); // the client's buffer is full
  assert.ok(total < 8192 + 65536 + 2000, `the handler got ${total} bytes out`);
  client.close(); // never read: the server's writes fail
  const { error } = await client.served;
  assert.ok(
    error === undefined || error instanceof Deno.errors.BrokenPipe,
    String(error),
  );
});

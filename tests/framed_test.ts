// framed(): the message path (async iterator, write(), closeWrite()) over a
// Connection, under every chunking, with its errors and its backpressure.
import assert from "node:assert/strict";
import {
  type Codec,
  delimited,
  framed,
  FrameTooLargeError,
  LengthPrefixDecoder,
  LengthPrefixDecoderStream,
  lengthPrefixed,
  LengthPrefixEncoder,
  LineDecoder,
  LineDecoderStream,
  LineEncoder,
  lines,
  type SyncDecoder,
  type SyncEncoder,
  TextLineDecoder,
  TruncatedFrameError,
} from "../framing.ts";
import { Connection } from "../connection.ts";
import { connPair } from "../testing.ts";
import { chain, SyncTransformStream } from "../sync_transform.ts";
import { concat, writeUntilWaiting } from "./_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

/**
 * A connection pair whose server end delivers the bytes cut as `how` says:
 * one byte per read, seeded random cuts, or whole.
 */
function pair(how: "one-byte" | "random" | "whole", bufferSize = 1 << 20) {
  return connPair({
    bufferSize,
    ...(how === "one-byte" ? { maxChunkSize: 1 } : {}),
    ...(how === "random" ? { seed: 7 } : {}),
  });
}

const CHUNKINGS = ["one-byte", "random", "whole"] as const;

/** `conn` with its `read()` or `write()` (a system call) replaced by `call`. */
function intercepting<T extends Deno.Conn, K extends "read" | "write">(
  conn: T,
  method: K,
  call: T[K],
): T {
  return new Proxy(conn, {
    get(target, key) {
      if (key === method) return call;
      const value = Reflect.get(target, key);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** `conn`, and how many times its `write()` (a system call) was called. */
function countingWrites<T extends Deno.Conn>(conn: T): {
  conn: T;
  readonly writes: number;
} {
  const counted = { conn, writes: 0 };
  counted.conn = intercepting(conn, "write", (bytes: Uint8Array) => {
    counted.writes++;
    return conn.write(bytes);
  });
  return counted;
}

/** Every message `codec` decodes from `bytes` sent by a peer, then its FIN. */
async function decodeOver<Out>(
  how: (typeof CHUNKINGS)[number],
  codec: Codec<Uint8Array | string, Out>,
  bytes: Uint8Array,
  options: { oversize?: "error" | "discard" } = {},
): Promise<{ messages: Out[]; error?: unknown }> {
  const [server, client] = pair(how);
  await using peer = new Connection(client);
  const messages = framed(server, codec, options);
  const sending = peer.write(bytes).then(() => peer.closeWrite());
  const out: Out[] = [];
  let error: unknown;
  try {
    for await (const message of messages) out.push(message);
  } catch (e) {
    error = e;
  }
  await sending;
  messages.close();
  return { messages: out, error };
}

const copy = (m: Uint8Array) => m.slice();

Deno.test("framed() iterates every codec's messages alike under one-byte, random and whole chunkings", async () => {
  const lineInput = encoder.encode("one\r\n\ntwo\nthree\r\nlast");
  const delimInput = encoder.encode("a\0bb\0\0ccc\0");
  const frames = [
    new Uint8Array(0),
    encoder.encode("x"),
    new Uint8Array(300).fill(7),
  ];
  const prefixInput = concat(frames.flatMap((f) => {
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, f.length);
    return [header, f];
  }));
  for (const how of CHUNKINGS) {
    const l = await decodeOver(how, lines(), lineInput);
    assert.deepEqual(
      l.messages.map(text),
      ["one", "", "two", "three", "last"],
      how,
    );
    const d = await decodeOver(how, delimited({ delimiter: "\0" }), delimInput);
    assert.deepEqual(d.messages.map(text), ["a", "bb", "", "ccc"], how);
    const p = await decodeOver(how, lengthPrefixed(), prefixInput);
    assert.deepEqual(p.messages.map(copy), frames, how);
    const dns = await decodeOver(
      how,
      lengthPrefixed("dns"),
      concat([new Uint8Array([0, 2, 9, 9])]),
    );
    assert.deepEqual(dns.messages.map(copy), [new Uint8Array([9, 9])], how);
  }
});

Deno.test("framed() ends the iteration with FrameTooLargeError after every message before it, or discards and goes on", async () => {
  const input = encoder.encode("ok\n" + "x".repeat(50) + "\nafter\n");
  for (const how of CHUNKINGS) {
    const failed = await decodeOver(how, lines({ maxLineLength: 10 }), input);
    assert.deepEqual(failed.messages.map(text), ["ok"], how);
    assert.ok(failed.error instanceof FrameTooLargeError, how);
    assert.equal(failed.error.limit, 10);
    assert.match(failed.error.message, /10/);
    const skipped = await decodeOver(how, lines({ maxLineLength: 10 }), input, {
      oversize: "discard",
    });
    assert.deepEqual(skipped.messages.map(text), ["ok", "after"], how);
    assert.equal(skipped.error, undefined);
  }
});

Deno.test("framed() reports a frame truncated at EOF with both numbers, after the whole frames", async () => {
  const input = new Uint8Array([0, 0, 0, 1, 5, 0, 0, 0, 9, 1, 2]);
  for (const how of CHUNKINGS) {
    const { messages, error } = await decodeOver(how, lengthPrefixed(), input);
    assert.deepEqual(messages.map(copy), [new Uint8Array([5])], how);
    assert.ok(error instanceof TruncatedFrameError, how);
    assert.equal(error.received, 6);
    assert.equal(error.expected, 13);
  }
  // Cut short while its rest is read straight into it.
  const large = new Uint8Array(4 + 50_000);
  new DataView(large.buffer).setUint32(0, 100_000);
  for (const how of CHUNKINGS) {
    const { messages, error } = await decodeOver(
      how,
      lengthPrefixed({ maxFrameLength: 1 << 20 }),
      concat([input.subarray(0, 5), large]),
    );
    assert.deepEqual(messages.map(copy), [new Uint8Array([5])], how);
    assert.ok(error instanceof TruncatedFrameError, how);
    assert.equal(error.received, 50_004);
    assert.equal(error.expected, 100_004);
  }
});

/** `conn`, the memory each of its reads was given, and the largest read. */
function recordingReads<T extends Deno.Conn>(conn: T): {
  conn: T;
  readonly into: Set<ArrayBufferLike>;
  readonly largest: number;
} {
  const recorded = { conn, into: new Set<ArrayBufferLike>(), largest: 0 };
  recorded.conn = intercepting(conn, "read", (buffer: Uint8Array) => {
    recorded.into.add(buffer.buffer);
    recorded.largest = Math.max(recorded.largest, buffer.length);
    return conn.read(buffer);
  });
  return recorded;
}

Deno.test("framed(): the rest of a large length-prefixed frame is read straight into it from a busy peer, frames arrive byte for byte under every chunking, and a slow peer's frame grows only as it comes", async () => {
  const sizes = [70_000, 17, 5000, 60_000, 0, 65_536, 300_000, 4096, 100];
  const payloads = sizes.map((size, f) =>
    Uint8Array.from({ length: size }, (_, i) => (i * 31 + f * 7) & 255)
  );
  // A 4-byte big-endian length before the payload, and MongoDB's: little
  // endian, counting itself, kept in the frame.
  const layouts = [
    { codec: lengthPrefixed({ maxFrameLength: 1 << 20 }), mongodb: false },
    { codec: lengthPrefixed("mongodb"), mongodb: true },
  ];
  for (const { codec, mongodb } of layouts) {
    const frames = payloads.map((payload) => {
      const frame = new Uint8Array(4 + payload.length);
      const length = mongodb ? frame.length : payload.length;
      new DataView(frame.buffer).setUint32(0, length, mongodb);
      frame.set(payload, 4);
      return frame;
    });
    const expected = mongodb ? frames : payloads;
    for (const how of CHUNKINGS) {
      const what = `${how}, ${mongodb ? "mongodb" : "uint32be"}`;
      const [server, client] = pair(how);
      const reads = recordingReads(server);
      await using peer = new Connection(client);
      const messages = framed(reads.conn, codec);
      const sending = peer.write(concat(frames)).then(() => peer.closeWrite());
      const got: Uint8Array[] = [];
      for await (const message of messages) got.push(message);
      await sending;
      messages.close();
      assert.deepEqual(got, expected, what);
      if (how === "whole") {
        // Larger than a read (64 KiB): the rest came straight into the
        // frame's own memory.
        for (const [f, frame] of got.entries()) {
          if (frame.length > 65536) {
            assert.ok(reads.into.has(frame.buffer), `${what}: frame ${f}`);
          }
        }
        // The same through batches and through the readable view.
        for (const view of ["batch", "readable"] as const) {
          const [server, client] = pair(how);
          await using peer = new Connection(client);
          const sending = peer.write(concat(frames)).then(() =>
            peer.closeWrite()
          );
          const got: Uint8Array[] = [];
          if (view === "batch") {
            const batches = framed(server, codec, { batch: true });
            for await (const batch of batches) got.push(...batch);
            batches.close();
          } else {
            const messages = framed(server, codec);
            for await (const message of messages.readable) got.push(message);
            messages.close();
          }
          await sending;
          assert.deepEqual(got, expected, `${what}, ${view}`);
        }
      } else if (how === "one-byte") {
        // Reads that bring a byte stay small, and a frame's memory is not
        // grown ahead of them: a peer that announces a large frame and
        // stalls holds little more than it sent.
        assert.ok(
          reads.largest <= 4096,
          `${what}: largest read ${reads.largest}`,
        );
      }
    }
  }
});

Deno.test("framed().write() refuses a frame its length field cannot express, and the connection goes on", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lengthPrefixed({ lengthFieldBytes: 1 }));
  await messages.write(new Uint8Array([1]));
  await assert.rejects(messages.write(new Uint8Array(256)), (error) => {
    assert.ok(error instanceof FrameTooLargeError);
    assert.equal(error.length, 256);
    assert.equal(error.limit, 255);
    return true;
  });
  await messages.write(new Uint8Array([2]));
  await messages.closeWrite();
  const reader = peer.reader();
  assert.deepEqual(await reader.readExactly(4), new Uint8Array([1, 1, 1, 2]));
  assert.equal(await reader.read(), null);
  reader.releaseLock();
  messages.close();
});

Deno.test("framed().write() after closeWrite() is a TypeError, and nothing written before is lost", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lines());
  const written = ["a", "b", "c"].map((m) => messages.write(m));
  const closing = messages.closeWrite();
  assert.equal(messages.closeWrite(), closing);
  await assert.rejects(messages.write("late"), {
    name: "TypeError",
    message:
      "Cannot write framed message as the write side is closed: closeWrite() was called",
  });
  await Promise.all([...written, closing]);
  assert.equal(text(await new Response(peer.readable).bytes()), "a\nb\nc\n");
  messages.close();
});

Deno.test("framed() answers pipelined messages in order, across reads, with one write per read's batch", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const counted = countingWrites(await accepted);
  const server = framed(new Connection(counted.conn), lines());
  const serving = (async () => {
    for await (const line of server) server.write(`${text(line)}!`);
    await server.closeWrite();
  })();
  const peer = new Connection(client);
  const rounds = 20;
  const perRound = 50;
  const answers = framed(peer, lines());
  const received: string[] = [];
  const iterator = answers[Symbol.asyncIterator]();
  for (let round = 0; round < rounds; round++) {
    // One write of many lines: the server reads them in one or a few reads.
    const batch = Array.from({ length: perRound }, (_, i) => `${round}.${i}\n`)
      .join("");
    await peer.write(encoder.encode(batch));
    for (let i = 0; i < perRound; i++) {
      const { value } = await iterator.next();
      received.push(text(value!));
    }
  }
  await answers.closeWrite();
  assert.equal((await iterator.next()).done, true);
  await serving;
  assert.deepEqual(
    received,
    Array.from(
      { length: rounds * perRound },
      (_, i) => `${Math.floor(i / perRound)}.${i % perRound}!`,
    ),
  );
  // 1,000 answers, and one write per read of questions: the answers to a
  // read leave together (a read may bring only part of a round's lines).
  assert.ok(
    counted.writes < rounds * 1.5,
    `${counted.writes} writes for ${rounds} rounds`,
  );
  answers.close();
  server.close();
});

Deno.test("framed() stops reading while a peer that never reads leaves the write buffer full", async () => {
  const bufferSize = 4096;
  const [server, client] = connPair({ bufferSize });
  const connection = new Connection(server, { writeBufferSize: 8192 });
  const messages = framed(connection, lines());
  let handled = 0;
  let highest = 0;
  const serving = (async () => {
    for await (const line of messages) {
      handled++;
      // An answer 64 times the question, never awaited: the iterator is
      // what holds back.
      messages.write("y".repeat(line.length * 64)).catch(() => {});
      highest = Math.max(highest, connection.bufferedAmount);
    }
  })().catch(() => {});
  await using peer = new Connection(client);
  // The peer sends 2,000 questions and reads nothing.
  const question = encoder.encode("q".repeat(15) + "\n");
  const sending = (async () => {
    for (let i = 0; i < 2000; i++) await peer.write(question);
  })().catch(() => {});
  // Wait until the server has stopped handling (the pair's buffers and the
  // write buffer are full), then check the bound.
  // The in-memory pair moves bytes without timers: a macrotask turn with
  // no progress means everything that can move has.
  let last = -1;
  while (handled !== last) {
    last = handled;
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  assert.ok(handled < 2000, `handled ${handled}`);
  // Bounded by the write buffer plus one read's answers.
  assert.ok(highest <= 8192 + 64 * 1024 + 1024 * 64, `buffered ${highest}`);
  connection.close();
  peer.close();
  await Promise.all([serving, sending]);
});

/**
 * What each read of `framed(server, lines(), { batch: true, ...options })`
 * brings when the peer has sent `total` bytes of 5-byte lines before the
 * first read: the bytes of each batch, in order.
 */
async function batchBytes(
  total: number,
  options: { maxReadSize?: number } = {},
  connectionOptions: { maxReadSize?: number } = {},
): Promise<number[]> {
  // The pair holds everything: each read takes what fits its buffer.
  const [server, client] = connPair({ bufferSize: total });
  const connection = new Connection(server, connectionOptions);
  const messages = framed(connection, lines(), { ...options, batch: true });
  const peer = new Connection(client);
  await peer.write(encoder.encode("PING\n".repeat(total / 5)));
  await peer.closeWrite();
  const sizes: number[] = [];
  let count = 0;
  for await (const batch of messages) {
    count += batch.length;
    sizes.push(batch.reduce((sum, line) => sum + line.length + 1, 0));
  }
  assert.equal(count, total / 5, "every line, once");
  messages.close();
  peer.close();
  return sizes;
}

Deno.test("framed() reads at most 64 KiB at a time, so that a flood of small messages is decoded a bounded read at a time", async () => {
  // Reads grow fourfold while they fill their buffer: without the bound
  // they would reach the connection's 1 MiB.
  const sizes = await batchBytes(5 << 20);
  const largest = Math.max(...sizes);
  // A line cut by the end of a read is counted with the next one.
  assert.ok(largest <= 65536 + 4, `largest read's lines: ${largest} bytes`);
  assert.ok(largest > 65536 - 5, `largest read's lines: ${largest} bytes`);
});

Deno.test("framed(): maxReadSize sets the largest read, within the connection's own", async () => {
  const raised = Math.max(
    ...await batchBytes(5 << 20, { maxReadSize: 1 << 20 }),
  );
  assert.ok(raised > 65536 * 4, `with 1 MiB: ${raised} bytes`);
  assert.ok(raised <= (1 << 20) + 4, `with 1 MiB: ${raised} bytes`);
  const lowered = Math.max(...await batchBytes(50_000, { maxReadSize: 1000 }));
  assert.ok(lowered <= 1004 && lowered > 995, `with 1000: ${lowered} bytes`);
  // The connection's own bound is kept when it is lower.
  const own = Math.max(
    ...await batchBytes(50_000, { maxReadSize: 1 << 20 }, {
      maxReadSize: 2000,
    }),
  );
  assert.ok(own <= 2004 && own > 1995, `connection's 2000: ${own} bytes`);
  for (const maxReadSize of [0, -1, 1.5, Number.NaN]) {
    assert.throws(
      () => framed(new Connection(connPair()[0]), lines(), { maxReadSize }),
      (error: unknown) =>
        error instanceof RangeError &&
        error.message ===
          `Cannot frame connection as maxReadSize must be a positive integer: current value is ${maxReadSize}`,
    );
  }
});

Deno.test("framed(): break leaves the connection open, and the next loop goes on with the next message", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lines());
  await peer.write(encoder.encode("a\nb\nc\n"));
  await peer.closeWrite();
  for await (const line of messages) {
    assert.equal(text(line), "a");
    await messages.write("got a");
    break;
  }
  const rest: string[] = [];
  for await (const line of messages) rest.push(text(line));
  assert.deepEqual(rest, ["b", "c"]);
  await messages.closeWrite();
  assert.equal(text(await new Response(peer.readable).bytes()), "got a\n");
  messages.close();
});

Deno.test("framed(): mixing the iterator with readable is a TypeError that names both", () => {
  const [server, client] = connPair();
  const iterated = framed(server, lines());
  iterated[Symbol.asyncIterator]();
  assert.throws(() => iterated.readable, {
    name: "TypeError",
    message:
      "Cannot read framed messages with the readable as the async iterator reads them",
  });
  const streamed = framed(client, lines());
  void streamed.readable;
  assert.throws(() => streamed[Symbol.asyncIterator](), {
    name: "TypeError",
    message:
      "Cannot read framed messages with the async iterator as the readable reads them",
  });
  iterated.close();
  streamed.close();
});

Deno.test("framed(): a codec of the user's own gets the fast path through syncDecoder()/syncEncoder() or SyncTransformStreams", async () => {
  // Upper-case words separated by spaces: a codec written from scratch.
  let streamsMade = 0;
  const words: Codec<string, string> = {
    decoder: () => {
      streamsMade++;
      return new TransformStream();
    },
    encoder: () => {
      streamsMade++;
      return new TransformStream();
    },
    syncDecoder: () => {
      let rest = "";
      return {
        transform(chunk, emit) {
          const parts = (rest + decoder.decode(chunk)).split(" ");
          rest = parts.pop()!;
          for (const part of parts) emit(part.toUpperCase());
        },
        flush(emit) {
          if (rest) emit(rest.toUpperCase());
        },
      };
    },
    syncEncoder: () => ({
      transform: (word, emit) => emit(encoder.encode(`${word} `)),
    }),
  };
  // A codec whose streams are SyncTransformStreams: their transformers run.
  const wrapped: Codec<Uint8Array, Uint8Array> = {
    decoder: () => new LineDecoderStream(),
    encoder: () =>
      new SyncTransformStream<Uint8Array, Uint8Array>({
        transform: (m, emit) => emit(concat([m, encoder.encode("\n")])),
      }),
  };
  for (const how of CHUNKINGS) {
    const [server, client] = pair(how);
    await using peer = new Connection(client);
    const messages = framed(server, words);
    await peer.write(encoder.encode("ab cd ef"));
    await peer.closeWrite();
    const got = await Array.fromAsync(messages);
    assert.deepEqual(got, ["AB", "CD", "EF"], how);
    await messages.write("ok");
    await messages.closeWrite();
    assert.equal(text(await new Response(peer.readable).bytes()), "ok ");
    messages.close();
    const { messages: lineMessages } = await decodeOver(
      how,
      wrapped as Codec<Uint8Array | string, Uint8Array>,
      encoder.encode("x\ny\n"),
    );
    assert.deepEqual(lineMessages.map(text), ["x", "y"]);
  }
  assert.equal(streamsMade, 0);
});

Deno.test("framed() still pipes a codec whose streams are plain TransformStreams", async () => {
  const codec: Codec<Uint8Array, Uint8Array> = {
    decoder: () =>
      new LengthPrefixDecoderStream().readable.constructor === ReadableStream
        ? new TransformStream<Uint8Array, Uint8Array>({
          transform: (chunk, c) => c.enqueue(chunk.slice()),
        })
        : new TransformStream(),
    encoder: () => new TransformStream<Uint8Array, Uint8Array>(),
  };
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, codec);
  await peer.write(encoder.encode("raw"));
  await peer.closeWrite();
  assert.equal(text(concat(await Array.fromAsync(messages))), "raw");
  await messages.write(encoder.encode("back"));
  await messages.closeWrite();
  assert.equal(text(await new Response(peer.readable).bytes()), "back");
  messages.close();
});

Deno.test("framed() with batch: true yields each read's messages as one array", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lines(), { batch: true });
  await peer.write(encoder.encode("a\nb\n"));
  const iterator = messages[Symbol.asyncIterator]();
  const first = await iterator.next();
  assert.deepEqual(first.value!.map(text), ["a", "b"]);
  await peer.write(encoder.encode("c\n"));
  await peer.closeWrite();
  const second = await iterator.next();
  assert.deepEqual(second.value!.map(text), ["c"]);
  assert.equal((await iterator.next()).done, true);
  messages.close();
});

Deno.test("framed() rejects the iteration with the network's error when the peer resets", async () => {
  const [server, client] = connPair();
  const messages = framed(server, lines());
  const peer = new Connection(client);
  await peer.write(encoder.encode("a\n"));
  const iterator = messages[Symbol.asyncIterator]();
  assert.equal(text((await iterator.next()).value!), "a");
  const next = iterator.next();
  messages.close(new Deno.errors.ConnectionReset("reset by the test"));
  await assert.rejects(next, Deno.errors.ConnectionReset);
  peer.close();
});

/** Records of `size` bytes; with `lend`, a `SyncDecoder` that lends them. */
function records(size: number, lend: boolean): SyncDecoder<Uint8Array> {
  let record = new Uint8Array(size);
  let filled = 0;
  const done = (emit: (record: Uint8Array) => void) => {
    emit(record);
    record = new Uint8Array(size);
    filled = 0;
  };
  const decoder: SyncDecoder<Uint8Array> = {
    transform(chunk, emit) {
      for (let at = 0; at < chunk.length;) {
        const take = Math.min(size - filled, chunk.length - at);
        record.set(chunk.subarray(at, at + take), filled);
        filled += take;
        at += take;
        if (filled === size) done(emit);
      }
    },
  };
  if (lend) {
    decoder.reserve = (room) =>
      filled === 0
        ? undefined
        : record.subarray(filled, Math.min(size, filled + room));
    decoder.commit = (n, emit) => {
      filled += n;
      if (filled === size) done(emit);
    };
  }
  return decoder;
}

Deno.test("framed(): a decoder of the user's own that lends its message under way (SyncDecoder.reserve) has the rest read straight into it", async () => {
  const size = 100_000;
  const input = Uint8Array.from({ length: size * 3 }, (_, i) => i % 251);
  for (const lend of [true, false]) {
    const [server, client] = pair("whole");
    const reads = recordingReads(server);
    await using peer = new Connection(client);
    const messages = framed(reads.conn, {
      decoder: () => new TransformStream(),
      encoder: () => new TransformStream(),
      syncDecoder: () => records(size, lend),
    });
    const sending = peer.write(input).then(() => peer.closeWrite());
    const got: Uint8Array[] = [];
    for await (const record of messages) got.push(record);
    await sending;
    messages.close();
    assert.deepEqual(
      got,
      [0, 1, 2].map((r) => input.subarray(r * size, (r + 1) * size)),
    );
    const direct = got.filter((record) => reads.into.has(record.buffer));
    // Without reserve(), every byte is read elsewhere and copied.
    assert.equal(direct.length, lend ? 3 : 0, `lend: ${lend}`);
  }
});

Deno.test("framed(): a reset while the rest of a large frame is read straight into it rejects the iteration with the network's error", async () => {
  const [server, client] = connPair({ bufferSize: 1 << 20 });
  const sent = new Uint8Array(4 + 150_000);
  new DataView(sent.buffer).setUint32(0, 300_000);
  // The read made once every byte sent has been taken: it waits.
  let taken = 0;
  const { promise: waiting, resolve } = Promise.withResolvers<Uint8Array>();
  const conn = intercepting(server, "read", async (buffer: Uint8Array) => {
    if (taken === sent.length) resolve(buffer);
    const n = await server.read(buffer);
    taken += n ?? 0;
    return n;
  });
  const messages = framed(conn, lengthPrefixed({ maxFrameLength: 1 << 20 }));
  const peer = new Connection(client);
  await peer.write(sent);
  const next = messages[Symbol.asyncIterator]().next();
  const into = await waiting;
  // Into the frame's own memory, which holds what came before.
  assert.ok(into.byteOffset >= 150_000, `read at ${into.byteOffset}`);
  assert.ok(into.length >= 16384, `read of ${into.length}`);
  messages.close(new Deno.errors.ConnectionReset("reset by the test"));
  await assert.rejects(next, Deno.errors.ConnectionReset);
  peer.close();
});

Deno.test("encodeInto() writes exactly what transform() emits, refuses what it refuses, and says when it does not fit", () => {
  const cases: [string, SyncEncoder<Uint8Array | string>][] = [
    ["lines", new LineEncoder()],
    ["CRLF lines", new LineEncoder({ newline: "\r\n" })],
    ["uint32be", new LengthPrefixEncoder()],
    [
      "1-byte little-endian, header kept",
      new LengthPrefixEncoder({ lengthFieldBytes: 1, keepHeader: true }),
    ],
    [
      "2-byte little-endian, length includes header",
      new LengthPrefixEncoder({
        lengthFieldBytes: 2,
        littleEndian: true,
        lengthIncludesHeader: true,
      }),
    ],
    [
      "8-byte, adjusted, at most 100 bytes",
      new LengthPrefixEncoder({
        lengthFieldBytes: 8,
        lengthAdjustment: -2,
        maxEncodedLength: 100,
      }),
    ],
    ["dns", new LengthPrefixEncoder("dns")],
  ];
  const messages: (string | Uint8Array)[] = [
    "",
    "+PONG",
    "héllo wörld ✓ 😀",
    "a".repeat(64),
    "b".repeat(65),
    "x".repeat(300),
    new Uint8Array([1, 2, 3]),
    new Uint8Array(200).fill(7),
  ];
  for (const [name, encoder] of cases) {
    for (const message of messages) {
      const emitted: Uint8Array[] = [];
      let error: unknown;
      try {
        encoder.transform(message, (bytes) => emitted.push(bytes));
      } catch (e) {
        error = e;
      }
      // Newlines all around: a search past the message would find one.
      const buffer = new Uint8Array(1024).fill(0x0a);
      if (error !== undefined) {
        assert.throws(() => encoder.encodeInto!(message, buffer, 3), {
          message: (error as Error).message,
        });
        continue;
      }
      const end = encoder.encodeInto!(message, buffer, 3);
      assert.deepEqual(
        buffer.subarray(3, end),
        concat(emitted),
        `${name}: ${String(message).slice(0, 10)}`,
      );
      assert.equal(buffer[2], 0x0a);
      // One byte short of room: -1, never a partial frame.
      const tight = new Uint8Array(3 + concat(emitted).length - 1);
      assert.equal(encoder.encodeInto!(message, tight, 3), -1, name);
    }
  }
  const lines = new LineEncoder({ maxEncodedLength: 4 });
  assert.throws(
    () => lines.encodeInto("12345", new Uint8Array(64), 0),
    FrameTooLargeError,
  );
  assert.throws(() => lines.encodeInto("a\nb", new Uint8Array(64), 0), {
    name: "TypeError",
    message:
      'Cannot encode line as it must not contain "\\n": found at index 1',
  });
  assert.throws(
    () =>
      new LineEncoder().encodeInto(
        "x".repeat(80) + "\n",
        new Uint8Array(200),
        0,
      ),
    {
      message:
        'Cannot encode line as it must not contain "\\n": found at index 80',
    },
  );
});

Deno.test("framed().write() sends messages larger than the write buffer whole, in order with small ones", async () => {
  const [server, client] = connPair();
  const connection = new Connection(server, { writeBufferSize: 1024 });
  await using peer = new Connection(client);
  const messages = framed(connection, lengthPrefixed());
  const sizes = [10, 5000, 3, 1023, 1024, 70000, 1];
  const sent = sizes.map((size, i) => new Uint8Array(size).fill(i));
  const reading = Array.fromAsync(
    framed(peer, lengthPrefixed()),
    (m) => m.slice(),
  );
  for (const frame of sent) messages.write(frame);
  await messages.closeWrite();
  await peer.closeWrite();
  assert.deepEqual(await reading, sent);
  messages.close();
});

Deno.test("framed(): a lone request's answer leaves at once, while a pipelined read's answers wait for the loop to come back", async () => {
  const [server, client] = connPair();
  const counted = countingWrites(server);
  const messages = framed(new Connection(counted.conn), lines());
  await using peer = new Connection(client);
  const iterator = messages[Symbol.asyncIterator]();
  // One request: its answer goes to the socket as it is written, so a
  // handler that then waits on something slow holds nothing back.
  await peer.write(encoder.encode("one\n"));
  await iterator.next();
  await messages.write("1");
  assert.equal(counted.writes, 1);
  // Two pipelined requests: the answers leave together, when the loop
  // asks for more.
  await peer.write(encoder.encode("two\nthree\n"));
  await iterator.next();
  await messages.write("2");
  await iterator.next();
  await messages.write("3");
  assert.equal(counted.writes, 1);
  await peer.closeWrite();
  assert.equal((await iterator.next()).done, true);
  assert.equal(counted.writes, 2);
  await messages.closeWrite();
  assert.equal(text(await new Response(peer.readable).bytes()), "1\n2\n3\n");
  messages.close();
});

Deno.test("the decoders lend themselves to the engine's reused buffer: chain(decoder, answer) served is right under every chunking", async () => {
  for (
    const decoder of [
      new LineDecoder(),
      new LengthPrefixDecoder(),
      new TextLineDecoder(),
    ]
  ) {
    assert.equal(decoder.input, "borrow");
  }
  const input = encoder.encode(
    Array.from({ length: 500 }, (_, i) => `line ${i} ${"x".repeat(i % 70)}\n`)
      .join(""),
  );
  const want = Array.from(
    { length: 500 },
    (_, i) => `${`line ${i} ${"x".repeat(i % 70)}`.length}\n`,
  ).join("");
  for (const how of CHUNKINGS) {
    const [server, client] = pair(how);
    const service = chain<Uint8Array, Uint8Array, Uint8Array>(
      new LineDecoder(),
      {
        input: "borrow",
        transform: (line, emit) => emit(encoder.encode(`${line.length}\n`)),
      },
    );
    assert.equal(service.input, "borrow");
    const serving = new Connection(server).serve(
      new SyncTransformStream(service),
    );
    await using peer = new Connection(client);
    await peer.write(input);
    await peer.closeWrite();
    assert.equal(text(await new Response(peer.readable).bytes()), want, how);
    await serving;
  }
});

Deno.test("framed(): replies held back for a pipelined read go before a write made on the connection itself, and before its closeWrite()", async () => {
  const [server, client] = connPair();
  const counted = countingWrites(server);
  const connection = new Connection(counted.conn);
  const messages = framed(connection, lines());
  await using peer = new Connection(client);
  const iterator = messages[Symbol.asyncIterator]();
  await peer.write(encoder.encode("a\nb\nc\n"));
  await iterator.next();
  await messages.write("A");
  // Held back with the rest of the read's answers, but a write made on
  // the connection directly comes after it, not before.
  await connection.write(encoder.encode("direct\n"));
  await iterator.next();
  await messages.write("B");
  await iterator.next();
  await messages.write("C");
  // The connection's own closeWrite() sends what is held first.
  await connection.closeWrite();
  assert.equal(
    text(await new Response(peer.readable).bytes()),
    "A\ndirect\nB\nC\n",
  );
  messages.close();
});

Deno.test("framed(): replies of 4 to 64 KiB, whose buffer segments are reused once sent, arrive byte for byte, pipelined or not", async () => {
  // Sizes and fillings differ from one reply to the next, so a reused
  // segment's old bytes would show.
  const sizes = Array.from(
    { length: 120 },
    (_, i) => 4000 + (i * 7919) % 61000,
  );
  const reply = (i: number) => {
    const bytes = new Uint8Array(sizes[i]!);
    for (let j = 0; j < bytes.length; j++) bytes[j] = (i * 31 + j) & 0xff;
    return bytes;
  };
  for (const pipelined of [false, true]) {
    const [server, client] = connPair({ bufferSize: 1 << 22 });
    const messages = framed(new Connection(server), lengthPrefixed());
    const serving = (async () => {
      for await (const request of messages) {
        await messages.write(
          reply(new DataView(request.buffer, request.byteOffset).getUint32(0)),
        );
      }
      await messages.closeWrite();
    })();
    const peer = framed(new Connection(client), lengthPrefixed());
    const request = (i: number) => {
      const bytes = new Uint8Array(4);
      new DataView(bytes.buffer).setUint32(0, i);
      return bytes;
    };
    const received: Uint8Array[] = [];
    if (pipelined) {
      for (let i = 0; i < sizes.length; i++) await peer.write(request(i));
      await peer.closeWrite();
      for await (const frame of peer) received.push(frame);
    } else {
      const iterator = peer[Symbol.asyncIterator]();
      for (let i = 0; i < sizes.length; i++) {
        await peer.write(request(i));
        received.push((await iterator.next()).value!);
      }
      await peer.closeWrite();
      assert.equal((await iterator.next()).done, true);
    }
    await serving;
    assert.equal(received.length, sizes.length);
    received.forEach((frame, i) =>
      assert.deepEqual(frame, reply(i), `reply ${i}, pipelined: ${pipelined}`)
    );
    messages.close();
    peer.close();
  }
});

Deno.test("framed(): a pipelined read's answers, more than a buffer segment and larger than one, leave whole and in order", async () => {
  const [server, client] = connPair();
  const messages = framed(new Connection(server), lines(), { batch: true });
  await using peer = new Connection(client);
  const requests = Array.from({ length: 300 }, (_, i) => `${i}`);
  await peer.write(encoder.encode(requests.map((r) => `${r}\n`).join("")));
  await peer.closeWrite();
  const received = new Response(peer.readable).bytes();
  const want: string[] = [];
  for await (const batch of messages) {
    for (const line of batch) {
      const n = Number(text(line));
      // Every 50th answer is larger than a buffer segment.
      const answer = `${n}:${"x".repeat(n % 50 === 0 ? 10000 : n % 30)}`;
      want.push(answer);
      await messages.write(answer);
    }
  }
  await messages.closeWrite();
  const got = text(await received);
  assert.equal(got, want.map((w) => `${w}\n`).join(""));
  assert.equal(want.length, 300);
  messages.close();
});

Deno.test("framed(): an answer refused by the encoder while answers are held is refused alone, and the others still leave in order", async () => {
  const [server, client] = connPair();
  const messages = framed(
    new Connection(server),
    lines({ maxEncodedLength: 4 }),
  );
  await using peer = new Connection(client);
  await peer.write(encoder.encode("1\n2\n3\n"));
  await peer.closeWrite();
  const iterator = messages[Symbol.asyncIterator]();
  await iterator.next();
  await messages.write("one");
  await iterator.next();
  await assert.rejects(messages.write("too long"), FrameTooLargeError);
  await iterator.next();
  await messages.write("tri");
  assert.equal((await iterator.next()).done, true);
  await messages.closeWrite();
  assert.equal(text(await new Response(peer.readable).bytes()), "one\ntri\n");
  messages.close();
});

/** framed(lines()) over in-memory bytes, with its readable. */
function linesReadable(input: string, options?: { maxLineLength?: number }) {
  return framed(
    {
      readable: ReadableStream.from([encoder.encode(input)]),
      writable: new WritableStream(),
    },
    lines(options),
  ).readable;
}

Deno.test("framed().readable iterated as a stream is: locked meanwhile, cancelled by break unless preventCancel, messages already queued in it first", async () => {
  // Locked while iterated, as a stream's iteration holds its reader.
  const readable = linesReadable("a\nb\nc\nd\n");
  const seen: string[] = [];
  for await (const line of readable) {
    assert.equal(readable.locked, true);
    assert.throws(() => readable.getReader(), TypeError);
    seen.push(text(line));
  }
  assert.deepEqual(seen, ["a", "b", "c", "d"]);
  assert.equal(readable.locked, false);

  // A reader that read one message left the rest of the read queued in the
  // stream: the loop after it gets them first, in order.
  const mixed = linesReadable("1\n2\n3\n");
  const reader = mixed.getReader();
  assert.equal(text((await reader.read()).value!), "1");
  reader.releaseLock();
  assert.deepEqual(await Array.fromAsync(mixed, text), ["2", "3"]);

  // preventCancel: a second loop goes on where the first left off.
  const kept = linesReadable("x\ny\nz\n");
  for await (const line of kept.values({ preventCancel: true })) {
    assert.equal(text(line), "x");
    break;
  }
  assert.equal(kept.locked, false);
  assert.deepEqual(await Array.fromAsync(kept, text), ["y", "z"]);

  // break without it cancels the stream: nothing more comes.
  const cancelled = linesReadable("p\nq\n");
  for await (const line of cancelled) {
    assert.equal(text(line), "p");
    break;
  }
  assert.deepEqual(await Array.fromAsync(cancelled), []);
});

Deno.test("framed().readable iterated as a stream ends with the decoder's error after every message before it, and stays errored", async () => {
  const readable = linesReadable("ok\n" + "x".repeat(20) + "\n", {
    maxLineLength: 8,
  });
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const line of readable) seen.push(text(line));
  }, FrameTooLargeError);
  assert.deepEqual(seen, ["ok"]);
  assert.equal(readable.locked, false);
  await assert.rejects(readable.getReader().read(), FrameTooLargeError);
});

Deno.test("framed().readable: a loop started while a released reader's read is still being served gets every message in order", async () => {
  // The second read's bytes arrive only once `send()` is called, so the
  // released reader's read of them is still under way when the loop starts.
  let send!: () => void;
  const asked = new Promise<void>((resolve) => send = resolve);
  let pulls = 0;
  let pulling!: () => void;
  const underWay = new Promise<void>((resolve) => pulling = resolve);
  const readable = framed(
    {
      readable: new ReadableStream<Uint8Array>({
        async pull(controller) {
          if (pulls++ === 0) return controller.enqueue(encoder.encode("0\n"));
          pulling();
          await asked;
          controller.enqueue(encoder.encode("1\n2\n3\n"));
          controller.close();
        },
      }, { highWaterMark: 0 }),
      writable: new WritableStream(),
    },
    lines(),
  ).readable;
  const reader = readable.getReader();
  assert.equal(text((await reader.read()).value!), "0");
  const pending = reader.read();
  await underWay; // the reader's read is reading the bytes
  reader.releaseLock();
  await assert.rejects(pending, TypeError);
  const loop = Array.fromAsync(readable, text);
  send();
  assert.deepEqual(await loop, ["1", "2", "3"]);
});

Deno.test("framed().readable: a reader gets every message in order across reads, then done, and its closed settles as the stream's would", async () => {
  const [server, client] = connPair({ seed: 3 });
  await using peer = new Connection(client);
  const readable = framed(server, lines()).readable;
  const reader = readable.getReader();
  const sending = (async () => {
    for (let i = 0; i < 50; i++) await peer.write(encoder.encode(`${i}\n`));
    await peer.closeWrite();
  })();
  const seen: string[] = [];
  for (let r; !(r = await reader.read()).done;) seen.push(text(r.value));
  await sending;
  assert.deepEqual(seen, Array.from({ length: 50 }, (_, i) => `${i}`));
  assert.deepEqual(await reader.read(), { done: true, value: undefined });
  await reader.closed;
  reader.releaseLock();
  assert.deepEqual(await Array.fromAsync(readable), []);

  // A decoder's error: the messages before it, then the error, for good.
  const failing = linesReadable("ok\n" + "x".repeat(20) + "\n", {
    maxLineLength: 8,
  }).getReader();
  assert.equal(text((await failing.read()).value!), "ok");
  await assert.rejects(failing.read(), FrameTooLargeError);
  await assert.rejects(failing.closed, FrameTooLargeError);
  await assert.rejects(failing.read(), FrameTooLargeError);
});

Deno.test("framed().writable: a writer's writes, a pipe's after it and close() leave in order, whole", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lines());
  const writer = messages.writable.getWriter();
  assert.equal(writer.desiredSize, 1);
  await writer.write("a");
  void writer.write("b");
  await writer.ready;
  writer.releaseLock();
  await assert.rejects(writer.write("late"), TypeError);
  // A pipe takes the stream's own way, after what the writer wrote.
  await ReadableStream.from(["c", "d"]).pipeTo(messages.writable, {
    preventClose: true,
  });
  const again = messages.writable.getWriter();
  await again.write("e");
  const closing = again.close();
  await assert.rejects(again.write("after close"), TypeError);
  await closing;
  assert.equal(
    text(await new Response(peer.readable).bytes()),
    "a\nb\nc\nd\ne\n",
  );
  messages.close();
});

Deno.test("framed().writable: a writer's desiredSize and ready say when a write waits for room, and the bytes stay bounded", async () => {
  const [server, client] = connPair({ bufferSize: 1024 });
  const connection = new Connection(server, { writeBufferSize: 4096 });
  const messages = framed(connection, lines());
  const writer = messages.writable.getWriter();
  const line = "z".repeat(1023);
  const { written, waiting } = await writeUntilWaiting(writer, line);
  assert.ok(waiting, `all ${written} writes taken`);
  assert.equal(writer.desiredSize, 0);
  assert.ok(
    connection.bufferedAmount <= 4096 + 1024,
    `${connection.bufferedAmount}`,
  );
  let ready = false;
  const readied = writer.ready.then(() => void (ready = true));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(ready, false);
  // The peer reads: the write, ready and desiredSize follow.
  await using peer = new Connection(client);
  const reading = new Response(peer.readable).bytes();
  await waiting;
  await readied;
  assert.equal(writer.desiredSize, 1);
  await writer.close();
  assert.equal((await reading).length, written * 1024);
  connection.close();
});

Deno.test("framed().writable: a writer's refused message errors the stream with that error and closes the connection", async () => {
  const [server, client] = connPair();
  await using peer = new Connection(client);
  const messages = framed(server, lines({ maxEncodedLength: 4 }));
  const writer = messages.writable.getWriter();
  await writer.write("four");
  const refused = writer.write("fives");
  await assert.rejects(refused, FrameTooLargeError);
  await assert.rejects(writer.closed, FrameTooLargeError);
  assert.equal(writer.desiredSize, null);
  await assert.rejects(writer.write("more"), FrameTooLargeError);
  // What was accepted before went first; the connection ends after it.
  const received = await new Response(peer.readable).bytes().catch(() => null);
  assert.ok(received === null || text(received) === "four\n");
  messages.close();
});

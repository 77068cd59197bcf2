import assert from "node:assert/strict";
import {
  type Connection,
  type ConnectionInfo,
  type ConnectionStats,
  type Handler,
  serve,
  type ServeOptions,
} from "../server.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";
import { ConnStreams } from "../conn_streams.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const testdata = new URL("./testdata/", import.meta.url);

type Closed = ConnectionInfo & ConnectionStats;

/** Collects `onClose` events; `next()` waits for the next one. */
function closeLog(): {
  onClose: (info: Closed) => void;
  next: () => Promise<Closed>;
  all: Closed[];
} {
  const all: Closed[] = [];
  const waiting: ((info: Closed) => void)[] = [];
  let taken = 0;
  return {
    all,
    onClose(info) {
      all.push(info);
      const resolve = waiting.shift();
      if (resolve) resolve(all[taken++]!);
    },
    next() {
      if (taken < all.length) return Promise.resolve(all[taken++]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

function tcp(addr: Deno.Addr): { hostname: string; port: number } {
  assert.equal(addr.transport, "tcp");
  const { hostname, port } = addr as Deno.NetAddr;
  return { hostname, port };
}

async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    parts.push(buffer.slice(0, n));
    total += n;
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Sends `data` while reading, half-closes, and returns all it got back. */
async function exchange(
  conn: Deno.Conn,
  data: Uint8Array,
): Promise<Uint8Array> {
  const [, answer] = await Promise.all([
    writeAll(conn, data).then(() => conn.closeWrite()),
    readAll(conn),
  ]);
  return answer;
}

/** Writes a message and reads exactly as many bytes back. */
async function roundTrip(conn: Deno.Conn, text: string): Promise<string> {
  const bytes = encoder.encode(text);
  await writeAll(conn, bytes);
  const answer = new Uint8Array(bytes.length);
  for (let got = 0; got < answer.length;) {
    const n = await conn.read(answer.subarray(got));
    if (n === null) throw new Error(`EOF after ${got} bytes`);
    got += n;
  }
  return decoder.decode(answer);
}

/** Deterministic bytes: mixed case text and binary. */
function pattern(size: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed;
  for (let i = 0; i < size; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

function upper(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
}

/** Resolves with what the connection ends with: EOF or an error. */
async function endOf(conn: Deno.Conn): Promise<"eof" | unknown> {
  const buffer = new Uint8Array(1024);
  try {
    while (await conn.read(buffer) !== null) { /* drain */ }
    return "eof";
  } catch (error) {
    return error;
  }
}

/**
 * Whether a new client is turned away: refused, or (while the listener is
 * going away) accepted by the kernel and reset or ended without a byte.
 */
async function notServed(
  addr: { hostname: string; port: number },
): Promise<boolean> {
  let conn: Deno.Conn;
  try {
    conn = await Deno.connect(addr);
  } catch (error) {
    // A handshake the kernel completed before the listener's socket was
    // released may be reset while connecting.
    return error instanceof Deno.errors.ConnectionRefused ||
      error instanceof Deno.errors.ConnectionReset;
  }
  try {
    await writeAll(conn, encoder.encode("anyone?"));
    const ended = await endOf(conn);
    return ended === "eof" || ended instanceof Deno.errors.ConnectionReset;
  } catch (error) {
    return error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe;
  } finally {
    conn.close();
  }
}

Deno.test("serve() upper-cases bytes and answers in full after closeWrite()", async () => {
  const log = closeLog();
  await using server = serve(
    { port: 0, onClose: log.onClose },
    () => new UpperCaseStream(),
  );
  const data = pattern(300_000);
  using conn = await Deno.connect(tcp(server.addr));
  const answer = await exchange(conn, data);
  assert.deepEqual(answer, upper(data));
  const closed = await log.next();
  assert.equal(closed.bytesIn, data.length);
  assert.equal(closed.bytesOut, data.length);
  assert.equal(closed.error, undefined);
  assert.ok(closed.duration >= 0);
  assert.equal(closed.id, 1);
  assert.equal(tcp(closed.remoteAddr).port, tcp(conn.localAddr).port);
});

Deno.test("serve() echoes bytes unchanged", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  assert.equal(tcp(server.addr).hostname, "127.0.0.1");
  const data = pattern(200_000, 7);
  using conn = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(conn, "hello"), "hello");
  assert.deepEqual(await exchange(conn, data), data);
});

Deno.test("serve() pipes a service of the user's own, flush() included", async () => {
  // Counts lines, answers each with its length, and the total in flush().
  let lineStarts = 0;
  await using server = serve({ port: 0 }, () => {
    let count = 0;
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        for (const byte of chunk) if (byte === 0x0a) count++;
        lineStarts++;
        controller.enqueue(chunk);
      },
      flush(controller) {
        controller.enqueue(encoder.encode(`total ${count}\n`));
      },
    });
  });
  using conn = await Deno.connect(tcp(server.addr));
  const text = "a\n".repeat(50_000);
  const answer = decoder.decode(await exchange(conn, encoder.encode(text)));
  assert.equal(answer, `${text}total 50000\n`);
  assert.ok(lineStarts > 0);
});

Deno.test("serve() serves 250 concurrent clients, each its own answer", async () => {
  const clients = 250;
  const log = closeLog();
  await using server = serve(
    { port: 0, onClose: log.onClose },
    () => new UpperCaseStream(),
  );
  const conns = await Promise.all(
    Array.from({ length: clients }, () => Deno.connect(tcp(server.addr))),
  );
  try {
    // All connected before any finishes: they are served at once.
    const answers = await Promise.all(conns.map(async (conn, i) => {
      const data = pattern(20_000 + i, i + 1);
      const answer = await exchange(conn, data);
      assert.deepEqual(answer, upper(data), `client ${i}`);
      return answer.length;
    }));
    assert.equal(answers.length, clients);
  } finally {
    for (const conn of conns) conn.close();
  }
  for (let i = 0; i < clients; i++) await log.next();
  assert.equal(log.all.filter((info) => info.error !== undefined).length, 0);
  assert.equal(new Set(log.all.map((info) => info.id)).size, clients);
});

Deno.test("serve() sends a multi-megabyte flush() answer after the client's FIN", async () => {
  const size = 8 * 1024 * 1024;
  await using server = serve({ port: 0 }, () => {
    let received = 0;
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk) {
        received += chunk.length;
      },
      flush(controller) {
        // All the answer is owed after the FIN, in pieces.
        const answer = pattern(size, received);
        for (let i = 0; i < size; i += 100_000) {
          controller.enqueue(answer.subarray(i, i + 100_000));
        }
      },
    });
  });
  using conn = await Deno.connect(tcp(server.addr));
  const answer = await exchange(conn, encoder.encode("go"));
  assert.equal(answer.length, size);
  assert.deepEqual(answer, pattern(size, 2));
});

Deno.test("serve() returns every byte of a multi-megabyte upper-case answer after a half-close", async () => {
  const data = pattern(6 * 1024 * 1024, 3);
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  using conn = await Deno.connect(tcp(server.addr));
  // Send all and half-close before reading a byte: the server must keep the
  // answer coming after our FIN.
  const sending = writeAll(conn, data).then(() => conn.closeWrite());
  const answer = await readAll(conn);
  await sending;
  assert.equal(answer.length, data.length);
  assert.deepEqual(answer, upper(data));
});

Deno.test("serve() isolates clients that reset mid-stream", async () => {
  const mib = new Uint8Array(1024 * 1024).fill(0x61);
  const cases: [string, (connection: Connection) => ReturnType<Handler>][] = [
    // Deno reports a reset that arrives during a read as an end of input, so
    // only a server busy writing is sure to see it: these two write more
    // than the socket buffers hold.
    ["an amplifying service", () =>
      new TransformStream({
        transform(_chunk, controller) {
          for (let i = 0; i < 64; i++) controller.enqueue(mib);
        },
      })],
    ["a handler of its own", async (connection) => {
      const writer = connection.writable.getWriter();
      while (true) await writer.write(mib);
    }],
    // The fast path of the built-in services, reading or writing.
    ["the echo service", () => new EchoStream()],
  ];
  for (const [name, handler] of cases) {
    const log = closeLog();
    const errors: unknown[] = [];
    await using server = serve({
      port: 0,
      onClose: log.onClose,
      onError: (error) => errors.push(error),
    }, handler);
    using good = await Deno.connect(tcp(server.addr));
    await writeAll(good, encoder.encode("hi"));
    assert.ok((await good.read(new Uint8Array(1))) === 1, name);

    const bad = await Deno.connect(tcp(server.addr));
    await writeAll(bad, mib);
    await bad.read(new Uint8Array(1));
    // Closing with unread data makes the kernel send a reset.
    bad.close();
    const closed = await log.next();
    if (name !== "the echo service") {
      assert.ok(
        closed.error instanceof Deno.errors.ConnectionReset ||
          closed.error instanceof Deno.errors.BrokenPipe,
        `${name}: ${Deno.inspect(closed)}`,
      );
    } else {
      assert.ok(
        closed.error === undefined ||
          closed.error instanceof Deno.errors.ConnectionReset ||
          closed.error instanceof Deno.errors.BrokenPipe,
        `${name}: ${Deno.inspect(closed)}`,
      );
    }
    assert.ok(closed.bytesIn + closed.bytesOut > 0, name);
    // A network error is not the program's fault.
    assert.deepEqual(errors, [], name);
    // The other client and the listener carry on.
    assert.ok((await good.read(new Uint8Array(1))) === 1, name);
    using late = await Deno.connect(tcp(server.addr));
    await writeAll(late, encoder.encode("hi"));
    assert.ok((await late.read(new Uint8Array(1))) === 1, name);
  }
});

Deno.test("serve() closes a connection idle for idleTimeout, and no sooner", async () => {
  const idleTimeout = 150;
  const log = closeLog();
  await using server = serve(
    { port: 0, idleTimeout, onClose: log.onClose },
    () => new EchoStream(),
  );
  using idle = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(idle, "x"), "x");
  const ended = await endOf(idle);
  assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
  const closed = await log.next();
  assert.ok(closed.error instanceof Deno.errors.TimedOut, `${closed.error}`);
  assert.ok(closed.duration >= idleTimeout, `closed after ${closed.duration}`);
  assert.equal(closed.bytesIn, 1);
  // The server still serves.
  using next = await Deno.connect(tcp(server.addr));
  assert.deepEqual(await exchange(next, pattern(10)), pattern(10));
  assert.equal((await log.next()).error, undefined);
});

Deno.test("serve() refuses clients beyond maxConnections without disturbing the others", async () => {
  const log = closeLog();
  const refused = Promise.withResolvers<[unknown, ConnectionInfo?]>();
  await using server = serve({
    port: 0,
    maxConnections: 2,
    onClose: log.onClose,
    onError: (error, info) => refused.resolve([error, info]),
  }, () => new UpperCaseStream());
  using a = await Deno.connect(tcp(server.addr));
  const b = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(a, "a"), "A");
  assert.equal(await roundTrip(b, "b"), "B");

  using c = await Deno.connect(tcp(server.addr));
  const ended = await endOf(c);
  assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
  const [error, info] = await refused.promise;
  assert.ok(error instanceof RangeError);
  assert.match(error.message, /maxConnections/);
  assert.equal(tcp(info!.remoteAddr).port, tcp(c.localAddr).port);

  // The open ones are untouched; when one leaves, a new client gets in.
  assert.equal(await roundTrip(a, "still"), "STILL");
  assert.deepEqual(decoder.decode(await exchange(b, encoder.encode("x"))), "X");
  b.close();
  await log.next();
  using d = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(d, "d"), "D");
});

Deno.test("shutdown() stops accepting and lets open connections finish", async () => {
  const log = closeLog();
  const server = serve(
    { port: 0, gracePeriod: 60_000, onClose: log.onClose },
    () => new UpperCaseStream(),
  );
  using conn = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(conn, "one"), "ONE");
  let finished = false;
  const stopping = server.shutdown().then(() => finished = true);
  assert.equal(server.shutdown(), server.finished);
  assert.equal(await notServed(tcp(server.addr)), true);
  // The open connection is served to its end.
  assert.equal(await roundTrip(conn, "two"), "TWO");
  assert.equal(finished, false);
  assert.deepEqual(
    await exchange(conn, encoder.encode("end")),
    encoder.encode("END"),
  );
  await stopping;
  assert.equal(log.all.length, 1);
  assert.equal(log.all[0]!.error, undefined);
});

Deno.test("shutdown() closes connections still open after the grace period", async () => {
  const log = closeLog();
  const aborted = Promise.withResolvers<unknown>();
  const server = serve(
    { port: 0, gracePeriod: 50, onClose: log.onClose },
    (connection) => {
      connection.signal.addEventListener(
        "abort",
        () => aborted.resolve(connection.signal.reason),
      );
      // Echo by hand until the client leaves, which it does not.
      return connection.readable.pipeTo(connection.writable);
    },
  );
  using conn = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(conn, "held"), "held");
  await server.shutdown();
  // Every connection is closed once finished settles.
  assert.equal(log.all.length, 1);
  assert.ok(log.all[0]!.error instanceof Deno.errors.Interrupted);
  assert.ok(await aborted.promise instanceof Deno.errors.Interrupted);
  const ended = await endOf(conn);
  assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
});

Deno.test("serve() shuts down when its signal aborts, and with await using", async () => {
  const controller = new AbortController();
  const server = serve(
    { port: 0, signal: controller.signal },
    () => new EchoStream(),
  );
  controller.abort();
  await server.finished;
  await assert.rejects(
    Deno.connect(tcp(server.addr)),
    Deno.errors.ConnectionRefused,
  );

  let addr: { hostname: string; port: number };
  {
    await using disposed = serve({ port: 0 }, () => new EchoStream());
    addr = tcp(disposed.addr);
  }
  await assert.rejects(Deno.connect(addr), Deno.errors.ConnectionRefused);

  const aborted = AbortSignal.abort();
  const never = serve({ port: 0, signal: aborted }, () => new EchoStream());
  await never.finished;
});

Deno.test("serve() reports a handler's error to onError and serves the next client", async () => {
  const errors: [unknown, ConnectionInfo | undefined][] = [];
  const log = closeLog();
  let calls = 0;
  await using server = serve({
    port: 0,
    onError: (error, info) => errors.push([error, info]),
    onClose: log.onClose,
  }, () => {
    calls++;
    if (calls === 1) throw new Error("handler failed");
    if (calls === 2) {
      return new TransformStream({
        transform() {
          throw new Error("service failed");
        },
      });
    }
    return new EchoStream();
  });
  for (const message of ["handler failed", "service failed"]) {
    using conn = await Deno.connect(tcp(server.addr));
    await writeAll(conn, encoder.encode("x"));
    const ended = await endOf(conn);
    assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
    const closed = await log.next();
    assert.equal((closed.error as Error).message, message);
  }
  assert.deepEqual(errors.map(([error]) => (error as Error).message), [
    "handler failed",
    "service failed",
  ]);
  assert.equal(errors[0]![1]!.id, 1);
  using conn = await Deno.connect(tcp(server.addr));
  assert.deepEqual(await exchange(conn, pattern(99)), pattern(99));
});

Deno.test("serve() hands the connection to a handler of its own", async () => {
  const log = closeLog();
  let seen: Connection | undefined;
  await using server = serve(
    { port: 0, onClose: log.onClose },
    async (connection) => {
      seen = connection;
      const request = await new Response(connection.readable).text();
      const writer = connection.writable.getWriter();
      await writer.write(encoder.encode(`${request.length} bytes`));
      // Returning leaves the writable open: the server closes it.
      writer.releaseLock();
    },
  );
  using conn = await Deno.connect(tcp(server.addr));
  const answer = await exchange(conn, encoder.encode("hello"));
  assert.equal(decoder.decode(answer), "5 bytes");
  const closed = await log.next();
  assert.equal(closed.error, undefined);
  assert.equal(closed.bytesIn, 5);
  assert.equal(closed.bytesOut, 7);
  assert.equal(seen!.bytesRead, 5);
  assert.equal(seen!.bytesWritten, 7);
  assert.equal(seen!.signal.aborted, false);
  assert.equal(tcp(seen!.localAddr).port, tcp(server.addr).port);
});

Deno.test("serve() rejects bad options with a RangeError or TypeError", () => {
  const handler = () => new EchoStream();
  const bad: [ServeOptions, ErrorConstructor][] = [
    [{ port: -1 }, RangeError],
    [{ port: 70000 }, RangeError],
    [{ port: 1.5 }, RangeError],
    [{ port: 0, maxConnections: 0 }, RangeError],
    [{ port: 0, idleTimeout: -1 }, RangeError],
    [{ port: 0, gracePeriod: Number.NaN }, RangeError],
    [{ port: 0, cert: "x" }, TypeError],
    [{ path: "/tmp/x.sock", cert: "x", key: "y" }, TypeError],
  ];
  for (const [options, type] of bad) {
    assert.throws(() => serve(options, handler), type, JSON.stringify(options));
  }
  assert.throws(
    () => serve({ port: 0 }, "nope" as unknown as () => void),
    TypeError,
  );
});

Deno.test("serve() throws AddrInUse for a port in use", () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  assert.throws(
    () => serve({ port: listener.addr.port }, () => new EchoStream()),
    Deno.errors.AddrInUse,
  );
});

Deno.test("serve() listens on IPv6 loopback", async () => {
  await using server = serve(
    { hostname: "::1", port: 0 },
    () => new UpperCaseStream(),
  );
  assert.equal(tcp(server.addr).hostname, "::1");
  using conn = await Deno.connect(tcp(server.addr));
  assert.equal(
    decoder.decode(await exchange(conn, encoder.encode("v6"))),
    "V6",
  );
});

Deno.test("serve() listens on a Unix socket and removes it when stopped", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  try {
    const server = serve({ path }, () => new UpperCaseStream());
    assert.deepEqual(server.addr, { transport: "unix", path });
    {
      using conn = await Deno.connect({ transport: "unix", path });
      const answer = await exchange(conn, encoder.encode("unix"));
      assert.equal(decoder.decode(answer), "UNIX");
    }
    await server.shutdown();
    await assert.rejects(Deno.lstat(path), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve() serves TLS with cert and key, half-close included", async () => {
  const [cert, key, ca] = await Promise.all([
    "tls_localhost_cert.pem",
    "tls_localhost_key.pem",
    "tls_ca.pem",
  ].map((name) => Deno.readTextFile(new URL(name, testdata))));
  await using server = serve(
    { port: 0, cert, key },
    () => new UpperCaseStream(),
  );
  using conn = await Deno.connectTls({
    hostname: "localhost",
    port: tcp(server.addr).port,
    caCerts: [ca!],
  });
  const data = pattern(1024 * 1024, 5);
  assert.deepEqual(await exchange(conn, data), upper(data));
});

Deno.test("serve() interoperates with Python's socket module", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const script = `
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
data = b"hello from python, " * 50000
s.sendall(data)
s.shutdown(socket.SHUT_WR)
chunks = []
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    chunks.append(chunk)
s.close()
answer = b"".join(chunks)
assert answer == data.upper(), (len(answer), len(data))
print(len(answer))
`;
  const output = await new Deno.Command("python3", {
    args: ["-c", script, String(tcp(server.addr).port)],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.equal(decoder.decode(output.stdout).trim(), String(19 * 50000));
});

Deno.test("a ConnStreams client gets the whole answer from serve()", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const client = new ConnStreams(await Deno.connect(tcp(server.addr)));
  const data = pattern(2 * 1024 * 1024, 9);
  const [, answer] = await Promise.all([
    ReadableStream.from([data.subarray(0, 1000), data.subarray(1000)])
      .pipeTo(client.writable),
    new Response(client.readable).bytes(),
  ]);
  await client.closed;
  assert.deepEqual(answer, data);
});

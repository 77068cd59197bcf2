import assert from "node:assert/strict";
import type { Connection } from "../connection.ts";
import {
  type ConnectionInfo,
  type ConnectionStats,
  type Handler,
  serve,
  serveConnection,
  type ServeOptions,
} from "../server.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";
import { ConnStreams } from "../conn_streams.ts";
import { testHandler } from "../testing.ts";
import { endOf, pattern, readAll } from "./_util.ts";

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

/** What UpperCaseStream makes of `bytes`: ASCII a–z upper-cased. */
function upper(bytes: Uint8Array): Uint8Array {
  return bytes.map((b) => b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
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

Deno.test("serve()'s handler pipes a service of the user's own, flush() included (over connPair, random reads)", async () => {
  // Counts lines, answers each with its length, and the total in flush().
  // The socket is not the point: the in-memory pair runs the same handler
  // as serve() does, with reads cut at random places.
  let lineStarts = 0;
  await using client = testHandler(() => {
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
  }, { seed: 3 });
  const text = "a\n".repeat(50_000);
  const sending = client.write(encoder.encode(text)).then(() =>
    client.closeWrite()
  );
  const answer = await new Response(client.readable).text();
  await sending;
  assert.equal(answer, `${text}total 50000\n`);
  assert.ok(lineStarts > 1);
  const served = await client.served;
  assert.equal(served.bytesIn, text.length);
  assert.equal(served.error, undefined);
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
    // Deno's close() sends a FIN before the kernel's reset, so a server
    // that is reading sees an end of input; only a server busy writing is
    // sure to see the reset: these two write more than the socket buffers
    // hold.
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
    // Closing with unread data makes the kernel send a reset (after the
    // FIN Deno's close() sends).
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

Deno.test("serve() with connectionPolicy refuse refuses clients beyond maxConnections without disturbing the others", async () => {
  const log = closeLog();
  const refused = Promise.withResolvers<[unknown, ConnectionInfo?]>();
  await using server = serve({
    port: 0,
    maxConnections: 2,
    connectionPolicy: "refuse",
    onClose: log.onClose,
    // The refusal, not the one line that says the limit is reached.
    onError: (error, info) => info && refused.resolve([error, info]),
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

Deno.test("shutdown() stops accepting and lets a handler of its own finish", async () => {
  const log = closeLog();
  const server = serve(
    { port: 0, gracePeriod: 60_000, onClose: log.onClose },
    // Upper-cases by hand: the server cannot see its messages, so it is
    // busy until it returns.
    (connection) =>
      connection.readable.pipeThrough(new UpperCaseStream()).pipeTo(
        connection.writable,
      ),
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

Deno.test("serve() interoperates with a Node.js net client that half-closes", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const script = `
const net = require("node:net");
const data = Buffer.from("hello from node, ".repeat(50000));
const socket = net.connect(Number(process.argv[1]), "127.0.0.1", () => {
  socket.end(data); // sends, then FIN: the answer still comes
});
const chunks = [];
socket.on("data", (chunk) => chunks.push(chunk));
socket.on("end", () => {
  const answer = Buffer.concat(chunks);
  if (!answer.equals(Buffer.from(data.toString().toUpperCase()))) {
    console.error("bad answer", answer.length, data.length);
    process.exit(1);
  }
  console.log(answer.length);
});
socket.on("error", (error) => { console.error(error); process.exit(1); });
`;
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("node", {
      args: ["-e", script, String(tcp(server.addr).port)],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    console.log("skipped: node is not installed");
    return;
  }
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.equal(decoder.decode(output.stdout).trim(), String(17 * 50000));
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

// ---------------------------------------------------------------------------
// 0.2: limits, staged shutdown, allow/deny, stats, serveConnection, options

/** Collects `onError` reports; `next()` waits for the next one. */
function errorLog(): {
  onError: (error: unknown, info?: ConnectionInfo) => void;
  next: () => Promise<[unknown, ConnectionInfo | undefined]>;
  all: [unknown, ConnectionInfo | undefined][];
} {
  const all: [unknown, ConnectionInfo | undefined][] = [];
  const waiting: ((entry: [unknown, ConnectionInfo | undefined]) => void)[] =
    [];
  let taken = 0;
  return {
    all,
    onError(error, info) {
      all.push([error, info]);
      const resolve = waiting.shift();
      if (resolve) resolve(all[taken++]!);
    },
    next() {
      if (taken < all.length) return Promise.resolve(all[taken++]!);
      return new Promise((resolve) => waiting.push(resolve));
    },
  };
}

Deno.test("serve() queues clients beyond maxConnections by default and serves them when a slot frees", async () => {
  const log = closeLog();
  const errors = errorLog();
  await using server = serve({
    port: 0,
    maxConnections: 2,
    onClose: log.onClose,
    onError: errors.onError,
  }, () => new UpperCaseStream());
  using a = await Deno.connect(tcp(server.addr));
  const b = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(a, "a"), "A");
  assert.equal(await roundTrip(b, "b"), "B");

  // The kernel completes the handshake; the server does not accept it yet.
  using c = await Deno.connect(tcp(server.addr));
  await writeAll(c, encoder.encode("waiting"));
  assert.equal(server.stats.accepted, 2);
  assert.equal(server.stats.open, 2);

  b.close();
  await log.next();
  // A slot is free: c is accepted and answered.
  const answer = new Uint8Array(7);
  for (let got = 0; got < 7;) got += (await c.read(answer.subarray(got)))!;
  assert.equal(decoder.decode(answer), "WAITING");
  assert.equal(await roundTrip(a, "still"), "STILL");
  // One line when the limit was reached, none when it was reached again
  // soon after.
  assert.equal(errors.all.length, 1);
  assert.match(
    String(errors.all[0]![0]),
    /^RangeError: Cannot serve more clients at once as maxConnections is reached: current count is 2, limit is 2; newcomers wait in the listen backlog until a client closes \(connectionPolicy "queue"\)/,
  );
  assert.equal(server.stats.refused, 0);
  assert.equal(server.stats.accepted, 3);
});

Deno.test("serve() rate-limits refusal reports and says how many it held back", async () => {
  const errors = errorLog();
  await using server = serve({
    port: 0,
    maxConnections: 1,
    connectionPolicy: "refuse",
    onError: errors.onError,
  }, () => new EchoStream());
  using held = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(held, "x"), "x");
  const extra = 20;
  for (let i = 0; i < extra; i++) {
    using conn = await Deno.connect(tcp(server.addr));
    const ended = await endOf(conn);
    assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
  }
  // Five one by one, then one for the rest at the end of the window.
  const reported: string[] = [];
  let heldBack = 0;
  // First the one line that says the limit is reached.
  const [reached, none] = await errors.next();
  assert.match(String(reached), /maxConnections is reached: .*"refuse"/);
  assert.equal(none, undefined);
  while (reported.length + heldBack < extra) {
    const [error] = await errors.next();
    assert.ok(error instanceof RangeError);
    const match = error.message.match(/the last of (\d+) like it in 1000 ms/);
    if (match) heldBack += Number(match[1]);
    else reported.push(error.message);
  }
  assert.equal(reported.length, 5);
  assert.equal(heldBack, extra - 5);
  assert.equal(server.stats.refused, extra);
  assert.match(
    reported[0]!,
    /^Cannot accept connection as maxConnections is reached: current count is 1, limit is 1$/,
  );
});

Deno.test("shutdown() closes an idle client at once while a busy one finishes byte-exact", async () => {
  const log = closeLog();
  const size = 16 * 1024 * 1024;
  const server = serve({
    port: 0,
    gracePeriod: 30_000,
    onClose: log.onClose,
  }, () => {
    let received = 0;
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        received += chunk.length;
        controller.enqueue(upper(chunk));
      },
      flush(controller) {
        // A long answer after the client's FIN: more than sockets buffer.
        const answer = pattern(size, received);
        for (let i = 0; i < size; i += 65536) {
          controller.enqueue(answer.subarray(i, i + 65536));
        }
      },
    });
  });
  using idle = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(idle, "idle"), "IDLE");
  using busy = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(busy, "abc"), "ABC");
  await busy.closeWrite(); // the answer is owed now; we do not read it yet

  const start = performance.now();
  const stopping = server.shutdown();
  const idleEnd = await endOf(idle);
  const idleMs = performance.now() - start;
  assert.ok(
    idleEnd === "eof" || idleEnd instanceof Deno.errors.ConnectionReset,
  );
  assert.ok(idleMs < 1000, `idle client closed after ${idleMs} ms`);
  const idleClosed = await log.next();
  assert.ok(idleClosed.error instanceof Deno.errors.Interrupted);
  assert.match((idleClosed.error as Error).message, /idle/);

  // The busy one gets all of its answer.
  const answer = await readAll(busy);
  const busyMs = performance.now() - start;
  assert.equal(answer.length, size);
  assert.deepEqual(answer, pattern(size, 3));
  await stopping;
  const busyClosed = await log.next();
  assert.equal(busyClosed.error, undefined);
  assert.equal(busyClosed.bytesOut, 3 + size);
  console.log(
    `staged shutdown: idle client closed after ${idleMs.toFixed(0)} ms, ` +
      `busy client's 16 MiB answer done after ${busyMs.toFixed(0)} ms`,
  );
});

Deno.test("shutdown() tells handlers through context.shutdown so they stop at a message boundary", async () => {
  const log = closeLog();
  const server = serve(
    { port: 0, gracePeriod: 30_000, onClose: log.onClose },
    async (connection, { shutdown }) => {
      const reader = connection.reader();
      // Waiting for a request: on shutdown, leave at once.
      const stop = () => connection.close();
      while (true) {
        shutdown.addEventListener("abort", stop);
        const line = await reader.readUntil("\n");
        shutdown.removeEventListener("abort", stop);
        if (line === null) break;
        // Busy with a request: finish it, then leave if shutting down.
        await new Promise((resolve) => setTimeout(resolve, 200));
        await connection.write(
          encoder.encode(`done ${decoder.decode(line)}\n`),
        );
        if (shutdown.aborted) break;
      }
    },
  );
  using waiting = await Deno.connect(tcp(server.addr));
  using working = await Deno.connect(tcp(server.addr));
  await writeAll(waiting, encoder.encode("first\n"));
  assert.equal(decoder.decode(await readLine(waiting)), "done first");
  await writeAll(working, encoder.encode("job\n"));
  await new Promise((resolve) => setTimeout(resolve, 50)); // the job starts
  const start = performance.now();
  const stopping = server.shutdown();
  assert.equal(await endOf(waiting), "eof");
  const waitingMs = performance.now() - start;
  // The job in hand is answered in full, then the connection ends.
  assert.equal(decoder.decode(await readAll(working)), "done job\n");
  await stopping;
  assert.ok(waitingMs < 1000, `${waitingMs}`);
  assert.equal(log.all.length, 2);
  // The one the handler closed says so; the other ended cleanly.
  const errors = log.all.map((info) => info.error);
  assert.ok(errors.includes(undefined), Deno.inspect(errors));
  assert.ok(
    errors.some((error) => error instanceof Deno.errors.Interrupted),
    Deno.inspect(errors),
  );
});

/** Reads one line, without its LF. */
async function readLine(conn: Deno.Conn): Promise<Uint8Array> {
  const bytes: number[] = [];
  const one = new Uint8Array(1);
  while (await conn.read(one) === 1) {
    if (one[0] === 0x0a) break;
    bytes.push(one[0]!);
  }
  return Uint8Array.from(bytes);
}

Deno.test("serve() applies allow and deny to IPv4 and IPv6 clients", async () => {
  const cases: [string, ServeOptions, boolean][] = [
    ["127.0.0.1", { allow: ["127.0.0.1"] }, true],
    ["127.0.0.1", { allow: ["127.0.0.0/8"] }, true],
    ["127.0.0.1", { deny: ["127.0.0.0/8"] }, false],
    ["127.0.0.1", { allow: ["10.0.0.0/8", "::1"] }, false],
    ["127.0.0.1", { allow: ["127.0.0.0/8"], deny: ["127.0.0.1"] }, false],
    ["127.0.0.1", { allow: ["::ffff:127.0.0.0/104"] }, true],
    ["::1", { allow: ["::1"] }, true],
    ["::1", { allow: ["::/0"], deny: ["127.0.0.1"] }, true],
    ["::1", { deny: ["::1/128"] }, false],
    ["::1", { allow: ["127.0.0.1", "2001:db8::/32"] }, false],
  ];
  for (const [hostname, options, served] of cases) {
    const name = `${hostname} ${JSON.stringify(options)}`;
    const log = closeLog();
    const errors = errorLog();
    await using server = serve({
      hostname,
      port: 0,
      ...options,
      onClose: log.onClose,
      onError: errors.onError,
    }, () => new UpperCaseStream());
    using conn = await Deno.connect(tcp(server.addr));
    if (served) {
      assert.equal(
        decoder.decode(await exchange(conn, encoder.encode("ok"))),
        "OK",
        name,
      );
      await log.next();
    } else {
      const ended = await endOf(conn);
      assert.ok(
        ended === "eof" || ended instanceof Deno.errors.ConnectionReset,
        name,
      );
      const [error, info] = await errors.next();
      assert.ok(error instanceof Deno.errors.PermissionDenied, name);
      assert.match(
        error.message,
        /^Cannot serve client as its address is (in deny|not in allow): current address is /,
      );
      assert.equal(tcp(info!.remoteAddr).port, tcp(conn.localAddr).port);
      assert.equal(log.all.length, 0, name);
    }
    assert.equal(server.stats.refused, served ? 0 : 1, name);
  }
});

Deno.test("server.stats counts accepted, refused, open and closed connections and their bytes", async () => {
  const log = closeLog();
  await using server = serve({
    port: 0,
    maxConnections: 2,
    connectionPolicy: "refuse",
    onClose: log.onClose,
    onError: () => {},
  }, () => new EchoStream());
  assert.deepEqual(server.stats, {
    open: 0,
    accepted: 0,
    refused: 0,
    closed: 0,
    bytesIn: 0,
    bytesOut: 0,
  });
  using open = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(open, "12345"), "12345");
  for (let i = 0; i < 3; i++) {
    using conn = await Deno.connect(tcp(server.addr));
    assert.deepEqual(await exchange(conn, pattern(10, i)), pattern(10, i));
    await log.next();
  }
  // Fill the second slot, then one more is refused.
  using second = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(second, "ab"), "ab");
  {
    using refused = await Deno.connect(tcp(server.addr));
    await endOf(refused);
  }
  assert.deepEqual(server.stats, {
    open: 2,
    accepted: 6,
    refused: 1,
    closed: 3,
    // Open connections' bytes count too.
    bytesIn: 37,
    bytesOut: 37,
  });
});

Deno.test("serve() rejects every bad option value with a message that names it", () => {
  const handler = () => new EchoStream();
  const cases: [unknown, new (...args: never[]) => Error, RegExp][] = [
    [
      { port: -1 },
      RangeError,
      /^Cannot serve as port must be an integer from 0 to 65535: current value is -1$/,
    ],
    [{ port: 70000 }, RangeError, /port/],
    [{ port: 1.5 }, RangeError, /port/],
    [
      { port: "80" },
      TypeError,
      /^Cannot serve as port must be a number: current type is string$/,
    ],
    [{ port: 0, hostname: 1 }, TypeError, /hostname must be a string/],
    [
      { port: 0, maxConnections: 0 },
      RangeError,
      /maxConnections must be an integer from 1 to 2147483647, or Infinity: current value is 0/,
    ],
    [{ port: 0, maxConnections: 2.5 }, RangeError, /maxConnections/],
    [{ port: 0, maxConnections: Number.NaN }, RangeError, /maxConnections/],
    [
      { port: 0, connectionPolicy: "drop" },
      TypeError,
      /^Cannot serve as connectionPolicy must be "queue" or "refuse": current value is 'drop'$/,
    ],
    [{ port: 0, idleTimeout: -1 }, RangeError, /idleTimeout/],
    [
      { port: 0, idleTimeout: 2 ** 31 },
      RangeError,
      /^Cannot serve as idleTimeout must be a number of milliseconds from 0 to 2147483647, or Infinity: current value is 2147483648$/,
    ],
    [{ port: 0, idleTimeout: Number.NaN }, RangeError, /idleTimeout/],
    [
      { port: 0, idleTimeout: "5s" },
      TypeError,
      /idleTimeout must be a number: current type is string/,
    ],
    [
      { port: 0, gracePeriod: 2 ** 31 },
      RangeError,
      /gracePeriod must be a number of milliseconds from 0 to 2147483647, or Infinity: current value is 2147483648/,
    ],
    [{ port: 0, gracePeriod: -Infinity }, RangeError, /gracePeriod/],
    [{ port: 0, gracePeriod: Number.NaN }, RangeError, /gracePeriod/],
    [
      { port: 0, proxyHeaderTimeout: 0 },
      RangeError,
      /proxyHeaderTimeout must be a number of milliseconds from 1 to 2147483647: current value is 0/,
    ],
    [
      { port: 0, proxyHeaderTimeout: Infinity },
      RangeError,
      /proxyHeaderTimeout/,
    ],
    [
      { port: 0, proxyProtocol: "yes" },
      TypeError,
      /proxyProtocol must be a boolean: current type is string/,
    ],
    [
      { port: 0, trustedProxies: ["10.0.0.0/8"] },
      TypeError,
      /trustedProxies needs proxyProtocol/,
    ],
    [
      { port: 0, proxyProtocol: true, trustedProxies: ["10.0.0.0/8", "x"] },
      SyntaxError,
      /trustedProxies\[1\] must be an IP address or CIDR range/,
    ],
    [
      { port: 0, allow: ["10.0.0.0/33"] },
      RangeError,
      /allow\[0\] must be an integer from 0 to 32/,
    ],
    [
      { port: 0, deny: ["example.com"] },
      SyntaxError,
      /^Cannot serve as deny\[0\] must be an IP address or CIDR range .*: current value is 'example.com'$/,
    ],
    [{ port: 0, allow: "10.0.0.1" }, TypeError, /allow must be an array/],
    [{ port: 0, reusePort: 1 }, TypeError, /reusePort must be a boolean/],
    // This test runs without --unstable-net.
    [
      { port: 0, reusePort: true },
      TypeError,
      /^Cannot listen with reusePort as Deno needs the --unstable-net flag for it/,
    ],
    [
      { port: 0, cert: "x" },
      TypeError,
      /cert and key must be given together: current key is missing/,
    ],
    [{ path: "/tmp/x.sock", cert: "x", key: "y" }, TypeError, /Unix socket/],
    [
      { port: 0, cert: "x", key: "y", proxyProtocol: true },
      TypeError,
      /TLS with proxyProtocol/,
    ],
    [
      { path: "/tmp/x.sock", allow: ["::1"] },
      TypeError,
      /^Cannot serve on a Unix socket with allow as its clients have no IP address/,
    ],
    [
      { port: 0, onClose: "log" },
      TypeError,
      /onClose must be a function: current type is string/,
    ],
    [{ port: 0, signal: "stop" }, TypeError, /signal must be an AbortSignal/],
    [null, TypeError, /options must be an object: current type is null/],
  ];
  for (const [options, type, message] of cases) {
    assert.throws(
      () => serve(options as ServeOptions, handler),
      (error: Error) => error instanceof type && message.test(error.message),
      Deno.inspect(options),
    );
  }
  assert.throws(
    () => serve({ port: 0 }, "nope" as unknown as () => void),
    /the handler must be a function: current type is string/,
  );
});

Deno.test("serve() with reusePort lets two servers share a port under --unstable-net", async () => {
  const server = new URL("../server.ts", import.meta.url).href;
  const script = `
import { serve } from "${server}";
import { EchoStream } from "${new URL("../services.ts", import.meta.url).href}";
await using a = serve({ port: 0, reusePort: true }, () => new EchoStream());
await using b = serve({ port: a.addr.port, reusePort: true }, () => new EchoStream());
using conn = await Deno.connect({ hostname: "127.0.0.1", port: b.addr.port });
await conn.write(new Uint8Array([1]));
console.log(a.addr.port === b.addr.port, await conn.read(new Uint8Array(1)));
`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--unstable-net", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  assert.equal(decoder.decode(output.stdout).trim(), "true 1");
});

Deno.test("serve() says when the open-file limit is below maxConnections, at start-up and when accept runs out", async () => {
  const server = new URL("../server.ts", import.meta.url).href;
  // Under --allow-all (deno eval), as only that may read /proc/self.
  const script = `
import { serve } from "${server}";
const errors = [];
const s = serve({ port: 0, onError: (e) => errors.push(e) }, () => {});
await s.shutdown();
const t = serve({ port: 0, maxConnections: 50, onError: (e) => errors.push(e) }, () => {});
await t.shutdown();
for (const e of errors) console.log(e.name + ": " + e.message);
// Beyond the limit: accept fails with EMFILE, reported with what to do.
const held = [];
const reported = Promise.withResolvers();
const u = serve({ port: 0, onError: (e) => /^Cannot accept/.test(e.message) && reported.resolve(e) }, async (c) => {
  held.push(c);
  await c.closed.catch(() => {});
});
const clients = [];
const port = u.addr.port;
try {
  while (true) {
    const conn = await Promise.race([
      Deno.connect({ hostname: "127.0.0.1", port }),
      reported.promise.then(() => null),
    ]);
    if (conn === null) break;
    clients.push(conn);
  }
} catch { /* the client side ran out first */ }
let timer;
const e = await Promise.race([reported.promise, new Promise((r) => timer = setTimeout(r, 3000, null))]);
clearTimeout(timer);
console.log(e ? e.message : "nothing reported");
for (const c of clients) c.close();
for (const c of held) c.close();
await u.shutdown();
`;
  // `ulimit -n` in sh lowers both the soft and the hard limit.
  const output = await new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n 256 && exec "$0" eval "$1"`,
      Deno.execPath(),
      script,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, decoder.decode(output.stderr));
  const lines = decoder.decode(output.stdout).trim().split("\n");
  assert.equal(lines.length, 2, lines.join("\n"));
  // Once for the default 1024, not for 50.
  assert.match(
    lines[0]!,
    /^RangeError: Cannot serve maxConnections clients at once as the open-file limit is too low: current limit is 256 files with \d+ in use, maxConnections is 1024; raise the limit \(ulimit -n \d+\) or lower maxConnections$/,
  );
  assert.match(
    lines[1]!,
    /^Cannot accept connection as the process has reached its open-file limit: current open connections are \d+, maxConnections is 1024; raise the limit \(ulimit -n\) or lower maxConnections; clients wait in the listen backlog meanwhile/,
  );
});

Deno.test("a client reads end-of-file after partial output when a service fails (no reset in Deno)", async () => {
  const errors = errorLog();
  await using server = serve({ port: 0, onError: errors.onError }, () => {
    let chunks = 0;
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        if (++chunks === 2) throw new Error("service failed");
        controller.enqueue(chunk);
      },
    });
  });
  using conn = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(conn, "part"), "part");
  await writeAll(conn, encoder.encode("more"));
  const ended = await endOf(conn);
  // What Deno gives a client: a plain end of stream, as after success.
  assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
  const [error] = await errors.next();
  assert.equal((error as Error).message, "service failed");
});

Deno.test("a handler that returns nothing: closed at once if it touched nothing, else alive until closed", async () => {
  const log = closeLog();
  await using server = serve(
    { port: 0, onClose: log.onClose },
    (connection) => {
      if (connection.id === 1) return;
      // Echo in the background, after the handler has returned.
      connection.readable.pipeTo(connection.writable).catch(() => {});
    },
  );
  {
    using untouched = await Deno.connect(tcp(server.addr));
    assert.equal(await endOf(untouched), "eof");
    assert.equal((await log.next()).error, undefined);
  }
  using echoed = await Deno.connect(tcp(server.addr));
  assert.deepEqual(await exchange(echoed, pattern(5000)), pattern(5000));
  const closed = await log.next();
  assert.equal(closed.error, undefined);
  assert.equal(closed.bytesOut, 5000);
});

Deno.test("serveConnection() serves one connection as serve() does: hooks, errors, staged shutdown", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const events: string[] = [];
  const controller = new AbortController();
  const accepted = listener.accept();
  using client = await Deno.connect(tcp(listener.addr));
  const served = serveConnection(await accepted, () => new UpperCaseStream(), {
    id: 42,
    signal: controller.signal,
    onConnect: (info) => events.push(`connect ${info.id}`),
    onClose: (info) => events.push(`close ${info.id} ${info.bytesIn}`),
  });
  assert.equal(await roundTrip(client, "hi"), "HI");
  // Aborting the signal is a shutdown: an idle service is closed at once.
  controller.abort();
  const summary = await served;
  assert.equal(await endOf(client), "eof");
  assert.equal(summary.id, 42);
  assert.equal(summary.bytesIn, 2);
  assert.ok(summary.error instanceof Deno.errors.Interrupted);
  assert.deepEqual(events, ["connect 42", "close 42 2"]);

  // A failing handler: resolved, never rejected; the error goes to onError.
  const errors = errorLog();
  const next = listener.accept();
  using other = await Deno.connect(tcp(listener.addr));
  const failed = await serveConnection(await next, () => {
    throw new TypeError("broken handler");
  }, { onError: errors.onError });
  assert.equal((failed.error as Error).message, "broken handler");
  assert.equal(((await errors.next())[0] as Error).message, "broken handler");
  assert.equal(await endOf(other), "eof");
  assert.throws(
    () => serveConnection(other, () => {}, { idleTimeout: 2 ** 31 }),
    RangeError,
  );
});

Deno.test("a closed connection frees its slot at once, even while its handler is still finishing", async () => {
  const gate = Promise.withResolvers<void>();
  const log = closeLog();
  await using server = serve({
    port: 0,
    maxConnections: 1,
    onClose: log.onClose,
  }, async (connection) => {
    await connection.readable.pipeTo(connection.writable);
    if (connection.id === 1) await gate.promise; // bookkeeping after the end
  });
  {
    using first = await Deno.connect(tcp(server.addr));
    assert.deepEqual(await exchange(first, pattern(10)), pattern(10));
  }
  // The first handler has not returned, but its connection is closed.
  using second = await Deno.connect(tcp(server.addr));
  assert.deepEqual(await exchange(second, pattern(20)), pattern(20));
  assert.equal((await log.next()).id, 2);
  assert.equal(server.stats.open, 1); // the first, until its handler returns
  gate.resolve();
  assert.equal((await log.next()).id, 1);
});

// ---------------------------------------------------------------------------
// The first hour (issue 19): safe defaults and errors that name things

/**
 * This process's open sockets (Linux), counted by `ls` as Deno lets only
 * `--allow-all` read `/proc/self`; sockets only, as running `ls` opens
 * pipes for a moment.
 */
async function openSockets(): Promise<number> {
  const output = await new Deno.Command("ls", {
    args: ["-l", `/proc/${Deno.pid}/fd`],
    stdout: "piped",
    stderr: "null", // a descriptor closing while ls looks
  }).output();
  return decoder.decode(output.stdout).split("\n")
    .filter((line) => line.includes("socket:")).length;
}

/** Waits until `ready()` holds, looking again every 20 ms. */
async function until(
  ready: () => boolean | Promise<boolean>,
  what: string,
): Promise<void> {
  const start = performance.now();
  while (!(await ready())) {
    if (performance.now() - start > 10_000) {
      throw new Error(`Gave up waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

Deno.test("serve() frees 500 silent TLS clients at the handshake deadline while it serves a real one", async () => {
  const [cert, key, ca] = await Promise.all([
    "tls_localhost_cert.pem",
    "tls_localhost_key.pem",
    "tls_ca.pem",
  ].map((name) => Deno.readTextFile(new URL(name, testdata))));
  const errors = errorLog();
  await using server = serve(
    { port: 0, cert, key, handshakeTimeout: 300, onError: errors.onError },
    () => new UpperCaseStream(),
  );
  const { port } = server.addr; // a NetAddr, no cast
  const baseline = await openSockets();

  // 500 clients that connect and never send a ClientHello.
  const silent: Deno.TcpConn[] = [];
  try {
    for (let i = 0; i < 500; i++) {
      silent.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    // A real client is served meanwhile.
    using real = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [ca!],
    });
    assert.equal(
      decoder.decode(await exchange(real, encoder.encode("hi"))),
      "HI",
    );

    // At the deadline the server closes each silent client for real: each
    // reads end-of-file, which it never did while Deno's handshake task
    // held the socket.
    for (const conn of silent) assert.equal(await endOf(conn), "eof");
  } finally {
    for (const conn of silent) conn.close();
  }
  await until(() => server.stats.refused === 500, "500 refusals");
  // Our client sockets are closed, and so is every socket of the server's.
  await until(
    async () => await openSockets() <= baseline,
    "the sockets to be freed",
  );
  assert.equal(server.stats.open, 0);
  assert.equal(server.stats.closed, 1);
  const [first] = await errors.next();
  assert.ok(first instanceof Deno.errors.TimedOut);
  assert.match(
    first.message,
    /^Cannot serve TLS client as its handshake did not finish within handshakeTimeout: current timeout is 300 ms, client is 127\.0\.0\.1:\d+$/,
  );
});

Deno.test("serve() refuses a bad handshakeTimeout and exports its default", async () => {
  const { DEFAULT_HANDSHAKE_TIMEOUT } = await import("../server.ts");
  assert.equal(DEFAULT_HANDSHAKE_TIMEOUT, 10_000);
  assert.throws(
    () => serve({ port: 0, handshakeTimeout: 0 }, () => new EchoStream()),
    {
      name: "RangeError",
      message:
        "Cannot serve as handshakeTimeout must be a number of milliseconds from 1 to 2147483647, or Infinity: current value is 0",
    },
  );
  assert.throws(
    () =>
      serve(
        { port: 0, handshakeTimeout: "10s" as unknown as number },
        () => new EchoStream(),
      ),
    TypeError,
  );
});

Deno.test("serve() names the address when it cannot listen: port in use, unknown host", () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = taken.addr;
  assert.throws(() => serve({ port }, () => new EchoStream()), {
    name: "AddrInUse",
    message:
      `Cannot listen on 127.0.0.1:${port} as the address is in use: current owner is another socket; choose another port, or 0 for any free one`,
  });
  assert.throws(
    () =>
      serve(
        { hostname: "no-such-host.invalid", port: 0 },
        () => new EchoStream(),
      ),
    (error: unknown) =>
      error instanceof Deno.errors.NotFound &&
      error.message.startsWith(
        "Cannot listen on no-such-host.invalid:0 as the host name cannot be resolved: ",
      ),
  );
  assert.throws(
    () =>
      serve({ hostname: "localhost:9990", port: 0 }, () => new EchoStream()),
    (error: unknown) =>
      error instanceof Deno.errors.NotFound &&
      error.message.startsWith(
        "Cannot listen on [localhost:9990]:0 as the host name cannot be resolved: ",
      ),
  );
});

Deno.test("serve() types addr by the options: NetAddr for TCP, UnixAddr with path", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const port: number = server.addr.port; // type-checked: no cast needed
  assert.ok(port > 0);
  const path = await Deno.makeTempFile();
  await Deno.remove(path);
  await using unix = serve({ path }, () => new EchoStream());
  const where: string = unix.addr.path;
  assert.equal(where, path);
});

Deno.test("serve()'s default onError prints one line for a peer's oversized line, naming the client", async () => {
  const { FrameTooLargeError } = await import("../framing.ts");
  const printed: unknown[][] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => void printed.push(args);
  try {
    const log = closeLog();
    await using server = serve({ port: 0, onClose: log.onClose }, () => {
      throw new FrameTooLargeError(
        "Cannot decode line as its length must be <= 8 bytes: current length is 20 bytes",
        20,
        8,
      );
    });
    using _conn = await Deno.connect(tcp(server.addr));
    await log.next();
  } finally {
    console.error = original;
  }
  assert.equal(printed.length, 1);
  assert.equal(printed[0]!.length, 1);
  assert.match(
    String(printed[0]![0]),
    /^FrameTooLargeError: Cannot decode line as its length must be <= 8 bytes: current length is 20 bytes \(client 127\.0\.0\.1:\d+, #1\)$/,
  );
});

Deno.test("serve() reports reaching maxConnections in one line that says what newcomers get", async () => {
  const errors = errorLog();
  await using server = serve({
    port: 0,
    maxConnections: 1,
    onError: errors.onError,
  }, () => new EchoStream());
  using first = await Deno.connect(tcp(server.addr));
  assert.equal(await roundTrip(first, "x"), "x");
  const [error, info] = await errors.next();
  assert.equal(info, undefined);
  assert.ok(error instanceof RangeError);
  assert.equal(
    error.message,
    'Cannot serve more clients at once as maxConnections is reached: current count is 1, limit is 1; newcomers wait in the listen backlog until a client closes (connectionPolicy "queue"); an idleTimeout frees the slots of silent clients',
  );
});

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  type ClientConnection,
  connect,
  ConnectError,
  exchange,
} from "../client.ts";
import { ConnStreams } from "../conn_streams.ts";
import { framed, lines } from "../framing.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";

const encoder = new TextEncoder();
const testdata = new URL("./testdata/", import.meta.url);

function bytesOf(...texts: string[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(texts.map((text) => encoder.encode(text)));
}

/** Deterministic pseudo-random bytes: `count` chunks of `size` bytes. */
function* noise(
  count: number,
  size: number,
  seed = 12345,
): Generator<Uint8Array> {
  let state = seed;
  for (let i = 0; i < count; i++) {
    const chunk = new Uint8Array(size);
    const words = new Uint32Array(chunk.buffer);
    for (let w = 0; w < words.length; w++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      words[w] = state;
    }
    yield chunk;
  }
}

type Service = () => TransformStream<Uint8Array, Uint8Array>;

/**
 * The project's service on a listener of our own: every connection goes
 * through a fresh `service()` over {@linkcode ConnStreams}, so answers
 * written after the client's FIN arrive.
 */
function loopback(
  listener: Deno.Listener,
  service: Service,
): AsyncDisposable & { served: number } {
  const open = new Set<ConnStreams>();
  const handlers: Promise<void>[] = [];
  const state = { served: 0 };
  const accepting = (async () => {
    for await (const conn of listener) {
      const streams = new ConnStreams(conn);
      open.add(streams);
      state.served++;
      handlers.push(
        streams.readable.pipeThrough(service()).pipeTo(streams.writable)
          .catch(() => {})
          .finally(() => open.delete(streams)),
      );
    }
  })().catch(() => {});
  return Object.assign(state, {
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      for (const streams of open) streams.close();
      await Promise.all(handlers);
    },
  });
}

function tcpServer(service: Service, hostname = "127.0.0.1") {
  const listener = Deno.listen({ hostname, port: 0 });
  return Object.assign(loopback(listener, service), {
    port: listener.addr.port,
  });
}

/** A foreign server: `command` prints its port on its first line. */
async function foreign(
  command: string,
  args: string[],
): Promise<{ port: number } & AsyncDisposable> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await lines.read();
    if (done) throw new Error(`${command} ended before printing its port`);
    text += value;
  }
  return {
    port: Number(text.trim()),
    async [Symbol.asyncDispose]() {
      await child.stdin.close().catch(() => {});
      await lines.cancel();
      try {
        child.kill();
      } catch { /* ended already */ }
      await child.status;
    },
  };
}

// Reads everything to EOF, then answers at length: only a client that
// half-closes and keeps reading gets the answer.
const PYTHON_SERVER = `
import socket, hashlib, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
h = hashlib.sha256(); n = 0
while True:
    b = c.recv(65536)
    if not b: break
    h.update(b); n += len(b)
c.sendall(("%d %s\\n" % (n, h.hexdigest())).encode() * 2000)
c.close()
sys.stdin.read()
`;

// Reads one chunk, then resets the connection (SO_LINGER 0 makes close()
// send RST instead of FIN).
const PYTHON_RESET = `
import socket, struct, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
c, _ = s.accept()
c.recv(65536)
c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
c.close()
sys.stdin.read()
`;

// Upper-cases as it reads, and once the client's FIN is in, says how many
// bytes came.
const NODE_SERVER = `
const net = require("node:net");
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let n = 0;
  socket.on("data", (b) => { n += b.length; socket.write(b.toString("latin1").toUpperCase(), "latin1"); });
  socket.on("end", () => { socket.end("bytes: " + n + "\\n"); server.close(); });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
process.stdin.resume(); process.stdin.on("end", () => process.exit(0));
`;

/** A port where nobody listens (it was free a moment ago). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/**
 * A listener whose accept queue is full: with a backlog of 0, Linux queues
 * one connection, then drops every further SYN, so a connect gets no answer
 * at all, like a host behind a firewall.
 */
async function silentServer(): Promise<{ port: number } & Disposable> {
  const listener = Deno.listen({
    hostname: "127.0.0.1",
    port: 0,
    tcpBacklog: 0,
  });
  const filler = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  return {
    port: listener.addr.port,
    [Symbol.dispose]() {
      filler.close();
      listener.close();
    },
  };
}

Deno.test("exchange() sends, half-closes and reads the uppercase service to its end", async () => {
  await using server = tcpServer(() => new UpperCaseStream());
  const conn = await connect({ port: server.port });
  assert.equal(conn.remoteAddr.transport, "tcp");
  assert.equal((conn.remoteAddr as Deno.NetAddr).port, server.port);
  const answer = await new Response(
    exchange(conn, bytesOf("hello, ", "wörld")),
  ).text();
  assert.equal(answer, "HELLO, WöRLD");
  await conn.closed;
  assert.equal(conn.bytesWritten, 13);
  assert.equal(conn.bytesRead, 13);
});

Deno.test("exchange() carries every byte value through an echo service, whatever the chunking", async () => {
  await using server = tcpServer(() => new EchoStream());
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const chunkings = [
    [all],
    [...all].map((byte) => new Uint8Array([byte])),
    [all.subarray(0, 7), all.subarray(7, 200), all.subarray(200)],
  ];
  for (const chunks of chunkings) {
    const conn = await connect({ port: server.port });
    const got = await new Response(exchange(conn, ReadableStream.from(chunks)))
      .bytes();
    assert.deepEqual(got, all);
  }
});

Deno.test("exchange() brings 32 MiB back from an echo service, checked by SHA-256", async () => {
  await using server = tcpServer(() => new EchoStream());
  const conn = await connect({ port: server.port });
  const sentHash = createHash("sha256");
  const gotHash = createHash("sha256");
  let got = 0;
  // Neither side keeps the data: both hash it as it passes.
  const input = ReadableStream.from(noise(512, 65536)).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sentHash.update(chunk);
        controller.enqueue(chunk);
      },
    }),
  );
  for await (const chunk of exchange(conn, input)) {
    got += chunk.length;
    gotHash.update(chunk);
  }
  assert.equal(got, 32 * 1024 * 1024);
  assert.equal(gotHash.digest("hex"), sentHash.digest("hex"));
});

Deno.test("exchange() keeps reading after its FIN while the server still sends", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // The server talks first, reads to our FIN, then sends three more times.
  const served = listener.accept().then(async (conn) => {
    const streams = new ConnStreams(conn);
    const writer = streams.writable.getWriter();
    await writer.write(encoder.encode("welcome\n"));
    const got = await new Response(streams.readable).text();
    for (const part of ["after ", "your ", `FIN: ${got.length} bytes\n`]) {
      await writer.write(encoder.encode(part));
    }
    await writer.close();
    await streams.closed;
  });
  const conn = await connect({ port: listener.addr.port });
  const answer = await new Response(exchange(conn, bytesOf("abc", "de")))
    .text();
  await served;
  assert.equal(answer, "welcome\nafter your FIN: 5 bytes\n");
});

Deno.test("exchange() gets a Python server's answer, sent only after our half-close", async () => {
  await using python = await foreign("python3", ["-c", PYTHON_SERVER]);
  const conn = await connect({ port: python.port });
  const sent = [...noise(16, 65536)];
  const answer = await new Response(exchange(conn, ReadableStream.from(sent)))
    .text();
  const hash = createHash("sha256");
  for (const chunk of sent) hash.update(chunk);
  assert.equal(answer, `${16 * 65536} ${hash.digest("hex")}\n`.repeat(2000));
});

Deno.test("exchange() works with a node:net server by host name, answers during and after input", async () => {
  await using node = await foreign("node", ["-e", NODE_SERVER]);
  const conn = await connect({ hostname: "localhost", port: node.port });
  const answer = await new Response(exchange(conn, bytesOf("abc\n", "def\n")))
    .text();
  assert.equal(answer, "ABC\nDEF\nbytes: 8\n");
});

Deno.test("exchange() errors with ConnectionReset when the server resets, and cancels the input", async () => {
  await using python = await foreign("python3", ["-c", PYTHON_RESET]);
  const conn = await connect({ port: python.port });
  const cancelled = Promise.withResolvers<unknown>();
  // Input that never ends on its own: only the reset can stop it.
  const input = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(encoder.encode("hello")),
    cancel: (reason) => cancelled.resolve(reason),
  });
  await assert.rejects(
    new Response(exchange(conn, input)).text(),
    Deno.errors.ConnectionReset,
  );
  assert.ok(await cancelled.promise instanceof Deno.errors.ConnectionReset);
  await assert.rejects(conn.closed, Deno.errors.ConnectionReset);
});

Deno.test("exchange() errors with the input's error and closes the connection", async () => {
  await using server = tcpServer(() => new EchoStream());
  const conn = await connect({ port: server.port });
  const failure = new Error("input broke");
  const input = new ReadableStream<Uint8Array>({
    pull(controller) {
      controller.enqueue(encoder.encode("partial"));
      controller.error(failure);
    },
  });
  await assert.rejects(
    new Response(exchange(conn, input)).text(),
    (error) => error === failure,
  );
  await assert.rejects(conn.closed, (error) => error === failure);
});

Deno.test("exchange() surfaces a sending error even after the peer has closed its side", async () => {
  // A pair whose readable has ended already while the writable fails: the
  // error must not be lost with the end of the readable.
  const failure = new Error("write failed");
  const pair = {
    readable: ReadableStream.from([encoder.encode("bye")]),
    writable: new WritableStream<Uint8Array>({
      write() {
        throw failure;
      },
    }),
  };
  const chunks: string[] = [];
  await assert.rejects(
    (async () => {
      for await (const chunk of exchange(pair, bytesOf("x"))) {
        chunks.push(new TextDecoder().decode(chunk));
      }
    })(),
    (error) => error === failure,
  );
  assert.deepEqual(chunks, ["bye"]);
});

Deno.test("cancelling the stream from exchange() closes the connection", async () => {
  await using server = tcpServer(() => new EchoStream());
  const conn = await connect({ port: server.port });
  const cancelled = Promise.withResolvers<unknown>();
  const input = new ReadableStream<Uint8Array>({
    start: (controller) => controller.enqueue(encoder.encode("ping")),
    cancel: (reason) => cancelled.resolve(reason),
  });
  const reader = exchange(conn, input).getReader();
  const { value } = await reader.read();
  assert.equal(new TextDecoder().decode(value), "ping");
  const reason = new Error("enough");
  await reader.cancel(reason);
  assert.equal(await cancelled.promise, reason);
  await assert.rejects(conn.closed, (error) => error === reason);
});

Deno.test("exchange() works on framed() messages over connect()", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  // Answers each line with its length, and the count after our FIN.
  const served = listener.accept().then(async (conn) => {
    const { readable, writable } = framed(conn, lines());
    const writer = writable.getWriter();
    let count = 0;
    for await (const line of readable) {
      count++;
      await writer.write(`${line.length}`);
    }
    await writer.write(`${count} lines`);
    await writer.close();
  });
  const conn = await connect({ port: listener.addr.port });
  const answers = await Array.fromAsync(
    exchange(framed(conn, lines()), ReadableStream.from(["hello", "", "hi"]))
      .pipeThrough(new TextDecoderStream()),
  );
  await served;
  await conn.closed;
  assert.deepEqual(answers, ["5", "0", "2", "3 lines"]);
});

Deno.test("connect() reaches an IPv6 server by address, with or without brackets", async () => {
  await using server = tcpServer(() => new UpperCaseStream(), "::1");
  for (const hostname of ["::1", "[::1]"]) {
    const conn = await connect({ hostname, port: server.port });
    assert.equal((conn.remoteAddr as Deno.NetAddr).hostname, "::1");
    assert.equal(
      await new Response(exchange(conn, bytesOf("six"))).text(),
      "SIX",
    );
  }
  assert.equal(server.served, 2);
});

Deno.test("connect() reaches a Unix socket by path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sock`;
    const listener = Deno.listen({ transport: "unix", path });
    await using _server = loopback(listener, () => new UpperCaseStream());
    const conn = await connect({ path });
    assert.equal(conn.remoteAddr.transport, "unix");
    assert.equal(
      await new Response(exchange(conn, bytesOf("unix"))).text(),
      "UNIX",
    );
    await assert.rejects(connect({ path: `${dir}/none` }), (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.NotFound);
      assert.equal(error.target, `${dir}/none`);
      return true;
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect() speaks TLS to a server with a certificate from caCerts, half-close included", async () => {
  const [cert, key, ca] = await Promise.all(
    ["tls_localhost_cert.pem", "tls_localhost_key.pem", "tls_ca.pem"]
      .map((name) => Deno.readTextFile(new URL(name, testdata))),
  );
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: cert!,
    key: key!,
  });
  const port = listener.addr.port;
  await using server = loopback(listener, () => new UpperCaseStream());
  const conn = await connect({
    hostname: "localhost",
    port,
    tls: true,
    caCerts: [ca!],
  });
  const data = [...noise(16, 65536)];
  const answer = await new Response(exchange(conn, ReadableStream.from(data)))
    .bytes();
  const upper = createHash("sha256");
  for (const chunk of data) {
    upper.update(upperBytes(chunk));
  }
  assert.equal(answer.length, 16 * 65536);
  assert.equal(
    createHash("sha256").update(answer).digest("hex"),
    upper.digest("hex"),
  );

  // Without the CA, the handshake fails inside connect(), named as such.
  await assert.rejects(
    connect({ hostname: "localhost", port, tls: true }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.InvalidData);
      assert.match(
        error.message,
        new RegExp(
          `^Cannot connect to localhost:${port}: TLS handshake failed: .*UnknownIssuer`,
        ),
      );
      return true;
    },
  );
  assert.equal(server.served, 2);
});

function upperBytes(chunk: Uint8Array): Uint8Array {
  return chunk.map((byte) => byte >= 0x61 && byte <= 0x7a ? byte - 0x20 : byte);
}

Deno.test("connect() names the target and the cause when the connection is refused", async () => {
  const port = closedPort();
  for (
    const [hostname, target] of [["127.0.0.1", `127.0.0.1:${port}`], [
      "::1",
      `[::1]:${port}`,
    ]]
  ) {
    await assert.rejects(connect({ hostname, port }), (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
      assert.equal(error.target, target);
      assert.equal(
        error.message,
        `Cannot connect to ${target}: connection refused (is a server listening there?)`,
      );
      return true;
    });
  }
});

Deno.test("connect() reports a host name that does not resolve as host not found", async () => {
  await assert.rejects(
    connect({ hostname: "no-such-host.invalid", port: 9 }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.target, "no-such-host.invalid:9");
      assert.ok(error.cause instanceof Deno.errors.NotFound);
      assert.match(
        error.message,
        /^Cannot connect to no-such-host\.invalid:9: host not found \(.+\)$/,
      );
      return true;
    },
  );
});

Deno.test("connect() gives up after connectTimeout on a server that never answers", async () => {
  using silent = await silentServer();
  const started = performance.now();
  await assert.rejects(
    connect({ port: silent.port, connectTimeout: 300 }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.TimedOut);
      assert.equal(
        error.message,
        `Cannot connect to 127.0.0.1:${silent.port}: timed out: no answer within 300 ms`,
      );
      return true;
    },
  );
  const elapsed = performance.now() - started;
  assert.ok(elapsed >= 290 && elapsed < 5000, `took ${elapsed} ms`);
});

Deno.test("connect() times out a TLS handshake the server never answers", async () => {
  // Accepts TCP but says nothing: the TLS handshake waits forever.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  await assert.rejects(
    connect({ port: listener.addr.port, tls: true, connectTimeout: 200 }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.TimedOut);
      return true;
    },
  );
  // The client had sent its hello, then gave up and closed: the server
  // reads that hello and then end-of-file.
  using conn = await accepted;
  let received = 0;
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) received += n;
  assert.ok(received > 0);
});

Deno.test("connect() reports a reset during the TLS handshake as connection reset", async () => {
  await using python = await foreign("python3", ["-c", PYTHON_RESET]);
  await assert.rejects(
    connect({ port: python.port, tls: true }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.ConnectionReset);
      assert.equal(
        error.message,
        `Cannot connect to 127.0.0.1:${python.port}: connection reset by peer`,
      );
      return true;
    },
  );
});

Deno.test("connect() stops when its signal aborts, with the signal's reason", async () => {
  using silent = await silentServer();
  const controller = new AbortController();
  const reason = new Error("user gave up");
  const attempt = connect({ port: silent.port, signal: controller.signal });
  controller.abort(reason);
  await assert.rejects(attempt, (error) => error === reason);
  // Aborted before the call: no attempt at all.
  await assert.rejects(
    connect({ port: silent.port, signal: AbortSignal.abort(reason) }),
    (error) => error === reason,
  );
});

Deno.test("connect()'s signal closes the connection once connected", async () => {
  await using server = tcpServer(() => new EchoStream());
  const controller = new AbortController();
  const conn = await connect({ port: server.port, signal: controller.signal });
  const reading = new Response(conn.readable).text();
  const reason = new Error("stop now");
  controller.abort(reason);
  await assert.rejects(reading, (error) => error === reason);
  await assert.rejects(conn.closed, (error) => error === reason);
});

Deno.test("await using closes a ClientConnection and waits until it is closed", async () => {
  await using server = tcpServer(() => new EchoStream());
  let kept: ClientConnection;
  {
    await using conn = await connect({ port: server.port });
    kept = conn;
  }
  await assert.rejects(kept.closed, Deno.errors.Interrupted);
  await assert.rejects(
    kept.writable.getWriter().write(new Uint8Array(1)),
    Deno.errors.Interrupted,
  );
});

Deno.test("connect() rejects options out of range or that do not go together", async () => {
  await assert.rejects(connect({ port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot connect as port must be an integer from 1 to 65535: current value is 70000",
  });
  await assert.rejects(connect({ port: 1.5 }), RangeError);
  await assert.rejects(connect({ connectTimeout: 0 }), {
    name: "RangeError",
    message:
      "Cannot connect as connectTimeout must be > 0 ms: current value is 0",
  });
  await assert.rejects(connect({ connectTimeout: NaN }), RangeError);
  await assert.rejects(connect({ path: "/tmp/x.sock", tls: true }), TypeError);
});

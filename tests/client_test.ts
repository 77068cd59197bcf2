// The client library: connect() and exchange() against our server and
// against foreign peers (Node's node:net), over TCP v4/v6, TLS and Unix.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  ClientConnection,
  connect,
  ConnectError,
  describeError as describe,
  exchange,
} from "../client.ts";
import { Connection } from "../connection.ts";
import { serve } from "../server.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";
import { installed, noise } from "./_util.ts";

const encoder = new TextEncoder();
const testdata = new URL("./testdata/", import.meta.url);

function bytesOf(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([encoder.encode(text)]);
}

const HAS_NODE = installed("node", { file: "client_test" });

/** A Node script as a foreign server: it prints its port first. */
async function nodeServer(
  script: string,
): Promise<{ port: number } & AsyncDisposable> {
  const child = new Deno.Command("node", {
    args: ["-e", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { done, value } = await lines.read();
    if (done) throw new Error("node ended before printing its port");
    text += value;
  }
  return {
    port: Number(text.trim()),
    async [Symbol.asyncDispose]() {
      await child.stdin.close().catch(() => {});
      await lines.cancel();
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
    },
  };
}

// Reads everything to EOF, then answers: it only works with a client that
// half-closes and keeps reading.
const ANSWER_AFTER_FIN = `
const net = require("node:net"), crypto = require("node:crypto");
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  const hash = crypto.createHash("sha256"); let n = 0;
  socket.on("data", (b) => { hash.update(b); n += b.length; });
  socket.on("end", () => {
    socket.end((n + " " + hash.digest("hex") + "\\n").repeat(2000));
    server.close();
  });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

const ANSWER_DURING_AND_AFTER = `
const net = require("node:net");
const server = net.createServer({ allowHalfOpen: true }, (socket) => {
  let n = 0;
  socket.on("data", (b) => { n += b.length; socket.write(b.toString("latin1").toUpperCase(), "latin1"); });
  socket.on("end", () => { socket.end("bytes: " + n + "\\n"); server.close(); });
});
server.listen(0, "127.0.0.1", () => console.log(server.address().port));
`;

// A listener that never accepts (its event loop is blocked) and whose
// accept queue holds two: once two clients wait in it, the kernel drops
// further SYNs, so a connect gets no answer at all, like a host behind a
// firewall.
const NEVER_ACCEPTS = `
const net = require("node:net"), fs = require("node:fs");
const server = net.createServer();
server.listen({ port: 0, host: "127.0.0.1", backlog: 1 }, () => {
  fs.writeSync(1, server.address().port + "\\n");
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});
`;

/** The never-accepting listener with its queue full. */
async function silentServer(): Promise<{ port: number } & AsyncDisposable> {
  const node = await nodeServer(NEVER_ACCEPTS);
  const fillers: Deno.Conn[] = [];
  for (let i = 0; i < 2; i++) {
    fillers.push(
      await Deno.connect({ hostname: "127.0.0.1", port: node.port }),
    );
  }
  return {
    port: node.port,
    async [Symbol.asyncDispose]() {
      for (const conn of fillers) conn.close();
      await node[Symbol.asyncDispose]();
    },
  };
}

Deno.test("exchange() sends, half-closes and reads the project's uppercase server to its end", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
  assert.ok(conn instanceof Connection);
  assert.equal(conn.remoteAddr.transport, "tcp");
  const answer = await new Response(exchange(conn, bytesOf("hello, wörld")))
    .text();
  assert.equal(answer, "HELLO, WöRLD");
  await conn.closed;
});

Deno.test("exchange() carries 8 MiB of binary data byte-identical through an echo server", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
  const sent = [...noise(128, 65536)];
  const got = await new Response(exchange(conn, ReadableStream.from(sent)))
    .bytes();
  const want = createHash("sha256");
  for (const chunk of sent) want.update(chunk);
  assert.equal(got.length, 128 * 65536);
  assert.equal(
    createHash("sha256").update(got).digest("hex"),
    want.digest("hex"),
  );
});

Deno.test({
  name:
    "exchange() gets a node:net server's answer, sent only after our half-close",
  ignore: !HAS_NODE,
  async fn() {
    await using node = await nodeServer(ANSWER_AFTER_FIN);
    const conn = await connect({ port: node.port });
    const sent = [...noise(16, 65536)];
    const answer = await new Response(exchange(conn, ReadableStream.from(sent)))
      .text();
    const hash = createHash("sha256");
    for (const chunk of sent) hash.update(chunk);
    assert.equal(answer, `${16 * 65536} ${hash.digest("hex")}\n`.repeat(2000));
  },
});

Deno.test({
  name:
    "exchange() works against a node:net server that answers during and after input",
  ignore: !HAS_NODE,
  async fn() {
    await using node = await nodeServer(ANSWER_DURING_AND_AFTER);
    const conn = await connect({ port: node.port });
    const answer = await new Response(exchange(conn, bytesOf("abc\ndef\n")))
      .text();
    assert.equal(answer, "ABC\nDEF\nbytes: 8\n");
  },
});

Deno.test("connect() reaches an IPv6 server by address", async () => {
  await using server = serve(
    { hostname: "::1", port: 0 },
    () => new UpperCaseStream(),
  );
  const conn = await connect({
    hostname: "::1",
    port: (server.addr as Deno.NetAddr).port,
  });
  assert.equal((conn.remoteAddr as Deno.NetAddr).hostname, "::1");
  assert.equal(
    await new Response(exchange(conn, bytesOf("six"))).text(),
    "SIX",
  );
});

Deno.test("connect() reaches a Unix socket by path", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sock`;
    await using _server = serve({ path }, () => new UpperCaseStream());
    const conn = await connect({ path });
    assert.equal(conn.remoteAddr.transport, "unix");
    assert.equal(
      await new Response(exchange(conn, bytesOf("unix"))).text(),
      "UNIX",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("connect() names the target and the cause when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(connect({ port }), (error) => {
    assert.ok(error instanceof ConnectError);
    assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
    assert.equal(error.target, `127.0.0.1:${port}`);
    assert.equal(error.tlsHandshake, false);
    assert.equal(
      error.message,
      `Cannot connect to 127.0.0.1:${port}: connection refused (is a server listening there?)`,
    );
    return true;
  });
});

Deno.test("connect() reports a host name that does not resolve", async () => {
  await assert.rejects(
    connect({ hostname: "no-such-host.invalid", port: 9 }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.target, "no-such-host.invalid:9");
      assert.match(
        error.message,
        /^Cannot connect to no-such-host\.invalid:9: /,
      );
      assert.ok(!(error.cause instanceof Deno.errors.TimedOut));
      return true;
    },
  );
});

Deno.test({
  name:
    "connect() gives up after connectTimeout on a server that never answers",
  ignore: !HAS_NODE,
  async fn() {
    await using silent = await silentServer();
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
    assert.ok(performance.now() - started >= 290);
  },
});

Deno.test({
  name: "connect() stops when its signal aborts, with the signal's reason",
  ignore: !HAS_NODE,
  async fn() {
    await using silent = await silentServer();
    const controller = new AbortController();
    const reason = new Error("user gave up");
    const attempt = connect({ port: silent.port, signal: controller.signal });
    controller.abort(reason);
    await assert.rejects(attempt, (error) => error === reason);
  },
});

Deno.test("connect() times out a TLS handshake the server never answers, under the same deadline", async () => {
  // TCP connects at once; the server then reads the ClientHello and says
  // nothing. The deadline covers connect + handshake.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const started = performance.now();
  await assert.rejects(
    connect({ port: listener.addr.port, tls: true, connectTimeout: 300 }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.ok(error.cause instanceof Deno.errors.TimedOut);
      assert.equal(error.tlsHandshake, true);
      assert.equal(
        error.message,
        `Cannot connect to 127.0.0.1:${listener.addr.port}: the TLS handshake failed: timed out: no answer within 300 ms`,
      );
      return true;
    },
  );
  assert.ok(performance.now() - started >= 290);
  // The client's TLS connection is closed (the resource sanitizer checks
  // it). Deno 2.9 keeps the socket itself until the handshake task ends,
  // which our close of the server side does now.
  const held = await accepted;
  held.close();
});

Deno.test("connect() rejects a port or a connectTimeout out of range, and tls with path", async () => {
  await assert.rejects(connect({ port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot connect as port must be an integer from 1 to 65535: current value is 70000",
  });
  await assert.rejects(connect({ connectTimeout: 2 ** 31 }), {
    name: "RangeError",
    message:
      "Cannot connect as connectTimeout must be a number of milliseconds from 1 to 2147483647 or Infinity: current value is 2147483648",
  });
  await assert.rejects(connect({ connectTimeout: 0 }), { name: "RangeError" });
  await assert.rejects(connect({ path: "/tmp/x", tls: true }), {
    name: "TypeError",
  });
});

Deno.test("connect() speaks TLS to a self-signed server trusted through caCerts, and says why an untrusted one fails", async () => {
  const [cert, key, ca] = await Promise.all(
    ["tls_localhost_cert.pem", "tls_localhost_key.pem", "tls_ca.pem"]
      .map((name) => Deno.readTextFile(new URL(name, testdata))),
  );
  // The server logs the refused handshake through onError: keep it quiet.
  await using server = serve(
    { port: 0, cert, key, onError: () => {} },
    () => new UpperCaseStream(),
  );
  const port = (server.addr as Deno.NetAddr).port;
  await assert.rejects(
    connect({ hostname: "localhost", port, tls: true }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.equal(error.tlsHandshake, true);
      assert.match(
        error.message,
        /^Cannot connect to localhost:\d+: the TLS handshake failed: invalid peer certificate: UnknownIssuer \(is the server's CA trusted\? see caCerts \/ --ca\)$/,
      );
      return true;
    },
  );
  const conn = await connect({
    hostname: "localhost",
    port,
    tls: true,
    caCerts: [ca!],
  });
  assert.equal(
    await new Response(exchange(conn, bytesOf("secret"))).text(),
    "SECRET",
  );
});

Deno.test("connect() with tls against a plain TCP server says the server may not speak TLS", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    await conn.write(encoder.encode("220 plain text here\r\n"));
    // Read the ClientHello, then close.
    await conn.read(new Uint8Array(4096)).catch(() => null);
    conn.close();
  });
  await assert.rejects(
    connect({ port: listener.addr.port, tls: true }),
    (error) => {
      assert.ok(error instanceof ConnectError);
      assert.match(
        error.message,
        /: the TLS handshake failed: .* \(does the server speak TLS on that port\?\)$/,
      );
      return true;
    },
  );
  await served;
});

Deno.test("connect() closes the connection when its signal aborts later", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const controller = new AbortController();
  const conn = await connect({
    port: (server.addr as Deno.NetAddr).port,
    signal: controller.signal,
    keepAlive: true,
  });
  const reason = new Error("stop");
  controller.abort(reason);
  await assert.rejects(conn.closed, (error) => error === reason);
  assert.equal(conn.state, "closed");
});

Deno.test("ClientConnection, the 0.1 name, still wraps a Deno.Conn and takes a signal as in 0.1", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const raw = await Deno.connect({
    hostname: "127.0.0.1",
    port: (server.addr as Deno.NetAddr).port,
  });
  const controller = new AbortController();
  const conn = new ClientConnection(raw, controller.signal);
  assert.ok(conn instanceof Connection);
  assert.equal(
    await new Response(exchange(conn, bytesOf("old"))).text(),
    "OLD",
  );
});

Deno.test("describe() words the common network errors", () => {
  assert.equal(
    describe(new Deno.errors.ConnectionRefused("x")),
    "connection refused (is a server listening there?)",
  );
  assert.equal(
    describe(new Deno.errors.BrokenPipe("x")),
    "the peer closed the connection while we were sending",
  );
  assert.equal(
    describe(
      new Deno.errors.NotCapable(
        'Requires net access to "a:1", run again with the --allow-net flag',
      ),
    ),
    'net access is not allowed (Requires net access to "a:1", run again with the --allow-net flag)',
  );
  assert.equal(describe("plain"), "plain");
});

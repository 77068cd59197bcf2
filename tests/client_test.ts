import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { connect, ConnectError, exchange } from "../client.ts";
import { serve } from "../server.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";

const clientPath = fileURLToPath(new URL("../client.ts", import.meta.url));
const encoder = new TextEncoder();

function bytesOf(text: string): ReadableStream<Uint8Array> {
  return ReadableStream.from([encoder.encode(text)]);
}

/** Deterministic pseudo-random bytes, `count` chunks of `size`. */
function* noise(count: number, size: number): Generator<Uint8Array> {
  let state = 12345;
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

/** A foreign server: spawned with `command`, prints its port first. */
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
      } catch { /* ended */ }
      await child.status;
    },
  };
}

// Reads everything to EOF, then answers: it only works with a client that
// half-closes and keeps reading.
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
`;

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

Deno.test("exchange() sends, half-closes and reads the project's uppercase server to its end", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
  assert.equal(conn.remoteAddr.transport, "tcp");
  const answer = await new Response(exchange(conn, bytesOf("hello, wörld")))
    .text();
  assert.equal(answer, "HELLO, WöRLD");
  await conn.closed;
});

Deno.test("exchange() carries binary data byte-identical through an echo server", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
  const sent = [...noise(128, 65536)]; // 8 MiB
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

Deno.test("exchange() gets a Python server's answer, sent only after our half-close", async () => {
  await using python = await foreign("python3", ["-c", PYTHON_SERVER]);
  const conn = await connect({ port: python.port });
  const sent = [...noise(16, 65536)];
  const answer = await new Response(exchange(conn, ReadableStream.from(sent)))
    .text();
  const hash = createHash("sha256");
  for (const chunk of sent) hash.update(chunk);
  const line = `${16 * 65536} ${hash.digest("hex")}\n`;
  assert.equal(answer, line.repeat(2000));
});

Deno.test("exchange() works against a node:net server that answers during and after input", async () => {
  await using node = await foreign("node", ["-e", NODE_SERVER]);
  const conn = await connect({ hostname: "localhost", port: node.port })
    .catch(() => connect({ port: node.port }));
  const answer = await new Response(exchange(conn, bytesOf("abc\ndef\n")))
    .text();
  assert.equal(answer, "ABC\nDEF\nbytes: 8\n");
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
  assert.equal(
    await new Response(exchange(conn, bytesOf("six"))).text(),
    "SIX",
  );
});

Deno.test("connect() names the target and the cause when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  await assert.rejects(connect({ port }), (error) => {
    assert.ok(error instanceof ConnectError);
    assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
    assert.equal(error.target, `127.0.0.1:${port}`);
    assert.match(
      error.message,
      new RegExp(
        `^Cannot connect to 127\\.0\\.0\\.1:${port}: connection refused`,
      ),
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

// A listener whose accept queue is full drops further SYNs: a connect to it
// gets no answer at all, like a host behind a firewall.
const FULL_BACKLOG = `
import socket, sys
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)
fill = []
for _ in range(3):
    c = socket.socket(); c.setblocking(False)
    try: c.connect(s.getsockname())
    except BlockingIOError: pass
    fill.append(c)
print(s.getsockname()[1], flush=True)
sys.stdin.read()
`;

Deno.test("connect() gives up after connectTimeout on a server that never answers", async () => {
  await using silent = await foreign("python3", ["-c", FULL_BACKLOG]);
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
});

Deno.test("connect() stops when its signal aborts, with the signal's reason", async () => {
  await using silent = await foreign("python3", ["-c", FULL_BACKLOG]);
  const controller = new AbortController();
  const reason = new Error("user gave up");
  const attempt = connect({ port: silent.port, signal: controller.signal });
  controller.abort(reason);
  await assert.rejects(attempt, (error) => error === reason);
});

Deno.test("connect() rejects a port out of range", async () => {
  await assert.rejects(connect({ port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot connect as port must be an integer from 1 to 65535: current value is 70000",
  });
});

// --- The program, as a real subprocess.

function client(
  args: string[],
  stdin: "piped" | "null" = "null",
): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", "-R", clientPath, ...args],
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function run(args: string[], input?: string) {
  const child = client(args, input === undefined ? "null" : "piped");
  if (input !== undefined) {
    await bytesOf(input).pipeTo(child.stdin);
  }
  const { code, stdout, stderr } = await child.output();
  return {
    code,
    stdout: new TextDecoder().decode(stdout),
    stderr: new TextDecoder().decode(stderr),
  };
}

Deno.test("client program prints --help and exits 0", async () => {
  const { code, stdout } = await run(["--help"]);
  assert.equal(code, 0);
  assert.match(stdout, /^Usage: deno run -N jsr:@x\/sock\/client/);
  assert.match(stdout, /--connect-timeout/);
});

Deno.test("client program exits 2 with one line on an unknown flag or a bad port", async () => {
  for (const args of [["--bogus"], ["--port", "http"], ["-p", "0"]]) {
    const { code, stderr } = await run(args);
    assert.equal(code, 2, args.join(" "));
    const lines = stderr.trim().split("\n");
    assert.equal(lines.length, 1, stderr);
    assert.match(lines[0]!, /^error: .* \(see --help\)$/);
  }
});

Deno.test("client program exits 1 with one clear line when the connection is refused", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const { code, stderr } = await run(["-p", `${port}`], "x");
  assert.equal(code, 1);
  assert.equal(
    stderr.trim(),
    `error: Cannot connect to 127.0.0.1:${port}: connection refused (is a server listening there?)`,
  );
});

Deno.test("client program pipes stdin, half-closes at its end and prints the whole answer", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const port = `${(server.addr as Deno.NetAddr).port}`;
  const { code, stdout, stderr } = await run(["--port", port], "one\ntwo\n");
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.equal(stdout, "ONE\nTWO\n");
});

Deno.test("client program brings 100 MiB back byte-identical through an echo server", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const child = client(
    ["-p", `${(server.addr as Deno.NetAddr).port}`],
    "piped",
  );
  const sentHash = createHash("sha256");
  const gotHash = createHash("sha256");
  let got = 0;
  const [, , status] = await Promise.all([
    ReadableStream.from(noise(1600, 65536)) // 100 MiB
      .pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            sentHash.update(chunk);
            controller.enqueue(chunk);
          },
        }),
      )
      .pipeTo(child.stdin),
    child.stdout.pipeTo(
      new WritableStream({
        write(chunk) {
          got += chunk.length;
          gotHash.update(chunk);
        },
      }),
    ),
    child.status,
    child.stderr.cancel(),
  ]);
  assert.equal(status.code, 0);
  assert.equal(got, 100 * 1024 * 1024);
  assert.equal(gotHash.digest("hex"), sentHash.digest("hex"));
});

// Runs the client on a pseudo-terminal: Python's pty module gives it a
// real terminal as stdin, so the interactive mode is what runs.
const PTY_DRIVER = `
import json, os, pty, subprocess, sys
deno, client, port = sys.argv[1:4]
master, slave = pty.openpty()
p = subprocess.Popen([deno, "run", "-N", client, "-p", port], stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
os.close(slave)
def read_until(stream, want):
    got = b""
    while want not in got:
        chunk = os.read(stream.fileno(), 4096)
        if not chunk: break
        got += chunk
    return got
banner = read_until(p.stderr, b"Ctrl-D")
os.write(master, b"hello\\n")
first = read_until(p.stdout, b"HELLO")
os.write(master, b"there\\nq\\n")
rest = p.stdout.read()
code = p.wait()
print(json.dumps([banner.decode(), first.decode(), rest.decode(), code]))
`;

Deno.test("client program at a terminal sends line by line and ends sending on q", async () => {
  // The server answers each line as it comes, and once more after our FIN.
  await using server = serve({ port: 0 }, () => {
    let lines = 0;
    return new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        lines += chunk.filter((b) => b === 0x0a).length;
        controller.enqueue(
          encoder.encode(new TextDecoder().decode(chunk).toUpperCase()),
        );
      },
      flush: (controller) =>
        controller.enqueue(encoder.encode(`${lines} lines\n`)),
    });
  });
  const { code, stdout } = await new Deno.Command("python3", {
    args: [
      "-c",
      PTY_DRIVER,
      Deno.execPath(),
      clientPath,
      `${(server.addr as Deno.NetAddr).port}`,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  const text = new TextDecoder().decode(stdout).trim();
  const [banner, first, rest, exit] = JSON.parse(text);
  assert.match(
    banner,
    /^Connected to 127\.0\.0\.1:\d+\. Type lines to send; "q" or Ctrl-D ends sending\./,
  );
  assert.equal(first, "HELLO\n");
  assert.equal(rest, "THERE\n2 lines\n");
  assert.equal(exit, 0);
});

const testdata = new URL("./testdata/", import.meta.url);

Deno.test("connect() speaks TLS to a self-signed server trusted through caCerts", async () => {
  const [cert, key, ca] = await Promise.all(
    ["tls_localhost_cert.pem", "tls_localhost_key.pem", "tls_ca.pem"]
      .map((name) => Deno.readTextFile(new URL(name, testdata))),
  );
  await using server = serve(
    { port: 0, cert, key },
    () => new UpperCaseStream(),
  );
  const port = (server.addr as Deno.NetAddr).port;
  // Without the CA the certificate is not trusted.
  await assert.rejects(connect({ hostname: "localhost", port, tls: true }));
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

Deno.test("client program --ca reaches a TLS server and --unix a Unix socket", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sock`;
    await using _unix = serve({ path }, () => new UpperCaseStream());
    const viaUnix = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-N", "-R", "-W", clientPath, "--unix", path],
      stdin: "piped",
      stdout: "piped",
    }).spawn();
    await bytesOf("over unix").pipeTo(viaUnix.stdin);
    const out = await viaUnix.output();
    assert.equal(out.code, 0);
    assert.equal(new TextDecoder().decode(out.stdout), "OVER UNIX");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const [cert, key] = await Promise.all(
    ["tls_localhost_cert.pem", "tls_localhost_key.pem"]
      .map((name) => Deno.readTextFile(new URL(name, testdata))),
  );
  await using tls = serve({ port: 0, cert, key }, () => new UpperCaseStream());
  const { code, stdout } = await run(
    [
      "--host",
      "localhost",
      "-p",
      `${(tls.addr as Deno.NetAddr).port}`,
      "--ca",
      fileURLToPath(new URL("tls_ca.pem", testdata)),
    ],
    "over tls",
  );
  assert.equal(code, 0);
  assert.equal(stdout, "OVER TLS");
});

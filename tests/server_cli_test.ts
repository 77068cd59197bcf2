// The server program as a real subprocess: every service and flag, against
// in-test Deno clients and foreign clients (ncat, OpenBSD nc, socat) where
// installed.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { upperCase } from "../services.ts";
import denoJson from "../deno.json" with { type: "json" };
import { concat, installed, noise, readAll, readBytes } from "./_util.ts";

const serverPath = fileURLToPath(new URL("../server.ts", import.meta.url));
const clientPath = fileURLToPath(new URL("../client.ts", import.meta.url));
const testdata = new URL("./testdata/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const FILE = "server_cli_test";
const HAS = {
  ncat: installed("ncat", { apt: "ncat", file: FILE }),
  nc: installed("nc", { args: ["-h"], apt: "netcat-openbsd", file: FILE }),
  socat: installed("socat", { args: ["-V"], apt: "socat", file: FILE }),
};

/** The server program as a subprocess, its stderr read line by line. */
class Program implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #reader: ReadableStreamDefaultReader<string>;
  #pending = "";

  constructor(args: string[], permissions = ["-N"]) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", ...permissions, serverPath, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#reader = this.child.stderr.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** Reads stderr until a line matches; returns the match. */
  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    while (true) {
      const newline = this.#pending.indexOf("\n");
      if (newline !== -1) {
        const line = this.#pending.slice(0, newline);
        this.#pending = this.#pending.slice(newline + 1);
        this.lines.push(line);
        const match = line.match(pattern);
        if (match) return match;
        continue;
      }
      const { done, value } = await this.#reader.read();
      if (done) {
        throw new Error(
          `Program ended before ${pattern}: ${JSON.stringify(this.lines)}`,
        );
      }
      this.#pending += value;
    }
  }

  /** Waits for the listening line; returns the port. */
  async port(): Promise<number> {
    const [, port] = await this.waitFor(/^Listening on .*:(\d+)/);
    return Number(port);
  }

  /** Waits for the exit; returns the code and the rest of stderr. */
  async end(): Promise<{ code: number; rest: string }> {
    let rest = this.#pending;
    for (let r; !(r = await this.#reader.read()).done;) rest += r.value;
    this.#pending = "";
    await this.child.stdout.cancel();
    return { code: (await this.child.status).code, rest };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* ended */ }
    await this.end().catch(() => {});
  }
}

/** Reads from `conn` until the text read so far includes `text`. */
async function readUntilText(conn: Deno.Conn, text: string): Promise<string> {
  let seen = "";
  const buffer = new Uint8Array(65536);
  while (!seen.includes(text)) {
    const n = await conn.read(buffer);
    if (n === null) {
      throw new Error(`EOF before ${JSON.stringify(text)}: ${seen}`);
    }
    seen += decoder.decode(buffer.subarray(0, n));
  }
  return seen;
}

async function ask(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(encoder.encode(text));
  await conn.closeWrite();
  return decoder.decode(await readAll(conn));
}

function connect(port: number, hostname = "127.0.0.1"): Promise<Deno.TcpConn> {
  return Deno.connect({ hostname, port });
}

async function run(args: string[], permissions = ["-N"]) {
  await using program = new Program(args, permissions);
  return await program.end();
}

// ---------------------------------------------------------------------------
// Help, version, services

Deno.test("server --help lists every flag, service and exit code; --version reads deno.json", async () => {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", serverPath, "--help"],
  }).output();
  const out = decoder.decode(stdout);
  assert.equal(code, 0);
  assert.match(out, /^Usage: deno run -N jsr:@x\/sock\/server/);
  for (
    const word of [
      "--host",
      "--port",
      "--service",
      "--exec",
      "--unix",
      "--cert",
      "--key",
      "--max-connections",
      "--connection-policy",
      "--idle-timeout",
      "--grace-period",
      "--allow",
      "--deny",
      "--proxy-protocol",
      "--trusted-proxy",
      "--reuse-port",
      "--stats",
      "--hex-dump",
      "--udp",
      "--quiet",
      "--verbose",
      "--version",
      "upper",
      "echo",
      "discard",
      "chargen",
      "daytime",
      "chat",
      "--allow-run",
    ]
  ) {
    assert.ok(out.includes(word), word);
  }
  assert.match(out, /^ {2}130 /m);
  const version = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", serverPath, "--version"],
  }).output();
  assert.match(
    decoder.decode(version.stdout),
    new RegExp(`^server ${denoJson.version} \\(@x/sock, Deno `),
  );
});

Deno.test("server serves upper-case by default, logs each client, exits 0 on SIGTERM", async () => {
  await using program = new Program(["-p", "0"]);
  const [, port] = await program.waitFor(
    /^Listening on 127\.0\.0\.1:(\d+) \(service: upper\)$/,
  );
  using conn = await connect(+port!);
  const local = conn.localAddr as Deno.NetAddr;
  assert.equal(await ask(conn, "hello"), "HELLO");
  await program.waitFor(
    new RegExp(`^Connected 127\\.0\\.0\\.1:${local.port} \\(#1\\)$`),
  );
  await program.waitFor(
    new RegExp(
      `^Closed 127\\.0\\.0\\.1:${local.port} \\(#1\\): 5 bytes in, 5 bytes out, \\d+ ms$`,
    ),
  );
  program.child.kill("SIGTERM");
  const { code, rest } = await program.end();
  assert.equal(code, 0);
  assert.match(rest, /^Shutting down on SIGTERM/m);
  assert.match(rest, /^Stopped$/m);
});

Deno.test("server -s echo on IPv6 loopback, stopped by SIGINT", async () => {
  await using program = new Program(["--host", "::1", "-p", "0", "-s", "echo"]);
  const [, port] = await program.waitFor(
    /^Listening on \[::1\]:(\d+) \(service: echo\)$/,
  );
  using conn = await connect(+port!, "::1");
  assert.equal(await ask(conn, "Echo me"), "Echo me");
  program.child.kill("SIGINT");
  assert.equal((await program.end()).code, 0);
});

Deno.test("server -U listens on a Unix socket", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  try {
    await using program = new Program(["-U", path], ["-N", "-R", "-W"]);
    await program.waitFor(/^Listening on unix:/);
    using conn = await Deno.connect({ transport: "unix", path });
    assert.equal(await ask(conn, "unix"), "UNIX");
    program.child.kill("SIGTERM");
    assert.equal((await program.end()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server -s discard reads everything and answers nothing (RFC 863)", async () => {
  await using program = new Program(["-p", "0", "-s", "discard"]);
  using conn = await connect(await program.port());
  assert.equal(await ask(conn, "thrown away"), "");
  await program.waitFor(/^Closed .*: 11 bytes in, 0 bytes out/);
});

Deno.test("server -s chargen sends rotating 72-character lines until the client closes (RFC 864)", async () => {
  await using program = new Program(["-p", "0", "-s", "chargen"]);
  const conn = await connect(await program.port());
  const text = decoder.decode(await readBytes(conn, 74 * 3));
  const lines = text.split("\r\n");
  assert.equal(lines.length, 4);
  for (const line of lines.slice(0, 3)) {
    assert.equal(line.length, 72);
    assert.match(line, /^[\x20-\x7e]+$/);
  }
  assert.equal(lines[1]!.slice(0, 71), lines[0]!.slice(1));
  assert.equal(lines[2]!.slice(0, 71), lines[1]!.slice(1));
  conn.close();
  await program.waitFor(/^Closed /);
});

Deno.test("server -s daytime sends one line with the date, then closes (RFC 867)", async () => {
  await using program = new Program(["-p", "0", "-s", "daytime"]);
  using conn = await connect(await program.port());
  const answer = decoder.decode(await readAll(conn));
  assert.match(
    answer,
    /^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$/,
  );
});

Deno.test("server -s chat passes lines between clients and drops one that does not read, with memory bounded", async () => {
  await using program = new Program(["-p", "0", "-s", "chat", "-q"]);
  const port = await program.port();
  const a = await connect(port);
  await readUntilText(a, "* you are");
  const b = await connect(port);
  await readUntilText(b, "* you are");
  const c = await connect(port); // never reads
  const cName = `127.0.0.1:${(c.localAddr as Deno.NetAddr).port}`;
  const aName = `127.0.0.1:${(a.localAddr as Deno.NetAddr).port}`;
  await readUntilText(a, `* ${cName} joined`);
  await a.write(encoder.encode("hi\n"));
  await readUntilText(b, `[${aName}] hi\n`);

  // Flood: B reads everything, C nothing. C must be dropped, B keep going.
  let dropped = false;
  let afterSeen = false;
  const bReading = (async () => {
    let seen = "";
    const buffer = new Uint8Array(65536);
    while (true) {
      const n = await b.read(buffer);
      if (n === null) return;
      // Look at the whole chunk, then keep a tail for notices cut in two.
      seen += decoder.decode(buffer.subarray(0, n));
      if (seen.includes(`* ${cName} dropped: not reading\n`)) dropped = true;
      if (seen.includes(`[${aName}] after\n`)) afterSeen = true;
      if (afterSeen && seen.includes(`* ${aName} left\n`)) return;
      seen = seen.slice(-256);
    }
  })();
  const line = encoder.encode("x".repeat(1023) + "\n");
  for (let i = 0; i < 48 * 1024 && !dropped; i++) await a.write(line);
  await a.write(encoder.encode("after\n"));
  await a.closeWrite(); // A leaves: B is told, which ends its reading
  await bReading;
  assert.ok(dropped, "the non-reading client was dropped within 48 MiB");
  // Deno guards /proc behind --allow-all; cat reads it with --allow-run.
  const status = decoder.decode(
    (await new Deno.Command("cat", {
      args: [`/proc/${program.child.pid}/status`],
    }).output()).stdout,
  );
  const peak = Number(status.match(/^VmHWM:\s+(\d+) kB/m)![1]) / 1024;
  assert.ok(
    peak < 200,
    `the server's peak RSS stayed under 200 MiB: ${peak} MiB`,
  );
  a.close();
  b.close();
  c.close();
});

// ---------------------------------------------------------------------------
// --exec

Deno.test("server --exec cat carries 50 MiB both ways byte-exact with half-close", async () => {
  await using program = new Program(["-p", "0", "-e", "cat"], [
    "-N",
    "--allow-run=cat",
  ]);
  const [, port] = await program.waitFor(
    /^Listening on 127\.0\.0\.1:(\d+) \(exec: cat\)$/,
  );
  using conn = await connect(+port!);
  const sent = createHash("sha256");
  let total = 0;
  const writing = (async () => {
    for (const chunk of noise(800, 65536, 21)) {
      sent.update(chunk);
      for (let n = 0; n < chunk.length;) {
        n += await conn.write(chunk.subarray(n));
      }
    }
    await conn.closeWrite(); // the child's stdin ends; cat ends; our FIN
  })();
  const got = createHash("sha256");
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    got.update(buffer.subarray(0, n));
    total += n;
  }
  await writing;
  assert.equal(total, 50 * 1024 * 1024);
  assert.equal(got.digest("hex"), sent.digest("hex"));
});

Deno.test("server --exec 'tr a-z A-Z' loses no tail after the client's FIN", async () => {
  await using program = new Program(["-p", "0", "-e", "tr a-z A-Z"], [
    "-N",
    "--allow-run=tr",
  ]);
  const port = await program.port();
  for (const text of ["no newline at the end", "two\nlines"]) {
    using conn = await connect(port);
    assert.equal(await ask(conn, text), text.toUpperCase());
  }
  // Each program's exit status is logged.
  await program.waitFor(/^Program "tr" for #1 ended: exit code 0$/);
});

// ---------------------------------------------------------------------------
// Address lists, PROXY protocol, limits, stats, timeouts, hex dump

Deno.test("server --deny and --allow refuse clients by address, IPv4 and IPv6", async () => {
  const cases: [string[], string, boolean][] = [
    [["--deny", "127.0.0.1"], "127.0.0.1", false],
    [["--allow", "10.0.0.0/8,192.0.2.1"], "127.0.0.1", false],
    [["--allow", "127.0.0.0/8", "--deny", "192.0.2.1"], "127.0.0.1", true],
    [["--host", "::1", "--deny", "::1/128"], "::1", false],
    [["--host", "::1", "--allow", "::1"], "::1", true],
  ];
  for (const [flags, host, served] of cases) {
    await using program = new Program(["-p", "0", ...flags]);
    using conn = await connect(await program.port(), host);
    const answer = await ask(conn, "hi").catch(() => "");
    assert.equal(answer, served ? "HI" : "", flags.join(" "));
    if (!served) await program.waitFor(/Cannot serve client as its address/);
  }
});

Deno.test("server --proxy-protocol logs the real client from a PROXY v1 header", async () => {
  await using program = new Program(["-p", "0", "--proxy-protocol"]);
  using conn = await connect(await program.port());
  const answer = await ask(
    conn,
    "PROXY TCP4 192.0.2.7 127.0.0.1 5555 9990\r\nhello",
  );
  assert.equal(answer, "HELLO");
  await program.waitFor(/^Connected 192\.0\.2\.7:5555 \(#1\)$/);
});

Deno.test("server --trusted-proxy refuses a PROXY header from any other peer", async () => {
  await using program = new Program([
    "-p",
    "0",
    "--proxy-protocol",
    "--trusted-proxy",
    "192.0.2.0/24",
  ]);
  using conn = await connect(await program.port());
  const answer = await ask(
    conn,
    "PROXY TCP4 192.0.2.7 127.0.0.1 5555 9990\r\nhello",
  ).catch(() => "");
  assert.equal(answer, "");
  await program.waitFor(/^error: .*\(#1\): /);
});

Deno.test("server --reuse-port lets two programs listen on one port (with --unstable-net)", async () => {
  const permissions = ["-N", "--unstable-net"];
  await using first = new Program(["-p", "0", "--reuse-port"], permissions);
  const port = await first.port();
  await using second = new Program(
    ["-p", `${port}`, "--reuse-port", "-s", "echo"],
    permissions,
  );
  assert.equal(await second.port(), port);
  using conn = await connect(port);
  assert.match(await ask(conn, "hi"), /^(HI|hi)$/);
});

Deno.test("server --max-connections 1 --connection-policy refuse closes a second client at once", async () => {
  await using program = new Program([
    "-p",
    "0",
    "--max-connections",
    "1",
    "--connection-policy",
    "refuse",
  ]);
  const port = await program.port();
  using first = await connect(port);
  await program.waitFor(/^Connected .* \(#1\)$/);
  using second = await connect(port);
  assert.equal((await readAll(second)).length, 0);
  await program.waitFor(/maxConnections/);
  assert.equal(await ask(first, "still here"), "STILL HERE");
});

Deno.test("server --stats logs the figures periodically and on SIGUSR1", async () => {
  await using program = new Program(["-p", "0", "--stats", "1h"]);
  const port = await program.port();
  {
    using conn = await connect(port);
    assert.equal(await ask(conn, "hello"), "HELLO");
  }
  await program.waitFor(/^Closed /);
  program.child.kill("SIGUSR1");
  await program.waitFor(
    /^Stats: 0 open, 1 accepted, 0 refused, 1 closed, 5 bytes in, 5 bytes out$/,
  );
  await using periodic = new Program(["-p", "0", "--stats", "200ms"]);
  await periodic.waitFor(/^Stats: 0 open, 0 accepted, /);
});

Deno.test("server -i closes a silent client after the idle timeout", async () => {
  await using program = new Program(["-p", "0", "-i", "300ms"]);
  using conn = await connect(await program.port());
  assert.equal((await readAll(conn)).length, 0);
  // The server's own close, not an error.
  await program.waitFor(
    /^Closed .* ms, closed as it was idle for \d+ ms: idleTimeout is 300 ms$/,
  );
});

Deno.test("server shutdown closes an idle client at once, whatever the grace period", async () => {
  await using program = new Program(["-p", "0", "--grace-period", "2m"]);
  using conn = await connect(await program.port());
  await program.waitFor(/^Connected /);
  const started = performance.now();
  program.child.kill("SIGTERM");
  assert.equal((await readAll(conn)).length, 0);
  const { code, rest } = await program.end();
  assert.equal(code, 0);
  assert.match(rest, /^Stopped$/m);
  assert.ok(performance.now() - started < 30_000);
  // Closing an idle client is part of a graceful shutdown, not an error.
  assert.match(
    rest,
    /^Closed .* ms, closed as the server shut down while it was idle$/m,
  );
  assert.doesNotMatch(rest, /error/);
});

Deno.test("server takes a positional port as nc -l does, and a host before it", async () => {
  for (const args of [["0"], ["127.0.0.1", "0"]]) {
    await using program = new Program(args);
    const port = await program.port();
    using conn = await connect(port);
    await conn.write(encoder.encode("hi"));
    await conn.closeWrite();
    assert.equal(decoder.decode(await readAll(conn)), "HI");
  }
});

Deno.test("server --handshake-timeout closes a TLS client that never says hello", async () => {
  await using program = new Program([
    "-p",
    "0",
    "--cert",
    fileURLToPath(new URL("tls_localhost_cert.pem", testdata)),
    "--key",
    fileURLToPath(new URL("tls_localhost_key.pem", testdata)),
    "--handshake-timeout",
    "300ms",
  ], ["-N", "-R"]);
  using conn = await connect(await program.port());
  assert.equal((await readAll(conn)).length, 0);
  await program.waitFor(
    /^error: 127\.0\.0\.1:\d+ \(#1\): Cannot serve TLS client as its handshake did not finish within handshakeTimeout: current timeout is 300 ms/,
  );
});

Deno.test("server exits at once on a second signal: 143 for SIGTERM, 130 for SIGINT", async () => {
  for (const [signal, exit] of [["SIGTERM", 143], ["SIGINT", 130]] as const) {
    // A client that sends without reading keeps its echo connection busy
    // (the answer cannot be sent): the first signal starts the grace period
    // of a minute.
    await using program = new Program([
      "-p",
      "0",
      "-s",
      "echo",
      "--grace-period",
      "1m",
    ]);
    using conn = await connect(await program.port());
    const flood = new Uint8Array(1 << 20);
    const sending = (async () => {
      for (let i = 0; i < 64; i++) await conn.write(flood);
    })().catch(() => {});
    await program.waitFor(/^Connected /);
    program.child.kill(signal);
    await program.waitFor(new RegExp(`^Shutting down on ${signal}`));
    program.child.kill(signal);
    await program.waitFor(
      new RegExp(`^Exiting at once on a second signal \\(${signal}\\)$`),
    );
    assert.equal((await program.end()).code, exit);
    await sending;
  }
});

Deno.test("server -x writes each connection's traffic as a hex dump naming it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/dump.txt`;
    await using program = new Program(["-p", "0", "-x", file], ["-N", "-W"]);
    using conn = await connect(await program.port());
    assert.equal(await ask(conn, "hello"), "HELLO");
    await program.waitFor(/^Closed /);
    program.child.kill("SIGTERM");
    assert.equal((await program.end()).code, 0);
    assert.equal(
      await Deno.readTextFile(file),
      "#1 < 00000000  68 65 6c 6c 6f" + " ".repeat(36) + "|hello|\n" +
        "#1 > 00000000  48 45 4c 4c 4f" + " ".repeat(36) + "|HELLO|\n",
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server -x puts each closed connection's dump in the file while it runs", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/dump.txt`;
    await using program = new Program(["-p", "0", "-x", file], ["-N", "-W"]);
    const port = await program.port();
    const lines = (id: number, text: string) =>
      `#${id} < 00000000  ${
        [...encoder.encode(text)].map((b) => b.toString(16)).join(" ")
      }${" ".repeat(51 - 3 * text.length)}|${text}|\n` +
      `#${id} > 00000000  ${
        [...encoder.encode(text.toUpperCase())].map((b) => b.toString(16))
          .join(" ")
      }${" ".repeat(51 - 3 * text.length)}|${text.toUpperCase()}|\n`;
    for (const [id, text] of [[1, "one"], [2, "two!"]] as const) {
      {
        using conn = await connect(port);
        assert.equal(await ask(conn, text), text.toUpperCase());
      }
      // The server logs "Closed" once the connection's last dumped line is
      // written: the file must hold it now, while the server still runs.
      await program.waitFor(new RegExp(`^Closed .* \\(#${id}\\)`));
      assert.equal(
        await Deno.readTextFile(file),
        lines(1, "one") + (id === 2 ? lines(2, "two!") : ""),
      );
    }
    program.child.kill("SIGTERM");
    assert.equal((await program.end()).code, 0);
    assert.equal(
      await Deno.readTextFile(file),
      lines(1, "one") + lines(2, "two!"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server --cert/--key serves TLS", async () => {
  await using program = new Program([
    "-p",
    "0",
    "--cert",
    fileURLToPath(new URL("tls_localhost_cert.pem", testdata)),
    "--key",
    fileURLToPath(new URL("tls_localhost_key.pem", testdata)),
  ], ["-N", "-R"]);
  const [, port] = await program.waitFor(/^Listening on .*:(\d+) with TLS/);
  const ca = await Deno.readTextFile(new URL("tls_ca.pem", testdata));
  using conn = await Deno.connectTls({
    hostname: "localhost",
    port: +port!,
    caCerts: [ca],
  });
  assert.equal(await ask(conn, "tls"), "TLS");
});

// ---------------------------------------------------------------------------
// UDP, through the udp helper's code

Deno.test("server -u -s echo answers the client program -u, datagram by datagram", async () => {
  await using program = new Program(["-u", "-s", "echo", "-p", "0"]);
  const [, port] = await program.waitFor(
    /^Listening on 127\.0\.0\.1:(\d+)\/udp \(service: echo\)$/,
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", clientPath, "-u", "-q", "2s", "127.0.0.1", port!],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await ReadableStream.from([encoder.encode("one\ntwo\n")]).pipeTo(child.stdin);
  const out = await child.output();
  assert.equal(out.code, 0, decoder.decode(out.stderr));
  assert.equal(decoder.decode(out.stdout), "one\ntwo\n");
  program.child.kill("SIGINT");
  assert.equal((await program.end()).code, 0);
});

Deno.test({
  name: "server -u answers a socat UDP client",
  ignore: !HAS.socat,
  async fn() {
    await using program = new Program(["-u", "-p", "0"]);
    const port = await program.port();
    const socat = new Deno.Command("socat", {
      args: ["-t", "2", "-", `UDP:127.0.0.1:${port}`],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await ReadableStream.from([encoder.encode("ping\n")]).pipeTo(socat.stdin);
    const out = await socat.output();
    assert.equal(decoder.decode(out.stdout), "PING\n");
  },
});

// ---------------------------------------------------------------------------
// Foreign clients

async function foreignClient(
  command: string,
  args: string[],
  input: Uint8Array,
): Promise<Uint8Array> {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [, out] = await Promise.all([
    ReadableStream.from([input]).pipeTo(child.stdin),
    child.output(),
  ]);
  assert.equal(out.code, 0, `${command}: ${decoder.decode(out.stderr)}`);
  return out.stdout;
}

for (
  const [name, command, args] of [
    ["ncat", "ncat", (port: number) => ["127.0.0.1", `${port}`]],
    ["nc", "nc", (port: number) => ["-N", "127.0.0.1", `${port}`]],
    ["socat", "socat", (port: number) => ["-", `TCP:127.0.0.1:${port}`]],
  ] as const
) {
  Deno.test({
    name:
      `server upper-cases 1 MiB byte-exact for a ${name} client that half-closes`,
    ignore: !HAS[name],
    async fn() {
      await using program = new Program(["-p", "0", "-q"]);
      const port = await program.port();
      const input = concat([...noise(16, 65536, 31)]);
      const output = await foreignClient(command, args(port), input);
      assert.deepEqual(output, upperCase(input));
    },
  });
}

// ---------------------------------------------------------------------------
// Bad invocations

const USAGE_ERRORS: [string[], string][] = [
  [
    ["--bogus"],
    'Cannot parse --bogus as it is not a known flag: current value is "--bogus"',
  ],
  [
    ["-p", "99999"],
    'Cannot parse --port as it must be an integer from 0 to 65535: current value is "99999"',
  ],
  [
    ["-p", "-1"],
    'Cannot parse --port as it must be an integer from 0 to 65535: current value is "-1"',
  ],
  [
    ["--port"],
    "Cannot parse --port as it needs a value: current value is none",
  ],
  [
    ["localhost", "9990", "x"],
    'Cannot parse arguments as the server takes at most a host and a port: current extra argument is "x"',
  ],
  [
    ["-p", "1", "2"],
    'Cannot parse --port as the port is also given as an argument: current values are "1" and "2"',
  ],
  // Netcat habits get a hint.
  [
    ["-l", "9990"],
    'Cannot parse -l as it is not a known flag: current value is "-l"; -l is not needed: the server program always listens',
  ],
  [
    ["-k"],
    'Cannot parse -k as it is not a known flag: current value is "-k"; -k is already the default: the server keeps listening and serves many clients at once',
  ],
  [
    ["-N"],
    `Cannot parse -N as it is not a known flag: current value is "-N"; -N is already the default: the server sends FIN once a client's answer is complete`,
  ],
  [
    ["--handshake-timeout", "1s"],
    "Cannot use --handshake-timeout without --cert as only TLS has a handshake: add --cert and --key",
  ],
  [
    ["--host", ""],
    'Cannot parse --host as it must be a name or an address: current value is ""',
  ],
  [
    ["-s", "shout"],
    'Cannot parse --service as it must be one of upper, echo, discard, chargen, daytime, chat: current value is "shout"',
  ],
  [
    ["-s", "echo", "-e", "cat"],
    'Cannot use --exec with --service as --exec replaces the service: current service is "echo"',
  ],
  [
    ["-e", "tr 'a-z"],
    `Cannot parse --exec as its ' quote is not closed: current value is "tr 'a-z"`,
  ],
  [
    ["-e", "  "],
    'Cannot parse --exec as it must name a program to run: current value is "  "',
  ],
  [
    ["-i", "soon"],
    'Cannot parse --idle-timeout as it must be a duration such as 500ms, 30s or 2m (a bare number is seconds): current value is "soon"',
  ],
  [
    ["--grace-period", "1000h"],
    'Cannot parse --grace-period as it must be at most 596h (2^31 - 1 ms): current value is "1000h"',
  ],
  [
    ["--max-connections", "0"],
    'Cannot parse --max-connections as it must be an integer of at least 1: current value is "0"',
  ],
  [
    ["--connection-policy", "drop"],
    'Cannot parse --connection-policy as it must be queue or refuse: current value is "drop"',
  ],
  [
    ["--allow", "foo"],
    'Cannot parse --allow as it must be an IP address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32: current value is "foo"',
  ],
  [
    ["--deny", "10.0.0.0/33"],
    'Cannot parse --deny as the prefix length must be at most 32 for IPv4 and 128 for IPv6: current value is "10.0.0.0/33"',
  ],
  [
    ["--trusted-proxy", "10.0.0.1"],
    "Cannot use --trusted-proxy without --proxy-protocol as only PROXY headers come from proxies: add --proxy-protocol",
  ],
  [
    ["--cert", "cert.pem"],
    "Cannot serve TLS as --cert and --key go together: current value of --key is none",
  ],
  [
    ["-U", "/tmp/s", "-p", "1"],
    'Cannot use --port with --unix as a Unix socket has only a path: current value is "/tmp/s"',
  ],
  [
    ["-q", "-v"],
    "Cannot use --quiet with --verbose as they ask for opposite logs: choose one",
  ],
  [
    ["-u", "-s", "chat"],
    'Cannot parse --service as it must be one of upper, echo, discard with --udp: current value is "chat"',
  ],
  [
    ["-u", "-e", "cat"],
    "Cannot use --exec with --udp as it applies to TCP only: drop one of them",
  ],
  [
    ["--stats", "0"],
    'Cannot parse --stats as it must be longer than 0: current value is "0"',
  ],
  [
    ["--reuse-port=1"],
    'Cannot parse --reuse-port as it takes no value: current value is "1"',
  ],
  [
    ["-v", "-v"],
    "Cannot parse --verbose as it may be given once: it is given twice",
  ],
];

Deno.test("server exits 2 with one line naming the problem for each bad command line", async () => {
  for (const [args, message] of USAGE_ERRORS) {
    const { code, rest } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(rest, `error: ${message} (see --help)\n`, args.join(" "));
  }
  const help = await run(["-h", "-p", "x"]);
  assert.equal(help.code, 0);
});

Deno.test("server exits 1 naming the problem: port in use, address not available, no permission, files, --exec", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const cases: [string[], string[], string | RegExp][] = [
    [
      ["-p", `${taken.addr.port}`],
      ["-N"],
      `Cannot listen on 127.0.0.1:${taken.addr.port} as the address is in use: choose another --port, or 0 for any free one`,
    ],
    // 192.0.2.1 is reserved for documentation: no interface here has it.
    [
      ["--host", "192.0.2.1", "-p", "0"],
      ["-N"],
      "Cannot listen on 192.0.2.1:0 as the address is not available on this machine: choose another --host",
    ],
    [
      ["-p", "0"],
      [],
      'Cannot listen on 127.0.0.1:0 as net access to "127.0.0.1:0" is not allowed: run again with -N or --allow-net=127.0.0.1:0',
    ],
    [
      [
        "--cert",
        "/nonexistent/c.pem",
        "--key",
        "/nonexistent/k.pem",
        "-p",
        "0",
      ],
      ["-N", "-R"],
      'Cannot read --cert file "/nonexistent/c.pem" as it does not exist: check the path',
    ],
    [
      ["--cert", "/nonexistent/c.pem", "--key", "k.pem", "-p", "0"],
      ["-N"],
      /^Cannot read --cert file "\/nonexistent\/c\.pem" as read access to "\/nonexistent\/c\.pem" is not allowed: run again with -R or --allow-read=/,
    ],
    [
      ["-e", "tr a-z A-Z", "-p", "0"],
      ["-N"],
      'Cannot run "tr" for --exec as run access is not allowed: run again with --allow-run or --allow-run=tr',
    ],
    [
      ["-e", "no-such-program-x", "-p", "0"],
      ["-N", "--allow-run"],
      'Cannot run "no-such-program-x" for --exec as the program was not found: check its name or PATH',
    ],
    [
      ["-x", "/nonexistent/dump", "-p", "0"],
      ["-N", "-W"],
      'Cannot write --hex-dump file "/nonexistent/dump" as it does not exist: check the path',
    ],
    [
      ["-p", "0", "--reuse-port"],
      ["-N"],
      "Cannot listen on 127.0.0.1:0 with --reuse-port as Deno needs its --unstable-net flag for it: run again with --unstable-net",
    ],
  ];
  for (const [args, permissions, line] of cases) {
    const { code, rest } = await run(args, permissions);
    assert.equal(code, 1, args.join(" "));
    const first = rest.split("\n")[0]!;
    if (typeof line === "string") {
      assert.equal(rest, `error: ${line}\n`, args.join(" "));
    } else {
      assert.match(first.replace(/^error: /, ""), line, args.join(" "));
    }
  }
});

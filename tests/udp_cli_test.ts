/**
 * The `--udp` mode of the programs (`_cli/udp.ts`), run as subprocesses
 * through a small entry script, against our library, against each other
 * and against socat where it is installed.
 */

import assert from "node:assert/strict";
import { listenDatagram, serveDatagrams } from "../datagram.ts";
import { upperCase } from "../services.ts";
import { hasIpv6Loopback, installed } from "./_util.ts";

/** Whether this machine has IPv6 loopback; the IPv6 tests skip without it. */
const HAS_IPV6 = hasIpv6Loopback("udp_cli_test");
/** The loopback addresses to test with. */
const LOOPBACKS = HAS_IPV6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"];

const ENTRY = new URL("./testdata/udp_entry.ts", import.meta.url).pathname;
const ROOT = new URL("../", import.meta.url).pathname;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A running subprocess with its stderr read line by line. */
class Program implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  #stdin: WritableStreamDefaultWriter<Uint8Array>;
  #stdout: ReadableStreamDefaultReader<Uint8Array>;
  #stdoutText = "";
  #waiters: (() => void)[] = [];
  #stderrDone: Promise<void>;
  #status: Promise<Deno.CommandStatus>;

  constructor(command: string, args: string[]) {
    const child = this.child = new Deno.Command(command, {
      args,
      cwd: ROOT,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#stdin = this.child.stdin.getWriter();
    this.#stdout = this.child.stdout.getReader();
    this.#status = this.child.status;
    this.#stderrDone = (async () => {
      let pending = "";
      for await (
        const text of child.stderr.pipeThrough(new TextDecoderStream())
      ) {
        pending += text;
        const parts = pending.split("\n");
        pending = parts.pop()!;
        this.lines.push(...parts);
        for (const wake of this.#waiters.splice(0)) wake();
      }
      if (pending) this.lines.push(pending);
      for (const wake of this.#waiters.splice(0)) wake();
    })();
  }

  static entry(mode: "server" | "client", options: object): Program {
    return new Program(Deno.execPath(), [
      "run",
      "-N",
      "-R",
      "-W",
      ENTRY,
      mode,
      JSON.stringify(options),
    ]);
  }

  /** Resolves with the first stderr line matching `pattern`. */
  async line(pattern: RegExp): Promise<RegExpMatchArray> {
    let ended = false;
    this.#stderrDone.then(() => ended = true);
    while (true) {
      for (const line of this.lines) {
        const match = line.match(pattern);
        if (match) return match;
      }
      if (ended) {
        throw new Error(
          `stderr ended without ${pattern}:\n${this.lines.join("\n")}`,
        );
      }
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        this.#stderrDone.then(resolve);
      });
    }
  }

  write(text: string | Uint8Array): Promise<void> {
    return this.#stdin.write(
      typeof text === "string" ? encoder.encode(text) : text,
    );
  }

  async closeInput(): Promise<void> {
    await this.#stdin.close().catch(() => {});
  }

  /** Reads stdout until it holds `text` in total; returns all of it. */
  async stdoutUntil(text: string): Promise<string> {
    while (!this.#stdoutText.includes(text)) {
      const { done, value } = await this.#stdout.read();
      if (done) {
        throw new Error(
          `stdout ended without ${JSON.stringify(text)}: ${
            JSON.stringify(this.#stdoutText)
          }\nstderr:\n${this.lines.join("\n")}`,
        );
      }
      this.#stdoutText += decoder.decode(value, { stream: true });
    }
    return this.#stdoutText;
  }

  /** Waits for the exit; returns its code, all of stdout and stderr. */
  async finish(): Promise<{ code: number; stdout: string; stderr: string }> {
    await this.closeInput();
    while (true) {
      const { done, value } = await this.#stdout.read();
      if (done) break;
      this.#stdoutText += decoder.decode(value, { stream: true });
    }
    const { code } = await this.#status;
    await this.#stderrDone;
    return {
      code,
      stdout: this.#stdoutText,
      stderr: this.lines.join("\n"),
    };
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await this.finish().catch(() => {});
  }
}

const SOCAT = installed("socat", {
  args: ["-V"],
  apt: "socat",
  file: "udp_cli_test",
});

// ---------------------------------------------------------------------------
// The server

for (
  const [hostname, service] of [
    ["127.0.0.1", "upper"],
    ["::1", "echo"],
  ] as const
) {
  if (!LOOPBACKS.includes(hostname)) continue;
  Deno.test(`the UDP server answers each datagram to its sender (${hostname}, ${service})`, async () => {
    await using server = Program.entry("server", {
      hostname,
      port: 0,
      service,
    });
    const [, port] = await server.line(
      /^Listening on (?:\[::1\]|127\.0\.0\.1):(\d+)\/udp \(service: (?:upper|echo)\)$/,
    );
    await using client = await listenDatagram({
      hostname,
      remoteAddr: { hostname, port: Number(port) },
    });
    const reader = client.readable.getReader();
    for (const text of ["hello\n", "wörld"]) {
      await client.send(encoder.encode(text));
      const { value } = await reader.read();
      assert.equal(
        decoder.decode(value!.data),
        service === "upper" ? text.toUpperCase().replace("Ö", "ö") : text,
      );
    }
    reader.releaseLock();
    const from = hostname === "::1"
      ? `[::1]:${client.addr.port}`
      : `127.0.0.1:${client.addr.port}`;
    await server.line(
      new RegExp(
        `^Datagram from ${
          from.replace(/[[\].]/g, "\\$&")
        }: 6 bytes in, 6 bytes out$`,
      ),
    );
    server.child.kill("SIGTERM");
    const { code, stderr } = await server.finish();
    assert.equal(code, 0);
    assert.match(stderr, /^Shutting down on SIGTERM$/m);
    assert.match(stderr, /^Stopped: 2 datagrams in, 2 answered, 0 dropped$/m);
  });
}

Deno.test("the UDP server with discard answers nothing and logs it; quiet logs no datagrams", async () => {
  await using server = Program.entry("server", {
    hostname: "127.0.0.1",
    port: 0,
    service: "discard",
  });
  const [, port] = await server.line(/^Listening on 127\.0\.0\.1:(\d+)\/udp/);
  await using client = await listenDatagram({
    remoteAddr: { port: Number(port) },
  });
  await client.send(encoder.encode("gone"));
  await server.line(/^Datagram from .*: 4 bytes in, no answer$/);
  server.child.kill("SIGINT");
  const { code, stderr } = await server.finish();
  assert.equal(code, 0);
  assert.match(stderr, /^Stopped: 1 datagrams in, 0 answered, 0 dropped$/m);
  assert.equal(client.datagramsReceived, 0);

  await using quiet = Program.entry("server", {
    hostname: "127.0.0.1",
    port: 0,
    service: "upper",
    quiet: true,
  });
  const [, quietPort] = await quiet.line(/^Listening on .*:(\d+)\/udp/);
  await client.send(encoder.encode("x"), { port: Number(quietPort) });
  const reader = client.readable.getReader();
  assert.equal(decoder.decode((await reader.read()).value!.data), "X");
  reader.releaseLock();
  quiet.child.kill("SIGTERM");
  const result = await quiet.finish();
  assert.equal(result.code, 0);
  assert.doesNotMatch(result.stderr, /Datagram from/);
});

Deno.test("the UDP server cannot bind a port in use: exit 1 with one clear line", async () => {
  await using taken = await listenDatagram();
  await using server = Program.entry("server", {
    hostname: "127.0.0.1",
    port: taken.addr.port,
    service: "upper",
  });
  const { code, stderr } = await server.finish();
  assert.equal(code, 1);
  assert.equal(
    stderr,
    `error: Cannot bind datagram endpoint as the address is in use: current address is 127.0.0.1:${taken.addr.port}`,
  );
});

Deno.test("the UDP server writes a hex dump of both directions, labelled with the peer", async () => {
  const file = await Deno.makeTempFile({ suffix: ".hex" });
  try {
    await using server = Program.entry("server", {
      hostname: "127.0.0.1",
      port: 0,
      service: "upper",
      quiet: true,
      hexDump: file,
    });
    const [, port] = await server.line(/^Listening on .*:(\d+)\/udp/);
    await using client = await listenDatagram({
      remoteAddr: { port: Number(port) },
    });
    await client.send(encoder.encode("hi\n"));
    const reader = client.readable.getReader();
    await reader.read();
    reader.releaseLock();
    server.child.kill("SIGTERM");
    assert.equal((await server.finish()).code, 0);
    const label = `127.0.0.1:${client.addr.port}`;
    assert.deepEqual((await Deno.readTextFile(file)).split("\n"), [
      `${label} < 00000000  68 69 0a${" ".repeat(42)}|hi.|`,
      `${label} > 00000000  48 49 0a${" ".repeat(42)}|HI.|`,
      "",
    ]);
  } finally {
    await Deno.remove(file);
  }
});

// ---------------------------------------------------------------------------
// The client

/** An upper-case server of our library that records what it received. */
async function recordingServer(hostname = "127.0.0.1") {
  const received: string[] = [];
  const server = await serveDatagrams({ hostname, port: 0 }, (data) => {
    received.push(decoder.decode(data));
    return upperCase(data);
  });
  return Object.assign(server, { texts: received });
}

Deno.test("the UDP client sends each line as a datagram and prints the answers", async () => {
  for (const hostname of LOOPBACKS) {
    await using server = await recordingServer(hostname);
    await using client = Program.entry("client", {
      hostname,
      port: server.addr.port,
      quitAfterEof: 60_000,
    });
    // All lines in one write: the client still sends one datagram each.
    await client.write("one\ntwo\nthree");
    await client.stdoutUntil("ONE\nTWO\n");
    await client.closeInput(); // the last line, without "\n", goes now
    await client.stdoutUntil("THREE"); // within the quit delay
    client.child.kill("SIGINT");
    const { code, stdout } = await client.finish();
    assert.equal(code, 0);
    assert.equal(stdout, "ONE\nTWO\nTHREE");
    assert.deepEqual(server.texts, ["one\n", "two\n", "three"]);
  }
});

Deno.test("the UDP client sends CR LF with crlf, and splits a long line at the datagram limit", async () => {
  await using server = await recordingServer();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: server.addr.port,
    quitAfterEof: 0,
    crlf: true,
  });
  const long = "a".repeat(70000);
  await client.write(`x\n${long}\n`);
  await client.stdoutUntil(`X\r\n${"A".repeat(70000)}\r\n`);
  const { code } = await client.finish();
  assert.equal(code, 0);
  assert.deepEqual(server.texts.map((text) => text.length), [
    3,
    65507,
    70000 + 2 - 65507,
  ]);
  assert.equal(server.texts[0], "x\r\n");
});

Deno.test("the UDP client quits after end of input plus the delay, without answers", async () => {
  await using silent = await listenDatagram();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: silent.addr.port,
    quitAfterEof: 50,
  });
  await client.write("anyone?\n");
  const { code, stdout } = await client.finish();
  assert.equal(code, 0);
  assert.equal(stdout, "");
  const reader = silent.readable.getReader();
  assert.equal(decoder.decode((await reader.read()).value!.data), "anyone?\n");
  reader.releaseLock();
});

Deno.test("the UDP client prints only the server's datagrams, and totals with verbose", async () => {
  await using server = await listenDatagram();
  await using stranger = await listenDatagram();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: server.addr.port,
    verbose: true,
  });
  await client.write("hi\n");
  const reader = server.readable.getReader();
  const { value } = await reader.read();
  reader.releaseLock();
  const clientAddr = value!.remoteAddr;
  await stranger.send(encoder.encode("spoof\n"), clientAddr);
  await client.line(
    /^Ignored a datagram of 6 bytes from 127\.0\.0\.1:\d+: not the server$/,
  );
  await server.send(encoder.encode("real\n"), clientAddr);
  await client.stdoutUntil("real\n");
  // Input stays open: Ctrl-C ends it.
  client.child.kill("SIGINT");
  const { code, stdout, stderr } = await client.finish();
  assert.equal(code, 0);
  assert.equal(stdout, "real\n");
  assert.match(
    stderr,
    /^Sent 1 datagram \(3 bytes\), received 2 \(11 bytes\), 0 dropped$/m,
  );
});

Deno.test("the UDP client exits 1 after the idle timeout while input stays open", async () => {
  await using silent = await listenDatagram();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: silent.addr.port,
    idleTimeout: 100,
  });
  await client.write("hi\n");
  const error = await client.line(/^error: /);
  assert.equal(
    error.input,
    "error: Cannot go on as nothing was sent or received for 100 ms (idle timeout)",
  );
  const { code } = await client.finish();
  assert.equal(code, 1);
});

Deno.test("the UDP client stops on SIGINT with exit 0", async () => {
  await using silent = await listenDatagram();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: silent.addr.port,
    recvOnly: true,
    verbose: true,
  });
  await client.line(
    /^Sending to 127\.0\.0\.1:\d+\/udp from 127\.0\.0\.1:\d+\/udp$/,
  );
  client.child.kill("SIGINT");
  const { code } = await client.finish();
  assert.equal(code, 0);
});

Deno.test("the UDP client reports a host that does not resolve: exit 1", async () => {
  await using client = Program.entry("client", {
    hostname: "no-such-host.invalid",
    port: 9,
  });
  const { code, stderr } = await client.finish();
  assert.equal(code, 1);
  assert.equal(
    stderr,
    'error: Cannot resolve host as the name is not known: current value is "no-such-host.invalid"',
  );
});

Deno.test("the UDP client with chunks sends each read as one datagram; sendOnly prints nothing", async () => {
  await using server = await recordingServer();
  await using client = Program.entry("client", {
    hostname: "127.0.0.1",
    port: server.addr.port,
    chunks: true,
    sendOnly: true,
  });
  await client.write("a\nb\n");
  // Wait for the datagram to arrive before the end of input: a second
  // write must not merge with the first in one read.
  while (server.texts.length < 1) {
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  const { code, stdout } = await client.finish();
  assert.equal(code, 0);
  assert.equal(stdout, "");
  assert.deepEqual(server.texts, ["a\nb\n"]);
});

// ---------------------------------------------------------------------------
// The two against each other, and against socat

Deno.test("the UDP client and server programs talk to each other", async () => {
  const hostname = LOOPBACKS.at(-1)!; // IPv6 where there is
  await using server = Program.entry("server", {
    hostname,
    port: 0,
    service: "upper",
  });
  const [, port] = await server.line(/^Listening on .*:(\d+)\/udp/);
  await using client = Program.entry("client", {
    hostname,
    port: Number(port),
    quitAfterEof: 0,
  });
  await client.write("ping\npong\n");
  await client.stdoutUntil("PING\nPONG\n");
  const result = await client.finish();
  assert.equal(result.code, 0);
  assert.equal(result.stdout, "PING\nPONG\n");
  server.child.kill("SIGTERM");
  const { code, stderr } = await server.finish();
  assert.equal(code, 0);
  assert.match(stderr, /^Stopped: 2 datagrams in, 2 answered, 0 dropped$/m);
});

/** A port that was free a moment ago, for peers that cannot take port 0. */
async function freePort(hostname: string): Promise<number> {
  await using probe = await listenDatagram({ hostname });
  return probe.addr.port;
}

Deno.test({
  name: "socat as a UDP client gets the server program's answers (v4 and v6)",
  ignore: !SOCAT,
  async fn() {
    for (const hostname of LOOPBACKS) {
      await using server = Program.entry("server", {
        hostname,
        port: 0,
        service: "upper",
      });
      const [, port] = await server.line(/^Listening on .*:(\d+)\/udp/);
      const target = hostname === "::1"
        ? `UDP6:[::1]:${port}`
        : `UDP4:127.0.0.1:${port}`;
      await using socat = new Program("socat", ["-", target]);
      await socat.write("from socat\n");
      await socat.stdoutUntil("FROM SOCAT\n");
      await socat.write("again\n");
      const stdout = await socat.stdoutUntil("AGAIN\n");
      assert.equal(stdout, "FROM SOCAT\nAGAIN\n");
      const result = await socat.finish();
      assert.equal(result.code, 0, result.stderr);
      server.child.kill("SIGTERM");
      assert.equal((await server.finish()).code, 0);
    }
  },
});

Deno.test({
  name: "the client program talks to a socat UDP echo peer (v4 and v6)",
  ignore: !SOCAT,
  async fn() {
    for (const hostname of LOOPBACKS) {
      const port = await freePort(hostname);
      const listen = hostname === "::1"
        ? `UDP6-LISTEN:${port},bind=[::1]`
        : `UDP4-LISTEN:${port},bind=127.0.0.1`;
      await using socat = new Program("socat", ["-d", "-d", listen, "PIPE"]);
      await socat.line(/listening on/);
      await using client = Program.entry("client", {
        hostname,
        port,
        quitAfterEof: 0,
      });
      await client.write("echo me\nand me\n");
      await client.stdoutUntil("echo me\nand me\n");
      const result = await client.finish();
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "echo me\nand me\n");
    }
  },
});

// ---------------------------------------------------------------------------
// Permissions

Deno.test("without --allow-net the server and the client say which permission is missing", async () => {
  const run = (mode: string, options: object) =>
    new Program(Deno.execPath(), [
      "run",
      "-R",
      ENTRY,
      mode,
      JSON.stringify(options),
    ]);
  await using server = run("server", {
    hostname: "127.0.0.1",
    port: 0,
    service: "upper",
  });
  const served = await server.finish();
  assert.equal(served.code, 1);
  assert.equal(
    served.stderr,
    'error: Requires net access to "127.0.0.1:0", run again with the --allow-net flag',
  );
  await using client = run("client", { hostname: "localhost", port: 9 });
  const sent = await client.finish();
  assert.equal(sent.code, 1);
  assert.equal(
    sent.stderr,
    'error: Requires net access to "localhost:9", run again with the --allow-net flag',
  );
});

// ---------------------------------------------------------------------------
// The examples

Deno.test("examples/udp_upper_server.ts answers examples/udp_ping.ts", async () => {
  await using server = new Program(Deno.execPath(), [
    "run",
    "-N",
    "examples/udp_upper_server.ts",
    "0",
  ]);
  // The example logs to stdout.
  const stdout = await server.stdoutUntil("/udp\n");
  const port = Number(stdout.match(/:(\d+)\/udp/)![1]);
  const { code, stdout: answer } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", "examples/udp_ping.ts", String(port), "hello"],
    cwd: ROOT,
    stderr: "inherit",
  }).output();
  assert.equal(code, 0);
  assert.equal(decoder.decode(answer), "HELLO\n");
  server.child.kill("SIGINT");
  const result = await server.finish();
  assert.equal(result.code, 0);
  assert.match(result.stdout, /Stopped: 1 datagrams, 1 answered, 0 dropped\n$/);
});

Deno.test("examples/udp_ping.ts exits 1 when nobody answers", async () => {
  await using silent = await listenDatagram();
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", "examples/udp_ping.ts", String(silent.addr.port)],
    cwd: ROOT,
  }).output();
  assert.equal(code, 1);
  assert.equal(
    decoder.decode(stderr),
    `error: No answer from 127.0.0.1:${silent.addr.port}/udp within 1s\n`,
  );
});

// ---------------------------------------------------------------------------
// The real programs, once their --udp flag calls this module

const PROGRAMS_HAVE_UDP = await (async () => {
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "server.ts", "--help"],
    cwd: ROOT,
    stderr: "null",
  }).output();
  return decoder.decode(stdout).includes("--udp");
})();
if (!PROGRAMS_HAVE_UDP) {
  console.log(
    "udp_cli_test: server.ts --help has no --udp yet: skipping the program tests",
  );
}

Deno.test({
  name: "server.ts --udp and client.ts --udp talk to each other",
  ignore: !PROGRAMS_HAVE_UDP,
  async fn() {
    await using server = new Program(Deno.execPath(), [
      "run",
      "-N",
      "server.ts",
      "--udp",
      "--host",
      "127.0.0.1",
      "-p",
      "0",
      "-s",
      "echo",
    ]);
    const [, port] = await server.line(
      /^Listening on 127\.0\.0\.1:(\d+)\/udp \(service: echo\)$/,
    );
    await using client = new Program(Deno.execPath(), [
      "run",
      "-N",
      "client.ts",
      "--udp",
      "-q",
      "0",
      "127.0.0.1",
      port!,
    ]);
    await client.write("same\nagain\n");
    await client.stdoutUntil("same\nagain\n");
    const result = await client.finish();
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "same\nagain\n");
    server.child.kill("SIGTERM");
    const { code, stderr } = await server.finish();
    assert.equal(code, 0);
    assert.match(stderr, /^Stopped: 2 datagrams in, 2 answered, 0 dropped$/m);
  },
});

// The client program as a real subprocess, against our server, in-test
// Deno peers and foreign peers (ncat, OpenBSD nc, socat) where installed.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { fileURLToPath } from "node:url";
import { serve } from "../server.ts";
import { chargen, EchoStream, UpperCaseStream } from "../services.ts";
import denoJson from "../deno.json" with { type: "json" };
import { concat, installed, noise, readAll, readBytes } from "./_util.ts";

const clientPath = fileURLToPath(new URL("../client.ts", import.meta.url));
const testdata = new URL("./testdata/", import.meta.url);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const FILE = "client_cli_test";
const HAS = {
  ncat: installed("ncat", { apt: "ncat", file: FILE }),
  nc: installed("nc", { args: ["-h"], apt: "netcat-openbsd", file: FILE }),
  socat: installed("socat", { args: ["-V"], apt: "socat", file: FILE }),
  script: installed("script", { apt: "util-linux", file: FILE }),
};

function spawnClient(args: string[], permissions = ["-N"]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, clientPath, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

interface Result {
  code: number;
  stdout: Uint8Array;
  text: string;
  stderr: string;
}

/** Runs the client with `input` on stdin (closed at its end). */
async function run(
  args: string[],
  input: string | Uint8Array = "",
  permissions = ["-N"],
): Promise<Result> {
  const child = spawnClient(args, permissions);
  const bytes = typeof input === "string" ? encoder.encode(input) : input;
  const [, output] = await Promise.all([
    ReadableStream.from([bytes]).pipeTo(child.stdin).catch(() => {}),
    child.output(),
  ]);
  return {
    code: output.code,
    stdout: output.stdout,
    text: decoder.decode(output.stdout),
    stderr: decoder.decode(output.stderr),
  };
}

function portOf(server: { addr: Deno.Addr }): string {
  return `${(server.addr as Deno.NetAddr).port}`;
}

/** A free port right now (for foreign listeners that cannot take 0). */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

/** A foreign program, its stderr read until `ready` matches. */
async function foreign(
  command: string,
  args: string[],
  ready: RegExp,
  stdin: "piped" | "null" = "null",
): Promise<Deno.ChildProcess & AsyncDisposable> {
  const child = new Deno.Command(command, {
    args,
    stdin,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const [mine, rest] = child.stderr.tee();
  rest.pipeTo(new WritableStream()).catch(() => {});
  const reader = mine.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!ready.test(text)) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`${command} ended before ${ready}: ${text}`);
    text += value;
  }
  reader.releaseLock();
  mine.cancel().catch(() => {});
  return Object.assign(child, {
    async [Symbol.asyncDispose]() {
      try {
        child.kill("SIGKILL");
      } catch { /* ended */ }
      await child.status;
      await child.stdout.cancel().catch(() => {});
    },
  });
}

// ---------------------------------------------------------------------------
// Help, version, the basic exchange

Deno.test("client --help lists every flag and the exit codes; -h wins over other flags", async () => {
  const { code, text } = await run(["--help"]);
  assert.equal(code, 0);
  assert.match(
    text,
    /^Usage: deno run -N jsr:@x\/sock\/client \[options\] \[host\] \[port\]/,
  );
  for (
    const flag of [
      "--host",
      "--port",
      "--unix",
      "--tls",
      "--ca",
      "--connect-timeout",
      "--idle-timeout",
      "--quit-after-eof",
      "--send-only",
      "--recv-only",
      "--no-shutdown",
      "--crlf",
      "--hex-dump",
      "--udp",
      "--verbose",
      "--version",
    ]
  ) {
    assert.ok(text.includes(flag), flag);
  }
  assert.match(text, /^ {2}130 /m);
  const both = await run(["-h", "-p", "x"]);
  assert.equal(both.code, 0);
  assert.equal(both.text, text);
});

Deno.test("client --version prints the version from deno.json", async () => {
  const { code, text } = await run(["--version"]);
  assert.equal(code, 0);
  assert.match(
    text,
    new RegExp(`^client ${denoJson.version} \\(@x/sock, Deno \\d`),
  );
});

Deno.test("client takes host and port as arguments, sends stdin, half-closes and prints the whole answer", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const { code, text, stderr } = await run(
    ["127.0.0.1", portOf(server)],
    "one\ntwo\n",
  );
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.equal(text, "ONE\nTWO\n");
});

Deno.test("client reaches an IPv6 host given as an argument", async () => {
  await using server = serve(
    { hostname: "::1", port: 0 },
    () => new UpperCaseStream(),
  );
  const { code, text } = await run(["::1", portOf(server)], "six");
  assert.equal(code, 0);
  assert.equal(text, "SIX");
});

Deno.test("client brings 32 MiB back byte-identical through an echo server", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const child = spawnClient(["-p", portOf(server)]);
  const sentHash = createHash("sha256");
  const gotHash = createHash("sha256");
  let got = 0;
  const [, , status] = await Promise.all([
    ReadableStream.from(noise(512, 65536))
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
  assert.equal(got, 32 * 1024 * 1024);
  assert.equal(gotHash.digest("hex"), sentHash.digest("hex"));
});

// ---------------------------------------------------------------------------
// Directions and endings

Deno.test("client --send-only sends all of stdin and FIN, prints nothing of what it receives", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const input = concat([...noise(16, 65536, 7)]);
  const served = listener.accept().then(async (conn) => {
    // Talk back a lot: the client must drain and discard it.
    const talking = conn.write(new Uint8Array(256 * 1024).fill(0x41))
      .catch(() => 0);
    const got = await readAll(conn);
    await talking;
    conn.close();
    return got;
  });
  const { code, stdout, stderr } = await run(
    ["--send-only", "-p", `${listener.addr.port}`],
    input,
  );
  assert.equal(stderr, "");
  assert.equal(code, 0);
  assert.equal(stdout.length, 0);
  assert.deepEqual(await served, input);
});

Deno.test("client --recv-only reads no input and sends nothing, not even FIN", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    await conn.write(encoder.encode("hello\n"));
    await conn.closeWrite();
    // Only the client's exit ends this read: it sent nothing before.
    const got = await readAll(conn);
    conn.close();
    return got;
  });
  const { code, text } = await run(
    ["--recv-only", "127.0.0.1", `${listener.addr.port}`],
    "this must not be sent\n",
  );
  assert.equal(code, 0);
  assert.equal(text, "hello\n");
  assert.equal((await served).length, 0);
});

Deno.test("client --no-shutdown sends its input without FIN and prints until the server closes", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let finSeen = false;
  const child = spawnClient(["--no-shutdown", "-p", `${listener.addr.port}`]);
  const conn = await listener.accept();
  await ReadableStream.from([encoder.encode("abc")]).pipeTo(child.stdin);
  assert.equal(decoder.decode(await readBytes(conn, 3)), "abc");
  const rest = readAll(conn).then((bytes) => {
    finSeen = true;
    return bytes;
  });
  // Two round trips through the client: a FIN sent after "abc" would have
  // reached us long before the second answer.
  const out = child.stdout.getReader();
  let printed = "";
  for (const word of ["ping\n", "pong\n"]) {
    await conn.write(encoder.encode(word));
    while (!printed.endsWith(word)) {
      const { value } = await out.read();
      printed += decoder.decode(value);
    }
  }
  assert.equal(finSeen, false);
  await conn.closeWrite();
  for (let r; !(r = await out.read()).done;) printed += decoder.decode(r.value);
  const status = await child.status;
  await child.stderr.cancel();
  assert.equal(status.code, 0);
  assert.equal(printed, "ping\npong\n");
  assert.equal((await rest).length, 0);
  conn.close();
});

Deno.test("client -q quits that long after the end of input when the server never closes", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    const got = await readAll(conn); // to our FIN...
    await conn.write(encoder.encode("got it\n")); // ...and never close
    return { conn, got };
  });
  const { code, text } = await run(
    ["-q", "300ms", "-p", `${listener.addr.port}`],
    "data",
  );
  assert.equal(code, 0);
  assert.equal(text, "got it\n");
  const { conn, got } = await served;
  assert.equal(decoder.decode(got), "data");
  conn.close();
});

Deno.test("client -i closes and exits 1 when nothing moves for that long", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held = listener.accept();
  const { code, stderr } = await run([
    "--recv-only",
    "-i",
    "300ms",
    "-p",
    `${listener.addr.port}`,
  ]);
  assert.equal(code, 1);
  assert.equal(
    stderr,
    `error: Closed the connection to 127.0.0.1:${listener.addr.port} as no byte moved for 300ms (--idle-timeout)\n`,
  );
  (await held).close();
});

Deno.test("client sends the rest of piped input after the server's FIN, then exits 0", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const input = concat([...noise(8, 65536, 3)]);
  const served = listener.accept().then(async (conn) => {
    await conn.write(encoder.encode("ready\n"));
    await conn.closeWrite(); // our FIN first; we still read everything
    const got = await readAll(conn);
    conn.close();
    return got;
  });
  const { code, text } = await run(["-p", `${listener.addr.port}`], input);
  assert.equal(code, 0);
  assert.equal(text, "ready\n");
  assert.deepEqual(await served, input);
});

Deno.test("client -C sends line feeds as CR LF", async () => {
  await using server = serve({ port: 0 }, () => new EchoStream());
  const { code, text } = await run(["-C", "-p", portOf(server)], "a\nb\r\nc\n");
  assert.equal(code, 0);
  assert.equal(text, "a\r\nb\r\nc\r\n");
});

Deno.test("client -x writes both directions as a hex dump and -v tells the story on stderr", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/dump.txt`;
    const port = portOf(server);
    const { code, text, stderr } = await run(
      ["-v", "-x", file, "-p", port],
      "hello, world\n",
      ["-N", "-W"],
    );
    assert.equal(code, 0);
    assert.equal(text, "HELLO, WORLD\n");
    assert.equal(
      await Deno.readTextFile(file),
      "> 00000000  68 65 6c 6c 6f 2c 20 77  6f 72 6c 64 0a           |hello, world.|\n" +
        "< 00000000  48 45 4c 4c 4f 2c 20 57  4f 52 4c 44 0a           |HELLO, WORLD.|\n",
    );
    const lines = stderr.trimEnd().split("\n");
    assert.match(
      lines[0]!,
      new RegExp(
        `^Connected to 127\\.0\\.0\\.1:${port} from 127\\.0\\.0\\.1:\\d+$`,
      ),
    );
    assert.equal(
      lines.at(-1),
      `Closed 127.0.0.1:${port}: 13 bytes sent, 13 bytes received (peer closed)`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Unix sockets and TLS

Deno.test("client --unix reaches a Unix socket and --ca a TLS server", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/sock`;
    await using _unix = serve({ path }, () => new UpperCaseStream());
    const viaUnix = await run(["--unix", path], "over unix", [
      "-N",
      "-R",
      "-W",
    ]);
    assert.equal(viaUnix.code, 0);
    assert.equal(viaUnix.text, "OVER UNIX");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const [cert, key] = await Promise.all(
    ["tls_localhost_cert.pem", "tls_localhost_key.pem"]
      .map((name) => Deno.readTextFile(new URL(name, testdata))),
  );
  await using tls = serve({ port: 0, cert, key }, () => new UpperCaseStream());
  const { code, text } = await run(
    [
      "--ca",
      fileURLToPath(new URL("tls_ca.pem", testdata)),
      "localhost",
      portOf(tls),
    ],
    "over tls",
    ["-N", "-R"],
  );
  assert.equal(code, 0);
  assert.equal(text, "over tls".toUpperCase());
});

Deno.test("client --tls against a plain server exits 1 and asks whether it speaks TLS", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const { code, stderr } = await run(["--tls", "-p", portOf(server)]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    /^error: Cannot connect to 127\.0\.0\.1:\d+: the TLS handshake failed: .* \(does the server speak TLS on that port\?\)\n$/,
  );
});

// ---------------------------------------------------------------------------
// Runtime failures: exit 1, one line

Deno.test("client exits 1 with one line when the connection is refused, and with a stack under -v", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  const plain = await run(["-p", `${port}`], "x");
  assert.equal(plain.code, 1);
  assert.equal(
    plain.stderr,
    `error: Cannot connect to 127.0.0.1:${port}: connection refused (is a server listening there?)\n`,
  );
  const verbose = await run(["-v", "-p", `${port}`], "x");
  assert.equal(verbose.code, 1);
  const lines = verbose.stderr.trimEnd().split("\n");
  assert.equal(lines[0], plain.stderr.trimEnd());
  assert.ok(lines.length > 1, "a stack follows");
});

Deno.test("client exits 1 saying the connection was lost when the server resets it after the start", async () => {
  // A reset with no FIN before it. Deno's own close() sends a FIN first (and
  // after a FIN a refused write only means the server wanted no more), so
  // the server is Node, whose resetAndDestroy() sends the reset alone.
  const port = freePort();
  await using _node = await foreign("node", [
    "-e",
    `const server = require("node:net").createServer((socket) => {
      socket.once("data", () => socket.resetAndDestroy());
    });
    server.listen(${port}, "127.0.0.1", () => console.error("ready"));`,
  ], /ready/);
  const { code, stderr } = await run(
    ["-p", `${port}`],
    concat([...noise(64, 65536, 5)]),
  );
  assert.equal(code, 1, stderr);
  assert.match(
    stderr,
    new RegExp(
      `^error: Lost the connection to 127\\.0\\.0\\.1:${port} after \\d+ bytes sent and 0 received: .+\\n$`,
    ),
  );
});

Deno.test("client without net permission names the flag and the scope that would allow it", async () => {
  const { code, stderr } = await run(["-p", "9"], "", []);
  assert.equal(code, 1);
  assert.equal(
    stderr,
    'error: Cannot connect to 127.0.0.1:9 as net access to "127.0.0.1:9" is not allowed: run again with -N or --allow-net=127.0.0.1:9\n',
  );
});

Deno.test("client exits 130 on Ctrl-C (SIGINT)", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const child = spawnClient([
    "-v",
    "--recv-only",
    "-p",
    `${listener.addr.port}`,
  ]);
  const conn = await listener.accept();
  // Wait until it runs: -v says so once connected.
  const err = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("Connected to")) text += (await err.read()).value;
  child.kill("SIGINT");
  const status = await child.status;
  await err.cancel();
  await child.stdout.cancel();
  await child.stdin.close().catch(() => {});
  assert.equal(status.code, 130);
  conn.close();
});

// ---------------------------------------------------------------------------
// Bad invocations: exit 2 (usage) or 1 (runtime), first line of stderr

const USAGE_ERRORS: [string[], string][] = [
  [
    ["--bogus"],
    'Cannot parse --bogus as it is not a known flag: current value is "--bogus"',
  ],
  [
    ["-z"],
    'Cannot parse -z as it is not a known flag: current value is "-z"; port scanning (-z) is not supported',
  ],
  // Netcat habits get a hint.
  [
    ["-l", "9990"],
    'Cannot parse -l as it is not a known flag: current value is "-l"; this is the client; run the server program to listen: deno run -N jsr:@x/sock/server -p <port>',
  ],
  [
    ["-lk", "9990"],
    'Cannot parse -l as it is not a known flag: current value is "-lk"; this is the client; run the server program to listen: deno run -N jsr:@x/sock/server -p <port>',
  ],
  [
    ["-N", "localhost", "9990"],
    'Cannot parse -N as it is not a known flag: current value is "-N"; -N is already the default: the client half-closes (sends FIN) at the end of input; --no-shutdown keeps it open',
  ],
  [
    ["-p", "-1"],
    'Cannot parse --port as it must be an integer from 1 to 65535: current value is "-1"',
  ],
  [
    ["-p", "0"],
    'Cannot parse --port as it must be an integer from 1 to 65535: current value is "0"',
  ],
  [
    ["-p", "http"],
    'Cannot parse --port as it must be an integer from 1 to 65535: current value is "http"',
  ],
  [
    ["localhost", "99999"],
    'Cannot parse the port as it must be an integer from 1 to 65535: current value is "99999"',
  ],
  [
    ["--port"],
    "Cannot parse --port as it needs a value: current value is none",
  ],
  [
    ["-p", "1", "-p", "2"],
    'Cannot parse --port as it may be given once: current values are "1" and "2"',
  ],
  [
    ["--tls=yes"],
    'Cannot parse --tls as it takes no value: current value is "yes"',
  ],
  [
    ["a", "1", "extra"],
    'Cannot parse arguments as the client takes at most a host and a port: current extra argument is "extra"',
  ],
  [
    ["--host", "a", "b"],
    'Cannot parse --host as the host is also given as an argument: current values are "a" and "b"',
  ],
  [
    ["-p", "1", "localhost", "2"],
    'Cannot parse --port as the port is also given as an argument: current values are "1" and "2"',
  ],
  [
    ["--host", ""],
    'Cannot parse the host as it must be a name or an address: current value is ""',
  ],
  [
    ["--unix", "/tmp/s", "-p", "1"],
    'Cannot use --unix with a port as a Unix socket has only a path: current value is "/tmp/s"',
  ],
  [
    ["--unix", "/tmp/s", "--tls"],
    'Cannot use --unix with --tls as a Unix socket has only a path: current value is "/tmp/s"',
  ],
  [
    ["--unix", ""],
    'Cannot parse --unix as it must be a socket path: current value is ""',
  ],
  [
    ["--send-only", "--recv-only"],
    "Cannot use --send-only with --recv-only as together they leave nothing to do: choose one",
  ],
  [
    ["--recv-only", "-q", "1s"],
    "Cannot use --quit-after-eof with --recv-only as the client reads no input then: drop one of them",
  ],
  [
    ["--send-only", "--no-shutdown"],
    "Cannot use --no-shutdown with --send-only as --send-only quits at the end of input: drop one of them",
  ],
  [
    ["-q", "soon"],
    'Cannot parse --quit-after-eof as it must be a duration such as 500ms, 30s or 2m (a bare number is seconds): current value is "soon"',
  ],
  [
    ["-i", "-5"],
    'Cannot parse --idle-timeout as it must be a duration such as 500ms, 30s or 2m (a bare number is seconds): current value is "-5"',
  ],
  [
    ["-w", "0"],
    'Cannot parse --connect-timeout as it must be longer than 0: current value is "0"',
  ],
  [
    ["-w", "1000h"],
    'Cannot parse --connect-timeout as it must be at most 596h (2^31 - 1 ms): current value is "1000h"',
  ],
  [
    ["-u", "--tls"],
    "Cannot use --tls with --udp as it applies to TCP only: drop one of them",
  ],
  [
    ["-x", ""],
    'Cannot parse --hex-dump as it must be a file path or "-" for stderr: current value is ""',
  ],
];

Deno.test("client exits 2 with one line naming the problem for each bad command line", async () => {
  for (const [args, message] of USAGE_ERRORS) {
    const { code, stderr, text } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.equal(stderr, `error: ${message} (see --help)\n`, args.join(" "));
    assert.equal(text, "");
  }
});

Deno.test("client exits 1 with one line when a file named by a flag cannot be used", async () => {
  const cases: [string[], string[], string][] = [
    [
      ["--ca", "/nonexistent/ca.pem"],
      ["-N", "-R"],
      'error: Cannot read --ca file "/nonexistent/ca.pem" as it does not exist: check the path',
    ],
    [
      ["--ca", "/nonexistent/ca.pem"],
      ["-N"],
      'error: Cannot read --ca file "/nonexistent/ca.pem" as read access to "/nonexistent/ca.pem" is not allowed: run again with -R or --allow-read=/nonexistent/ca.pem',
    ],
    [
      ["-x", "/nonexistent/dump.txt"],
      ["-N", "-W"],
      'error: Cannot write --hex-dump file "/nonexistent/dump.txt" as it does not exist: check the path',
    ],
    [
      ["-x", "/tmp/dump.txt"],
      ["-N"],
      'error: Cannot write --hex-dump file "/tmp/dump.txt" as write access to "/tmp/dump.txt" is not allowed: run again with -W or --allow-write=/tmp/dump.txt',
    ],
  ];
  for (const [args, permissions, line] of cases) {
    const { code, stderr } = await run([...args, "-p", "9"], "", permissions);
    assert.equal(code, 1, args.join(" "));
    assert.equal(stderr, `${line}\n`, args.join(" "));
  }
});

// ---------------------------------------------------------------------------
// At a terminal (a pseudo-terminal from util-linux `script`)

Deno.test({
  name:
    "client at a terminal sends each line, sends a partial line at once on Ctrl-D, ends on a second Ctrl-D",
  ignore: !HAS.script,
  async fn() {
    using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const command =
      `${Deno.execPath()} run -N ${clientPath} -p ${listener.addr.port}`;
    const child = new Deno.Command("script", {
      args: ["-q", "-e", "-c", command, "/dev/null"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const conn = await listener.accept();
    const keys = child.stdin.getWriter();
    const screen = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    const waitScreen = async (text: string) => {
      while (!seen.includes(text)) seen += (await screen.read()).value ?? "";
    };
    await waitScreen("Ctrl-D ends sending");
    await keys.write(encoder.encode("hello\n"));
    assert.equal(decoder.decode(await readBytes(conn, 6)), "hello\n");
    await keys.write(encoder.encode("par\x04")); // Ctrl-D after "par"
    assert.equal(decoder.decode(await readBytes(conn, 3)), "par");
    await conn.write(encoder.encode("BYE\n"));
    await waitScreen("BYE");
    await keys.write(encoder.encode("\x04")); // Ctrl-D on its own: end of input
    assert.equal((await readAll(conn)).length, 0); // our FIN came
    conn.close();
    const status = await child.status;
    await keys.close().catch(() => {});
    await screen.cancel();
    await child.stderr.cancel();
    assert.equal(status.code, 0);
  },
});

// ---------------------------------------------------------------------------
// Foreign peers

Deno.test({
  name:
    "client sends 1 MiB byte-exact to an ncat --recv-only listener, which ends at our FIN",
  ignore: !HAS.ncat,
  async fn() {
    const port = freePort();
    await using ncat = await foreign(
      "ncat",
      ["-v", "-l", "--recv-only", "127.0.0.1", `${port}`],
      /Listening on/,
    );
    const input = concat([...noise(16, 65536, 11)]);
    const [result, received] = await Promise.all([
      run(["127.0.0.1", `${port}`], input),
      new Response(ncat.stdout).bytes(),
    ]);
    assert.equal(result.code, 0);
    assert.equal((await ncat.status).code, 0);
    assert.deepEqual(received, input);
  },
});

Deno.test({
  name: "client gets 1 MiB byte-exact back through a socat echo (PIPE) server",
  ignore: !HAS.socat,
  async fn() {
    const port = freePort();
    await using _socat = await foreign(
      "socat",
      ["-d", "-d", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr`, "PIPE"],
      /listening on/,
    );
    const input = concat([...noise(16, 65536, 13)]);
    const result = await run(["127.0.0.1", `${port}`], input);
    assert.equal(result.code, 0);
    assert.deepEqual(result.stdout, input);
  },
});

Deno.test({
  name: "client --recv-only receives a file from an OpenBSD nc -N listener",
  ignore: !HAS.nc,
  async fn() {
    const port = freePort();
    const input = concat([...noise(8, 65536, 17)]);
    await using nc = await foreign(
      "nc",
      ["-v", "-N", "-l", "127.0.0.1", `${port}`],
      /Listening on/,
      "piped",
    );
    const feeding = ReadableStream.from([input]).pipeTo(nc.stdin);
    const result = await run(["--recv-only", "127.0.0.1", `${port}`]);
    await feeding;
    assert.equal(result.code, 0);
    assert.deepEqual(result.stdout, input);
  },
});

Deno.test("client takes host:port as one argument, and prints an IPv6 host in one pair of brackets", async () => {
  await using server = serve({ port: 0 }, () => new UpperCaseStream());
  const joined = await run([`127.0.0.1:${portOf(server)}`], "hi");
  assert.equal(joined.code, 0, joined.stderr);
  assert.equal(joined.text, "HI");
  const port = freePort();
  for (const host of ["[::1]", "::1"]) {
    const { code, stderr } = await run([host, `${port}`]);
    assert.equal(code, 1);
    assert.match(
      stderr,
      new RegExp(`^error: Cannot connect to \\[::1\\]:${port}: `),
    );
  }
});

Deno.test("client | head -3 ends quietly with exit 0 when the reader leaves", async () => {
  await using server = serve({ port: 0 }, chargen);
  const child = spawnClient(["127.0.0.1", portOf(server), "--recv-only"]);
  await child.stdin.close();
  // Read three lines, then leave, as head does.
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (text.split("\n").length <= 3) text += (await reader.read()).value;
  await reader.cancel();
  const [status, stderr] = await Promise.all([
    child.status,
    new Response(child.stderr).text(),
  ]);
  assert.equal(stderr, "");
  assert.equal(status.code, 0);
});

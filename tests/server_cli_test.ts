import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const serverPath = fileURLToPath(new URL("../server.ts", import.meta.url));
const encoder = new TextEncoder();

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

async function ask(conn: Deno.Conn, text: string): Promise<string> {
  await conn.write(encoder.encode(text));
  await conn.closeWrite();
  let answer = "";
  const buffer = new Uint8Array(1024);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    answer += new TextDecoder().decode(buffer.subarray(0, n));
  }
  return answer;
}

async function run(args: string[], permissions = ["-N"]) {
  await using program = new Program(args, permissions);
  return await program.end();
}

Deno.test("server program serves upper-case by default, logs each client, exits 0 on SIGTERM", async () => {
  await using program = new Program(["-p", "0"]);
  const [, port] = await program.waitFor(
    /^Listening on 127\.0\.0\.1:(\d+) \(service: upper\)$/,
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
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

Deno.test("server program --service echo on IPv6 loopback, stopped by SIGINT", async () => {
  await using program = new Program(["--host", "::1", "-p", "0", "-s", "echo"]);
  const [, port] = await program.waitFor(
    /^Listening on \[::1\]:(\d+) \(service: echo\)$/,
  );
  using conn = await Deno.connect({ hostname: "::1", port: +port });
  assert.equal(await ask(conn, "Echo me"), "Echo me");
  program.child.kill("SIGINT");
  assert.equal((await program.end()).code, 0);
});

Deno.test("server program listens on a Unix socket", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  try {
    await using program = new Program(["--unix", path], ["-N", "-R", "-W"]);
    await program.waitFor(/^Listening on unix:/);
    using conn = await Deno.connect({ transport: "unix", path });
    assert.equal(await ask(conn, "unix"), "UNIX");
    program.child.kill("SIGTERM");
    assert.equal((await program.end()).code, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("server program --help prints usage and exits 0", async () => {
  const { code, stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-N", serverPath, "--help"],
  }).output();
  const out = new TextDecoder().decode(stdout);
  assert.equal(code, 0);
  assert.match(out, /^Usage: deno run -N jsr:@x\/sock\/server/);
  for (
    const flag of [
      "--host",
      "--port",
      "--service",
      "--unix",
      "--cert",
      "--key",
      "--max-connections",
      "--idle-timeout",
      "--grace-period",
      "--quiet",
      "--verbose",
    ]
  ) {
    assert.ok(out.includes(flag), flag);
  }
});

Deno.test("server program exits 2 with one line for an unknown flag or a bad value", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--bogus"],
      /^error: Cannot parse flags: Unknown option '--bogus' \(see --help\)$/,
    ],
    [
      ["-p", "99999"],
      /^error: Cannot parse --port as it must be an integer from 0 to 65535: current value is '99999' \(see --help\)$/,
    ],
    [["--service", "shout"], /^error: .*shout.*\(see --help\)$/],
    [
      ["--idle-timeout", "soon"],
      /^error: Cannot parse --idle-timeout .*'soon' \(see --help\)$/,
    ],
  ];
  for (const [args, pattern] of cases) {
    const { code, rest } = await run(args);
    assert.equal(code, 2, args.join(" "));
    assert.match(rest.trim(), pattern);
  }
});

Deno.test("server program exits 1 naming the problem: port in use, address not available, no permission", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const inUse = await run(["-p", `${taken.addr.port}`]);
  assert.equal(inUse.code, 1);
  assert.equal(
    inUse.rest.trim(),
    `error: Cannot listen on 127.0.0.1:${taken.addr.port} as the address is in use: choose another --port, or 0 for any free one`,
  );
  // 192.0.2.1 is reserved for documentation: no interface here has it.
  const absent = await run(["--host", "192.0.2.1", "-p", "0"]);
  assert.equal(absent.code, 1);
  assert.match(
    absent.rest.trim(),
    /^error: Cannot listen on 192\.0\.2\.1:0 as the address is not available on this machine/,
  );
  const denied = await run(["-p", "0"], []);
  assert.equal(denied.code, 1);
  assert.match(denied.rest.trim(), /--allow-net/);
});

import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  connect,
  ConnectError,
  exchange,
  serve,
  UpperCaseStream,
} from "../mod.ts";
import { installed } from "./_util.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const encoder = new TextEncoder();

/**
 * A running example program, with its stdout read line by line; or, with
 * `program`, one of the package's programs (`server.ts`), whose log lines on
 * stderr are read instead; or, with `script`, the program at the path `name`
 * (stdout read).
 */
class Example implements AsyncDisposable {
  readonly child: Deno.ChildProcess;
  #lines: AsyncIterator<string>;
  readonly seen: string[] = [];

  constructor(
    name: string,
    args: string[] = [],
    options: { program?: boolean; script?: boolean; flags?: string[] } = {},
  ) {
    const { program = false, script = false, flags = ["-N"] } = options;
    this.child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        ...flags,
        program || script ? name : `examples/${name}`,
        ...args,
      ],
      cwd: root,
      stdin: "null",
      stdout: program ? "null" : "piped",
      stderr: program ? "piped" : "inherit",
    }).spawn();
    this.#lines = (program ? this.child.stderr : this.child.stdout)
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new LineSplitter())[Symbol.asyncIterator]();
  }

  /** Reads lines until one matches, and returns its match. */
  async waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    while (true) {
      const { done, value } = await this.#lines.next();
      if (done) {
        throw new Error(
          `Example ended before printing ${pattern}: saw ${
            JSON.stringify(this.seen)
          }`,
        );
      }
      this.seen.push(value);
      const match = value.match(pattern);
      if (match) return match;
    }
  }

  /** Reads the rest of stdout. */
  async rest(): Promise<string[]> {
    while (true) {
      const { done, value } = await this.#lines.next();
      if (done) return this.seen;
      this.seen.push(value);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* ended already */ }
    await this.rest();
    await this.child.status;
  }
}

/** Splits text into lines (without the "\n"). */
class LineSplitter extends TransformStream<string, string> {
  constructor() {
    let pending = "";
    super({
      transform(chunk, controller) {
        const parts = (pending + chunk).split("\n");
        pending = parts.pop()!;
        for (const line of parts) controller.enqueue(line);
      },
      flush(controller) {
        if (pending) controller.enqueue(pending);
      },
    });
  }
}

/** Sends `text`, half-closes, and returns everything the server answers. */
async function ask(port: number, text: string): Promise<string> {
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(encoder.encode(text));
  await conn.closeWrite();
  const buffer = new Uint8Array(4096);
  let answer = "";
  const decoder = new TextDecoder();
  for (let n; (n = await conn.read(buffer)) !== null;) {
    answer += decoder.decode(buffer.subarray(0, n), { stream: true });
  }
  return answer;
}

/**
 * Tries to talk to a server that is shutting down: its listener is closed,
 * though the kernel may still complete a handshake until the socket is
 * released, and then end the connection unanswered.
 */
async function askLate(port: number): Promise<string> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname: "127.0.0.1", port });
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused) return "not served";
    throw error;
  }
  try {
    await conn.write(encoder.encode("late"));
    await conn.closeWrite();
    const n = await conn.read(new Uint8Array(16));
    return n === null ? "not served" : `served ${n} bytes`;
  } catch (error) {
    if (
      error instanceof Deno.errors.ConnectionReset ||
      error instanceof Deno.errors.BrokenPipe
    ) return "not served";
    throw error;
  } finally {
    conn.close();
  }
}

Deno.test("examples/upper_server.ts upper-cases what a client sends", async () => {
  await using server = new Example("upper_server.ts", ["0"]);
  const [, port] = await server.waitFor(/^Listening on 127\.0\.0\.1:(\d+)$/);
  assert.equal(await ask(Number(port), "hello, wörld"), "HELLO, WöRLD");
});

Deno.test("examples/echo_server.ts serves many clients at once and logs them", async () => {
  await using server = new Example("echo_server.ts", ["0"]);
  const [, port] = await server.waitFor(/^Echo server on 127\.0\.0\.1:(\d+)$/);
  const texts = Array.from({ length: 20 }, (_, i) => `client ${i}\n`.repeat(i));
  const answers = await Promise.all(texts.map((t) => ask(Number(port), t)));
  assert.deepEqual(answers, texts);
  for (let i = 0; i < texts.length; i++) {
    await server.waitFor(/ out: \d+ bytes in, \d+ bytes out, /);
  }
  const out = server.seen.filter((line) => line.includes(" out: "));
  const totals = out.map((line) => Number(line.match(/(\d+) bytes in/)![1]));
  assert.deepEqual(
    totals.sort((a, b) => a - b),
    texts.map((t) => t.length).sort((a, b) => a - b),
  );
});

Deno.test("examples/graceful_server.ts finishes an open connection on SIGINT and exits 0", async () => {
  await using server = new Example("graceful_server.ts", ["0"]);
  const [, port] = await server.waitFor(/^Listening on 127\.0\.0\.1:(\d+);/);
  // A client is mid-conversation when Ctrl-C arrives.
  using conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
  await conn.write(encoder.encode("first part, "));
  const buffer = new Uint8Array(64);
  assert.equal(await conn.read(buffer), 12); // connected and served
  server.child.kill("SIGINT");
  await server.waitFor(/^SIGINT: no new clients; finishing open connections$/);
  // New clients are turned away once shutdown has begun...
  assert.equal(await askLate(+port), "not served");
  // ...while the open connection is still served to its end.
  await conn.write(encoder.encode("second part"));
  await conn.closeWrite();
  let answer = "";
  for (let n; (n = await conn.read(buffer)) !== null;) {
    answer += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assert.equal(answer, "SECOND PART");
  const status = await server.child.status;
  assert.equal(status.code, 0);
  const lines = await server.rest();
  assert.ok(lines.includes("Stopped"), JSON.stringify(lines));
});

/** Runs an example to its end and returns its exit code and stdout lines. */
async function runToEnd(
  name: string,
  args: string[] = [],
): Promise<{ code: number; lines: string[] }> {
  await using example = new Example(name, args);
  const lines = await example.rest();
  return { code: (await example.child.status).code, lines };
}

Deno.test("examples/upper_client.ts prints the uppercase server's answer", async () => {
  await using server = new Example("upper_server.ts", ["0"]);
  const [, port] = await server.waitFor(/^Listening on 127\.0\.0\.1:(\d+)$/);
  const { code, lines } = await runToEnd("upper_client.ts", ["shout ü", port]);
  assert.equal(code, 0);
  assert.deepEqual(lines, ["SHOUT ü"]);
});

Deno.test("examples/half_close_client.ts reads every reply after its FIN", async () => {
  await using server = new Example("echo_server.ts", ["0"]);
  const [, port] = await server.waitFor(/^Echo server on 127\.0\.0\.1:(\d+)$/);
  const { code, lines } = await runToEnd("half_close_client.ts", [port]);
  assert.equal(code, 0);
  assert.deepEqual(lines.filter((l) => l.startsWith("received: ")), [
    "received: first",
    "received: second",
    "received: third",
  ]);
  assert.ok(lines.indexOf("sent FIN; still reading") !== -1);
  assert.equal(lines.at(-1), "server closed; 19 bytes received");
});

Deno.test("examples/line_exchange.ts gets whole lines from split writes", async () => {
  const { code, lines } = await runToEnd("line_exchange.ts");
  assert.equal(code, 0);
  assert.deepEqual(lines, ["4 words", "2 words", "3 words", "total: 9 words"]);
});

Deno.test("examples/length_prefixed.ts answers each request", async () => {
  const { code, lines } = await runToEnd("length_prefixed.ts");
  assert.equal(code, 0);
  assert.deepEqual(lines, [
    'client: {"op":"sum","result":10}',
    'client: {"op":"join","result":"multi\\nline"}',
  ]);
});

Deno.test("examples/broadcast_chat.ts relays each line to the other clients", async () => {
  await using server = new Example("broadcast_chat.ts", ["0"]);
  const [, port] = await server.waitFor(/^Chat on 127\.0\.0\.1:(\d+)$/);
  const join = async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
    const lines = conn.readable
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(new LineSplitter())[Symbol.asyncIterator]();
    const next = async () => (await lines.next()).value as string;
    return { conn, next, lines };
  };
  const alice = await join();
  const [, aliceId] = (await alice.next()).match(/^\* you are user(\d+)$/)!;
  const bob = await join();
  const [, bobId] = (await bob.next()).match(/^\* you are user(\d+)$/)!;
  assert.equal(await alice.next(), `* user${bobId} joined`);
  await alice.conn.write(encoder.encode("hi bob\n"));
  assert.equal(await bob.next(), `[user${aliceId}] hi bob`);
  await bob.conn.write(encoder.encode("hi alice\r\n"));
  assert.equal(await alice.next(), `[user${bobId}] hi alice`);
  // Bob leaves; Alice hears of it. (Reading the bare `readable` is fine in
  // a test: it closes the connection at its end, which is what we want.)
  await bob.conn.closeWrite();
  assert.equal((await bob.lines.next()).done, true);
  assert.equal(await alice.next(), `* user${bobId} left`);
  alice.conn.close();
});

Deno.test("every example in examples/ is run by a test", async () => {
  const tests: string[] = [];
  for await (const entry of Deno.readDir(`${root}tests`)) {
    if (entry.isFile && entry.name.endsWith(".ts")) {
      tests.push(await Deno.readTextFile(`${root}tests/${entry.name}`));
    }
  }
  const untested: string[] = [];
  for await (const entry of Deno.readDir(`${root}examples`)) {
    if (!entry.name.endsWith(".ts")) continue;
    const named = [`examples/${entry.name}`, `"${entry.name}"`];
    if (!tests.some((text) => named.some((name) => text.includes(name)))) {
      untested.push(entry.name);
    }
  }
  assert.deepEqual(untested, [], "examples no test runs");
});

/** Whether `path` matches a `publish.include` pattern (`*` within a name). */
function matches(pattern: string, path: string): boolean {
  const regexp = pattern.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    .replaceAll("**/", "(?:.*/)?").replaceAll("*", "[^/]*");
  return new RegExp(`^${regexp}(?:/.*)?$`).test(path);
}

/** The markdown files whose links and anchors a test checks. */
async function markdownFiles(): Promise<string[]> {
  const files = ["README.md", "CHANGELOG.md", "bench/README.md"];
  for await (const entry of Deno.readDir(`${root}docs`)) {
    if (entry.isFile && entry.name.endsWith(".md")) {
      files.push(`docs/${entry.name}`);
    }
  }
  return files.sort();
}

/** A markdown text without its fenced code blocks and inline code. */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, "")
    .replace(/`[^`\n]*`/g, "");
}

/** The anchors of a markdown file's headings, as GitHub and JSR make them. */
function anchors(markdown: string): Set<string> {
  const found = new Set<string>();
  const counts = new Map<string, number>();
  for (
    const [, heading] of prose(markdown.replace(/`/g, "")).matchAll(
      /^#{1,6} +(.+?) *#*$/gm,
    )
  ) {
    const slug = heading!.trim().toLowerCase()
      .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const seen = counts.get(slug) ?? 0;
    counts.set(slug, seen + 1);
    found.add(seen === 0 ? slug : `${slug}-${seen}`);
  }
  return found;
}

/** Resolves `link`, relative to the markdown file `from`, to a path in root. */
function resolveLink(from: string, link: string): string {
  const url = new URL(link, new URL(from, "file:///root/"));
  return decodeURIComponent(url.pathname.replace(/^\/root\//, ""));
}

Deno.test("the docs' relative links name files that exist, anchors that exist, and published files from published pages", async () => {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const include: string[] = config.publish?.include ?? ["**"];
  const exclude: string[] = config.publish?.exclude ?? [];
  const published = (path: string) =>
    include.some((p) => matches(p, path)) &&
    !exclude.some((p) => matches(p, path));
  const files = await markdownFiles();
  assert.ok(files.includes("docs/library.md"), JSON.stringify(files));
  const texts = new Map<string, string>();
  const read = async (path: string) => {
    if (!texts.has(path)) {
      texts.set(path, await Deno.readTextFile(`${root}${path}`));
    }
    return texts.get(path)!;
  };
  const broken: string[] = [];
  let checked = 0;
  for (const file of files) {
    const links = [...prose(await read(file)).matchAll(/\]\(([^)\s]+)\)/g)]
      .map((match) => match[1]!)
      .filter((link) => !/^[a-z]+:/.test(link));
    assert.ok(links.length > 0, `${file} links to nothing of its own`);
    for (const link of new Set(links)) {
      checked++;
      const [target, anchor] = link.startsWith("#")
        ? [file, link.slice(1)]
        : [resolveLink(file, link.replace(/#.*$/, "")), link.split("#")[1]];
      const where = `${file}: ${link}`;
      const exists = await Deno.stat(`${root}${target}`).then(
        () => true,
        () => false,
      );
      if (!exists) {
        broken.push(`${where}: no such file`);
        continue;
      }
      if (published(file) && !published(target)) {
        broken.push(`${file} links to ${target}, not in publish.include`);
      }
      if (anchor !== undefined && target.endsWith(".md")) {
        if (!anchors(await read(target)).has(anchor)) {
          broken.push(`${where}: ${target} has no heading #${anchor}`);
        }
      }
    }
  }
  assert.ok(checked > 30, `only ${checked} links checked`);
  assert.deepEqual([...new Set(broken)], []);
});

Deno.test("README stays a front page: under 20 KB", async () => {
  const { size } = await Deno.stat(`${root}README.md`);
  assert.ok(size < 20_000, `README.md is ${size} bytes`);
});

/** The fenced code blocks of a markdown file, with their info strings. */
async function codeBlocks(
  file: string,
): Promise<{ info: string; code: string }[]> {
  const text = await Deno.readTextFile(`${root}${file}`);
  return [...text.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)]
    .map((match) => ({ info: match[1]!.trim(), code: match[2]! }));
}

/** The code of the first `info` block of `file` that contains `marker`. */
async function codeBlock(
  file: string,
  info: string,
  marker: string,
): Promise<string> {
  const block = (await codeBlocks(file))
    .find((b) => b.info === info && b.code.includes(marker));
  assert.ok(block, `${file} has no ${info} block with "${marker}"`);
  return block.code;
}

/**
 * Writes a program from a README block into `dir`, with its `@x/sock`
 * imports pointing at this checkout (a file outside the package cannot name
 * it), and returns the file's path.
 */
async function writeProgram(
  code: string,
  dir: string,
  name: string,
): Promise<string> {
  const config = JSON.parse(await Deno.readTextFile(`${root}deno.json`));
  const exports: Record<string, string> = config.exports;
  const source = code.replace(
    /(["'])@x\/sock(\/[a-z-]+)?\1/g,
    (_, _quote, entry?: string) => {
      const target = exports[entry ? `.${entry}` : "."];
      assert.ok(target, `deno.json exports no @x/sock${entry ?? ""}`);
      return JSON.stringify(
        new URL(target, new URL("../", import.meta.url)).href,
      );
    },
  );
  const path = `${dir}/${name}`;
  await Deno.writeTextFile(path, source);
  return path;
}

/**
 * A README server, made to listen on a free port and print its address:
 * README's `{ port: 9990 }` becomes `{ port: 0, onListen }`.
 */
function onFreePort(code: string): string {
  assert.ok(code.includes("{ port: 9990 }"), code);
  return code.replace(
    "{ port: 9990 }",
    "{ port: 0, onListen: (addr) => console.log(JSON.stringify(addr)) }",
  );
}

/** Runs a README server block (type-checked) and returns it with its port. */
async function startReadmeServer(
  marker: string,
  dir: string,
): Promise<{ server: Example; port: number }> {
  const code = await codeBlock("README.md", "ts ignore", marker);
  const path = await writeProgram(onFreePort(code), dir, "server.ts");
  const server = new Example(path, [], {
    script: true,
    flags: ["--check", "-N"],
  });
  const [, port] = await server.waitFor(/"port":(\d+)/);
  return { server, port: Number(port) };
}

Deno.test("README's two commands come first: the server command serves, and the test command is what CI runs", async () => {
  const readme = await Deno.readTextFile(`${root}README.md`);
  const blocks = (await codeBlocks("README.md")).filter((b) => b.info === "sh");
  const index = blocks.findIndex((b) => b.code.includes("deno task test"));
  assert.ok(index >= 0 && index <= 1, "not among README's first sh blocks");
  const commands = blocks[index]!.code.split("\n")
    .filter((line) => line && !line.startsWith("#"));
  assert.deepEqual(commands, ["deno run -N server.ts", "deno task test"]);
  // A fresh machine: the same through npx, as .ci/run does when Deno is missing.
  assert.ok(readme.includes("`npx -y deno@2 run -N server.ts`"));
  assert.ok(readme.includes("`npx -y deno@2 task test`"));
  const ci = await Deno.readTextFile(`${root}.ci/run`);
  assert.ok(ci.includes("deno=(npx -y deno@2)"), "CI has no npx fallback");
  assert.ok(ci.includes('"${deno[@]}" task test'), "CI runs another command");
  // The server command, run as README runs it (on a free port here).
  const words = commands[0]!.split(" ");
  assert.deepEqual([...words.slice(0, 2), words.at(-1)], [
    "deno",
    "run",
    "server.ts",
  ]);
  const flags = words.slice(2, -1); // -N
  await using server = new Example("server.ts", ["-p", "0"], {
    program: true,
    flags,
  });
  const [, port] = await server.waitFor(/^Listening on 127\.0\.0\.1:(\d+)/);
  assert.equal(await ask(Number(port), "hello\n"), "HELLO\n");
});

Deno.test("README's server and client run as written and talk to each other", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sock_readme_" });
  try {
    const { server, port } = await startReadmeServer("UpperCaseStream", dir);
    await using _server = server;
    assert.equal(await ask(port, "hello, nc\n"), "HELLO, NC\n");
    const code = await codeBlock("README.md", "ts ignore", "exchange(");
    assert.ok(code.includes("{ port: 9990 }"), code);
    const path = await writeProgram(
      code.replace("{ port: 9990 }", `{ port: ${port} }`),
      dir,
      "client.ts",
    );
    await using client = new Example(path, [], {
      script: true,
      flags: ["--check", "-N"],
    });
    const lines = await client.rest();
    assert.equal((await client.child.status).code, 0);
    assert.deepEqual(lines, ["HELLO, SOCKETS", ""]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("README's framed() server answers the nc session README shows", async () => {
  const dir = await Deno.makeTempDir({ prefix: "sock_readme_" });
  try {
    const { server, port } = await startReadmeServer("framed(", dir);
    await using _server = server;
    const session = await codeBlock("README.md", "console", "nc -N");
    const [command, ...output] = session.trimEnd().split("\n");
    const input = command!.match(
      /^\$ printf '([^']*)' \| nc -N 127\.0\.0\.1 9990$/,
    );
    assert.ok(input, command);
    // What `nc -N` does: send the input, then FIN; print all until the end.
    const text = input[1]!.replaceAll("\\n", "\n");
    assert.equal(await ask(port, text), output.join("\n") + "\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** How to look for openssl, which the TLS recipes of docs/tls.md run. */
const OPENSSL = { args: ["version"], apt: "openssl", file: "examples_test" };

/** Runs docs/tls.md's first `sh` block containing `marker` with bash in `dir`. */
async function runTlsBlock(marker: string, dir: string): Promise<void> {
  const block = await codeBlock("docs/tls.md", "sh", marker);
  const { code, stderr } = await new Deno.Command("bash", {
    args: ["-euo", "pipefail", "-c", block],
    cwd: dir,
    stdout: "null",
    stderr: "piped",
  }).output();
  assert.equal(code, 0, new TextDecoder().decode(stderr));
}

/** Upper-cases "secret" through a TLS server with these files. */
async function tlsRoundTrip(
  files: { cert: string; key: string; ca: string },
): Promise<void> {
  const [cert, key, ca] = await Promise.all(
    [files.cert, files.key, files.ca].map((f) => Deno.readTextFile(f)),
  );
  await using server = serve(
    { port: 0, cert, key },
    () => new UpperCaseStream(),
  );
  const { port } = server.addr as Deno.NetAddr;
  for (const hostname of ["localhost", "127.0.0.1"]) {
    const conn = await connect({ hostname, port, tls: true, caCerts: [ca] });
    const input = ReadableStream.from([encoder.encode("secret")]);
    assert.equal(await new Response(exchange(conn, input)).text(), "SECRET");
  }
  // Without the CA, the handshake fails, and says so.
  await assert.rejects(
    connect({ hostname: "localhost", port, tls: true }),
    (error) => error instanceof ConnectError && error.tlsHandshake,
  );
}

Deno.test("docs/tls.md's TLS recipe (a leaf signed by a throw-away CA) works with serve(), connect() and both programs", async () => {
  if (!installed("openssl", OPENSSL)) return;
  const dir = await Deno.makeTempDir({ prefix: "sock_tls_" });
  try {
    await runTlsBlock("openssl x509 -req", dir);
    const cert = `${dir}/cert.pem`, key = `${dir}/key.pem`;
    await tlsRoundTrip({ cert, key, ca: `${dir}/ca.pem` });
    // The programs, as docs/tls.md runs them (port 0 here).
    await using server = new Example(
      "server.ts",
      ["--cert", cert, "--key", key, "-p", "0"],
      { program: true, flags: ["-N", "-R"] },
    );
    const [, port] = await server.waitFor(
      /^Listening on 127\.0\.0\.1:(\d+) with TLS/,
    );
    const client = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-N",
        "-R",
        "client.ts",
        "--ca",
        `${dir}/ca.pem`,
        "localhost",
        port!,
      ],
      cwd: root,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = client.stdin.getWriter();
    await writer.write(encoder.encode("hello\n"));
    await writer.close();
    const { code, stdout, stderr } = await client.output();
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    assert.equal(new TextDecoder().decode(stdout), "HELLO\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("docs/tls.md's short TLS recipe (a self-signed certificate, CA:FALSE) works with serve() and connect()", async () => {
  if (!installed("openssl", OPENSSL)) return;
  const dir = await Deno.makeTempDir({ prefix: "sock_tls_" });
  try {
    await runTlsBlock("-addext", dir);
    const cert = `${dir}/cert.pem`;
    await tlsRoundTrip({ cert, key: `${dir}/key.pem`, ca: cert });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

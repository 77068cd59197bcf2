/**
 * Tests of the framing examples: the DNS-over-TCP responder and the
 * Redis-protocol server, with Deno-made clients always and with `dig` and
 * `redis-cli` when they are installed (packages dnsutils and redis-tools).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { framed, lengthPrefixed } from "../framing.ts";
import { Connection } from "../connection.ts";
import { answer } from "../examples/dns_tcp_server.ts";
import { execute, serveRedis } from "../examples/redis_server.ts";
import { installed } from "./_util.ts";

const root = fileURLToPath(new URL("../", import.meta.url));
const encoder = new TextEncoder();
const decoder = new TextDecoder();

const FILE = "framing_examples_test";
const hasDig = installed("dig", { args: ["-v"], apt: "dnsutils", file: FILE });
const hasRedisCli = installed("redis-cli", {
  args: ["-v"],
  apt: "redis-tools",
  file: FILE,
});

/** Runs a program to its end and returns its stdout. */
async function run(program: string, args: string[], stdin?: string) {
  const child = new Deno.Command(program, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(encoder.encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  assert.equal(
    code,
    0,
    `${program} ${args.join(" ")}: ${decoder.decode(stderr)}`,
  );
  return decoder.decode(stdout);
}

/** An example program, running until disposed of; waits for its port. */
class Example implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #output: ReadableStreamDefaultReader<string>;

  constructor(file: string) {
    this.#child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-N", `examples/${file}`, "0"],
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#output = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** Reads stdout until it names the port the program listens on. */
  async port(): Promise<number> {
    let seen = "";
    while (true) {
      const { done, value } = await this.#output.read();
      if (done) throw new Error(`Example ended before listening: ${seen}`);
      seen += value;
      const match = seen.match(/ on 127\.0\.0\.1:(\d+)\n/);
      if (match) return Number(match[1]);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.#child.kill("SIGTERM");
    await this.#output.cancel();
    await this.#child.status;
  }
}

/** A DNS query message: a header with RD set and one question. */
function dnsQuery(id: number, name: string, type: number): Uint8Array {
  const labels = name.split(".").filter(Boolean).flatMap((label) => [
    label.length,
    ...encoder.encode(label),
  ]);
  return new Uint8Array([
    id >> 8,
    id & 0xff,
    0x01,
    0x00,
    0,
    1,
    0,
    0,
    0,
    0,
    0,
    0,
    ...labels,
    0,
    type >> 8,
    type & 0xff,
    0,
    1,
  ]);
}

/** The fields of a DNS response the tests look at. */
function dnsResponse(message: Uint8Array) {
  const view = new DataView(message.buffer, message.byteOffset, message.length);
  return {
    id: view.getUint16(0),
    response: (view.getUint16(2) & 0x8000) !== 0,
    rcode: view.getUint16(2) & 0x0f,
    questions: view.getUint16(4),
    answers: view.getUint16(6),
    address: view.getUint16(6) > 0 ? [...message.subarray(-4)].join(".") : "",
  };
}

Deno.test("examples/dns_tcp_server.ts answers A queries with 127.0.0.1 and other types with none", () => {
  assert.deepEqual(dnsResponse(answer(dnsQuery(7, "example.com", 1))), {
    id: 7,
    response: true,
    rcode: 0,
    questions: 1,
    answers: 1,
    address: "127.0.0.1",
  });
  const aaaa = dnsResponse(answer(dnsQuery(8, "example.com", 28)));
  assert.equal(aaaa.answers, 0);
  assert.equal(aaaa.rcode, 0);
  // A question cut short is a format error; a status query is not implemented.
  assert.equal(
    dnsResponse(answer(dnsQuery(9, "a.b", 1).subarray(0, 16))).rcode,
    1,
  );
  const status = dnsQuery(10, "a", 1);
  status[2] = 0x10; // opcode 2
  assert.equal(dnsResponse(answer(status)).rcode, 4);
  assert.throws(() => answer(new Uint8Array(5)), {
    name: "SyntaxError",
    message:
      "Cannot answer DNS query as it must be at least 12 bytes: current length is 5 bytes",
  });
});

Deno.test("examples/dns_tcp_server.ts answers pipelined queries from a Deno client over framed()", async () => {
  await using example = new Example("dns_tcp_server.ts");
  const port = await example.port();
  const { readable, writable } = framed(
    await Deno.connect({ hostname: "127.0.0.1", port }),
    lengthPrefixed("dns"),
  );
  const writer = writable.getWriter();
  await writer.write(dnsQuery(1, "one.test", 1));
  await writer.write(dnsQuery(2, "two.test", 28));
  await writer.write(dnsQuery(3, "three.test", 1));
  await writer.close();
  const responses = await Array.fromAsync(readable, dnsResponse);
  assert.deepEqual(
    responses.map(({ id, answers, address }) => [id, answers, address]),
    [[1, 1, "127.0.0.1"], [2, 0, ""], [3, 1, "127.0.0.1"]],
  );
});

Deno.test({
  name: "examples/dns_tcp_server.ts answers dig +tcp",
  ignore: !hasDig,
  async fn() {
    await using example = new Example("dns_tcp_server.ts");
    const port = await example.port();
    const dig = (...args: string[]) =>
      run("dig", [
        "+tcp",
        "+tries=1",
        "+time=5",
        "@127.0.0.1",
        "-p",
        `${port}`,
        ...args,
      ]);
    assert.equal(await dig("+short", "example.com", "A"), "127.0.0.1\n");
    const full = await dig("www.example.org", "AAAA");
    assert.match(full, /status: NOERROR/);
    assert.match(full, /ANSWER: 0,/);
    assert.match(full, /\(TCP\)/);
  },
});

/** Serves one connection with serveRedis(), on loopback. */
function redisServer(maxLineLength?: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const store = new Map<string, Uint8Array>();
  const served = (async () => {
    for await (const conn of listener) {
      await serveRedis(conn, { store, maxLineLength });
    }
  })();
  return {
    port: listener.addr.port,
    store,
    async [Symbol.asyncDispose]() {
      listener.close();
      await served;
    },
  };
}

/** Sends `request` in awkward pieces, half-closes, reads the whole answer. */
async function ask(
  port: number,
  request: string | Uint8Array,
): Promise<string> {
  await using conn = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port }),
  );
  const bytes = typeof request === "string" ? encoder.encode(request) : request;
  for (let i = 0; i < bytes.length; i += 7) {
    await conn.write(bytes.subarray(i, i + 7));
  }
  await conn.closeWrite();
  return await new Response(conn.readable).text();
}

const resp = (...args: string[]) =>
  `*${args.length}\r\n` +
  args.map((a) => `$${encoder.encode(a).length}\r\n${a}\r\n`).join("");

Deno.test("examples/redis_server.ts answers pipelined RESP commands, values with CRLF inside", async () => {
  await using server = redisServer();
  const answer = await ask(
    server.port,
    resp("PING") + resp("SET", "k", "a\r\nb\nc\r") + resp("GET", "k") +
      resp("GET", "missing") + resp("ECHO", "héllo") + "PING\r\n" +
      resp("NOPE", "x") + resp("GET") + resp("SET", "empty", "") +
      resp("GET", "empty") + "PING inline\n",
  );
  assert.equal(
    answer,
    "+PONG\r\n+OK\r\n$7\r\na\r\nb\nc\r\r\n$-1\r\n$6\r\nhéllo\r\n+PONG\r\n" +
      "-ERR unknown command 'NOPE'\r\n" +
      "-ERR wrong number of arguments for 'get' command\r\n" +
      "+OK\r\n$0\r\n\r\n$6\r\ninline\r\n",
  );
  assert.deepEqual(server.store.get("k"), encoder.encode("a\r\nb\nc\r"));
});

Deno.test("examples/redis_server.ts answers a too-long line in order and goes on; a broken array ends the connection", async () => {
  await using server = redisServer(64);
  assert.equal(
    await ask(
      server.port,
      resp("ECHO", "a") + "x".repeat(1000) + "\r\n" + resp("ECHO", "b"),
    ),
    "$1\r\na\r\n-ERR Protocol error: line over 64 bytes\r\n$1\r\nb\r\n",
  );
  assert.equal(
    await ask(
      server.port,
      resp("PING") + "*2\r\n$3\r\nGET\r\n:1\r\n" + resp("PING"),
    ),
    "+PONG\r\n-ERR Protocol error: expected '$', got ':'\r\n",
  );
  assert.equal(
    await ask(server.port, "*1\r\n$4\r\nPINGPONG\r\n" + resp("PING")),
    "-ERR Protocol error: bulk length does not match\r\n",
  );
  assert.equal(await ask(server.port, resp("QUIT") + resp("PING")), "+OK\r\n");
});

Deno.test("examples/redis_server.ts execute() keeps a copy of each value", () => {
  const store = new Map<string, Uint8Array>();
  const value = encoder.encode("v");
  execute([encoder.encode("set"), encoder.encode("k"), value], store);
  value[0] = 0x78;
  assert.deepEqual(
    execute([encoder.encode("GET"), encoder.encode("k")], store),
    encoder.encode("v"),
  );
});

Deno.test({
  name: "examples/redis_server.ts talks to redis-cli",
  ignore: !hasRedisCli,
  async fn() {
    await using server = redisServer();
    const cli = (...args: string[]) =>
      run("redis-cli", ["-p", `${server.port}`, ...args]);
    assert.equal(await cli("PING"), "PONG\n");
    assert.equal(await cli("SET", "greeting", "hello world"), "OK\n");
    assert.equal(await cli("GET", "greeting"), "hello world\n");
    assert.equal(await cli("ECHO", "a b"), "a b\n");
    // Several commands on one connection, from standard input.
    assert.equal(
      await run(
        "redis-cli",
        ["-p", `${server.port}`],
        "SET a 1\nGET a\nPING\n",
      ),
      "OK\n1\nPONG\n",
    );
    // A value with CRLF inside, through -x (the last argument from stdin).
    assert.equal(
      await run(
        "redis-cli",
        ["-p", `${server.port}`, "-x", "SET", "v"],
        "multi\r\nline",
      ),
      "OK\n",
    );
    assert.equal(await cli("--no-raw", "GET", "v"), '"multi\\r\\nline"\n');
  },
});

Deno.test("examples/redis_server.ts runs as a program", async () => {
  await using example = new Example("redis_server.ts");
  const port = await example.port();
  assert.equal(
    await ask(port, resp("PING") + resp("GET", "x")),
    "+PONG\r\n$-1\r\n",
  );
});

/**
 * Tests of the framing examples: the DNS-over-TCP responder and the
 * Redis-protocol server, with Deno-made clients always and with `dig` and
 * `redis-cli` when they are installed (packages dnsutils and redis-tools).
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  framed,
  FrameTooLargeError,
  lengthPrefixed,
  TruncatedFrameError,
} from "../framing.ts";
import { Connection } from "../connection.ts";
import { answer } from "../examples/dns_tcp_server.ts";
import {
  CommandDecoder,
  execute,
  type Reply,
  ReplyEncoder,
  resp as respCodec,
  type RespOptions,
  serveRedis,
  Status,
} from "../examples/redis_server.ts";
import { chunkings } from "../testing.ts";
import { concat, installed } from "./_util.ts";

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
const hasRedisBenchmark = installed("redis-benchmark", {
  args: ["--version"],
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

/** Serves connections with serveRedis(), on loopback, until disposed of. */
function redisServer(maxCommandLength?: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const store = new Map<string, Uint8Array>();
  const served: Promise<void>[] = [];
  const accepting = (async () => {
    for await (const conn of listener) {
      served.push(serveRedis(conn, store, { maxCommandLength }));
    }
  })();
  return {
    port: listener.addr.port,
    store,
    async [Symbol.asyncDispose]() {
      listener.close();
      await accepting;
      await Promise.all(served);
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

/**
 * Runs the RESP decoder over `chunks`, as framed() does (one transform per
 * chunk, then flush), copying each command's arguments as it comes, since
 * they are views valid until the next call; the error, if any, last.
 */
function decodeCommands(
  chunks: readonly Uint8Array[],
  options?: RespOptions,
): (string[] | Error)[] {
  const decoder = new CommandDecoder(options);
  const out: (string[] | Error)[] = [];
  const emit = (args: Uint8Array[]) =>
    out.push(args.map((arg) => decoder_.decode(arg)));
  try {
    for (const chunk of chunks) decoder.transform(chunk.slice(), emit);
    decoder.flush();
  } catch (error) {
    out.push(error as Error);
  }
  return out;
}
const decoder_ = new TextDecoder("latin1");

/** A pipelined stream of commands of every kind, and what they decode to. */
const PIPELINE: [string, string[] | null][] = [
  [resp("PING"), ["PING"]],
  [resp("SET", "k", "a\r\nb\nc\r"), ["SET", "k", "a\r\nb\nc\r"]],
  ["PING\r\n", ["PING"]],
  ["  ECHO   spaced  out \n", ["ECHO", "spaced", "out"]],
  ["\r\n", null], // an empty line: no command
  ["   \r\n", null], // nor is a line of spaces
  ["*0\r\n", null], // an empty array: no command
  ["*-1\r\n", null], // a null array: no command
  [resp("SET", "", ""), ["SET", "", ""]],
  [resp("ECHO", "x".repeat(300)), ["ECHO", "x".repeat(300)]],
  [resp("GET", "k"), ["GET", "k"]],
];
const PIPELINE_BYTES = PIPELINE.map(([text]) => text).join("");
const PIPELINE_COMMANDS = PIPELINE.flatMap(([, args]) => args ? [args] : []);

Deno.test("examples/redis_server.ts CommandDecoder decodes a pipelined stream the same under every chunking", () => {
  for (const { name, chunks } of chunkings(PIPELINE_BYTES, { splits: 20 })) {
    assert.deepEqual(decodeCommands(chunks), PIPELINE_COMMANDS, name);
  }
});

Deno.test("examples/redis_server.ts CommandDecoder lends the rest of a large value (reserve/commit), with the same commands however the bytes are split between transform() and commit()", () => {
  const value = "v".repeat(50_000) + "\r\n" + "w".repeat(50_000);
  const input = encoder.encode(
    resp("SET", "k", value) + resp("GET", "k") + "PING\r\n",
  );
  const expected = [["SET", "k", value], ["GET", "k"], ["PING"]];
  for (const first of [1, 10, 1000, 60_000]) {
    for (const room of [7, 4096, 65536]) {
      const label = `first ${first}, room ${room}`;
      const decoder = new CommandDecoder();
      const out: string[][] = [];
      const emit = (args: Uint8Array[]) =>
        out.push(args.map((arg) => decoder_.decode(arg)));
      decoder.transform(input.subarray(0, first), emit);
      let lent = 0;
      for (let at = first; at < input.length;) {
        // As framed() does: into what the decoder lends, else a chunk.
        const into = decoder.reserve(room);
        const n = Math.min(into?.length ?? room, input.length - at);
        if (into) {
          assert.ok(into.length <= room, label);
          into.set(input.subarray(at, at + n));
          decoder.commit(n, emit);
          lent += n;
        } else decoder.transform(input.subarray(at, at + n), emit);
        at += n;
      }
      decoder.flush();
      assert.deepEqual(out, expected, label);
      if (room > 7 && first <= 1000) {
        assert.ok(lent > 90_000, `${label}: ${lent} bytes lent`);
      }
    }
  }
});

Deno.test("examples/redis_server.ts stores and gives back a value larger than a read, byte for byte", async () => {
  await using server = redisServer();
  const value = Array.from({ length: 300_000 }, (_, i) => "abc\r\n"[i % 5]!)
    .join("");
  await using conn = new Connection(
    await Deno.connect({ hostname: "127.0.0.1", port: server.port }),
  );
  await conn.write(
    encoder.encode(resp("SET", "big", value) + resp("GET", "big")),
  );
  await conn.closeWrite();
  const answer = await new Response(conn.readable).text();
  assert.equal(answer, `+OK\r\n$300000\r\n${value}\r\n`);
  assert.deepEqual(server.store.get("big"), encoder.encode(value));
});

Deno.test("examples/redis_server.ts resp() decoder stream gives the same commands as the sync decoder", async () => {
  for (const { name, stream } of chunkings(PIPELINE_BYTES)) {
    const commands = await Array.fromAsync(
      stream().pipeThrough(respCodec().decoder()),
      (args) => args.map((arg) => decoder_.decode(arg)),
    );
    assert.deepEqual(commands, PIPELINE_COMMANDS, name);
  }
});

Deno.test("examples/redis_server.ts CommandDecoder hands out every command before a broken one, then a SyntaxError", () => {
  const cases: [string, string][] = [
    [
      "*2\r\n$3\r\nGET\r\n:1\r\n",
      "Cannot decode RESP command as argument 2 must start with '$': current byte is ':'",
    ],
    [
      "*1\r\n$4\r\nPINGPONG\r\n",
      'Cannot decode RESP command as argument 1 must end with "\\r\\n" after its 4 bytes: current bytes are 80 79',
    ],
    [
      "*x\r\n",
      'Cannot decode RESP command as its array length must be a decimal number and "\\r\\n": current text is "x"',
    ],
    [
      "*1\r\n$-1\r\n",
      'Cannot decode RESP command as its bulk length must be a decimal number and "\\r\\n": current text is "-"',
    ],
    [
      "*1\r\n$\r\n",
      'Cannot decode RESP command as its bulk length must be a decimal number and "\\r\\n": current text is "\\r\\n"',
    ],
  ];
  for (const [broken, message] of cases) {
    const bytes = resp("PING") + resp("ECHO", "a") + broken + resp("PING");
    for (const { name, chunks } of chunkings(bytes)) {
      const out = decodeCommands(chunks);
      assert.deepEqual(out.slice(0, 2), [["PING"], ["ECHO", "a"]], name);
      assert.equal(out.length, 3, name);
      assert.ok(out[2] instanceof SyntaxError, `${name}: ${out[2]}`);
      assert.equal(out[2].message, message, name);
    }
  }
});

Deno.test("examples/redis_server.ts CommandDecoder rejects a command over maxCommandLength however it is cut", () => {
  const limit = 64;
  const cases = [
    resp("ECHO", "x".repeat(100)), // a bulk string over the limit
    "x".repeat(100) + "\r\n", // an inline line over the limit
    `*${limit}\r\n`, // more arguments than the limit can hold
    "*" + "1".repeat(200), // a header that never ends
  ];
  for (const big of cases) {
    const bytes = resp("PING") + big + resp("PING");
    for (const { name, chunks } of chunkings(bytes)) {
      const out = decodeCommands(chunks, { maxCommandLength: limit });
      assert.deepEqual(out[0], ["PING"], name);
      assert.equal(out.length, 2, `${name}: ${JSON.stringify(out)}`);
      const error = out[1];
      assert.ok(
        error instanceof FrameTooLargeError || error instanceof SyntaxError,
        `${name}: ${error}`,
      );
      if (error instanceof FrameTooLargeError) {
        assert.equal(error.limit, limit);
        assert.ok(error.length > limit, name);
        assert.match(
          error.message,
          /^Cannot decode RESP command as it must be at most 64 bytes: current length is at least \d+ bytes$/,
        );
      }
    }
  }
  // Exactly at the limit is fine.
  const exact = resp("ECHO", "x".repeat(43));
  assert.equal(exact.length, 64);
  assert.deepEqual(
    decodeCommands([encoder.encode(exact)], { maxCommandLength: 64 }).length,
    1,
  );
  assert.throws(() => new CommandDecoder({ maxCommandLength: 0 }), {
    name: "RangeError",
    message:
      "Cannot create RESP decoder as maxCommandLength must be a positive integer: current value is 0",
  });
});

Deno.test("examples/redis_server.ts CommandDecoder reports a command cut short by the end of input", () => {
  const bytes = resp("PING") + resp("SET", "k", "value").slice(0, -3);
  for (const { name, chunks } of chunkings(bytes)) {
    const out = decodeCommands(chunks);
    assert.deepEqual(out[0], ["PING"], name);
    const error = out[1];
    assert.ok(error instanceof TruncatedFrameError, `${name}: ${error}`);
    assert.equal(error.received, resp("SET", "k", "value").length - 3, name);
  }
});

Deno.test("examples/redis_server.ts ReplyEncoder writes the same bytes in place as through transform()", () => {
  const replies: Reply[] = [
    new Status("+OK"),
    null,
    42,
    encoder.encode("a\r\nb"),
    [encoder.encode("x"), [null, 7], new Status("-ERR no")],
    [],
  ];
  const want = "+OK\r\n$-1\r\n:42\r\n$4\r\na\r\nb\r\n" +
    "*3\r\n$1\r\nx\r\n*2\r\n$-1\r\n:7\r\n-ERR no\r\n*0\r\n";
  const replyEncoder = new ReplyEncoder();
  const parts: Uint8Array[] = [];
  for (const reply of replies) {
    replyEncoder.transform(reply, (bytes) => parts.push(bytes.slice()));
  }
  assert.equal(decoder.decode(concat(parts)), want);
  const buffer = new Uint8Array(want.length);
  let offset = 0;
  for (const reply of replies) {
    offset = replyEncoder.encodeInto(reply, buffer, offset);
  }
  assert.equal(offset, want.length);
  assert.equal(decoder.decode(buffer), want);
  // A reply that does not fit says so, whichever part overflows.
  for (let size = 0; size < 12; size++) {
    assert.equal(
      replyEncoder.encodeInto(
        [encoder.encode("abc"), null],
        new Uint8Array(size),
        0,
      ),
      -1,
    );
  }
});

Deno.test("examples/redis_server.ts answers pipelined RESP commands, values with CRLF inside", async () => {
  await using server = redisServer();
  const answer = await ask(
    server.port,
    resp("PING") + resp("SET", "k", "a\r\nb\nc\r") + resp("GET", "k") +
      resp("GET", "missing") + resp("ECHO", "héllo") + "PING\r\n" +
      resp("NOPE", "x") + resp("GET") + resp("SET", "empty", "") +
      resp("GET", "empty") + "PING inline\n" + "\r\n" +
      resp("config", "get", "save"),
  );
  assert.equal(
    answer,
    "+PONG\r\n+OK\r\n$7\r\na\r\nb\nc\r\r\n$-1\r\n$6\r\nhéllo\r\n+PONG\r\n" +
      "-ERR unknown command 'NOPE'\r\n" +
      "-ERR wrong number of arguments for 'get' command\r\n" +
      "+OK\r\n$0\r\n\r\n$6\r\ninline\r\n*2\r\n$4\r\nsave\r\n$0\r\n\r\n",
  );
  assert.deepEqual(server.store.get("k"), encoder.encode("a\r\nb\nc\r"));
});

Deno.test("examples/redis_server.ts answers the commands before a broken one, then the error, and hangs up", async () => {
  await using server = redisServer(64);
  assert.match(
    await ask(
      server.port,
      resp("ECHO", "a") + "x".repeat(1000) + "\r\n" + resp("ECHO", "b"),
    ),
    /^\$1\r\na\r\n-ERR Protocol error: Cannot decode RESP command as it must be at most 64 bytes: current length is at least \d+ bytes\r\n$/,
  );
  assert.equal(
    await ask(
      server.port,
      resp("PING") + "*2\r\n$3\r\nGET\r\n:1\r\n" + resp("PING"),
    ),
    "+PONG\r\n-ERR Protocol error: Cannot decode RESP command as argument 2 must start with '$': current byte is ':'\r\n",
  );
  assert.equal(
    await ask(server.port, resp("PING") + "*1\r\n$4\r\nPI"),
    "+PONG\r\n-ERR Protocol error: Cannot decode frame as the input ended inside it: received 10 of 14 bytes\r\n",
  );
  assert.equal(await ask(server.port, resp("QUIT") + resp("PING")), "+OK\r\n");
});

Deno.test("examples/redis_server.ts answers the replies to many pipelined commands in order", async () => {
  await using server = redisServer();
  // Enough to fill the write buffer several times over.
  const count = 20000;
  let request = "";
  let want = "";
  for (let i = 0; i < count; i++) {
    request += i % 3 === 0 ? `ECHO ${i}\r\n` : resp("ECHO", `${i}`);
    want += `$${`${i}`.length}\r\n${i}\r\n`;
  }
  assert.equal(await ask(server.port, request), want);
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
  // Keys are bytes: two keys that differ only past ASCII stay apart.
  execute([encoder.encode("SET"), new Uint8Array([0xc3, 0xa9]), value], store);
  assert.equal(
    execute([encoder.encode("GET"), new Uint8Array([0xc3, 0xaa])], store),
    null,
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

Deno.test({
  name: "examples/redis_server.ts serves redis-benchmark, pipelined and not",
  ignore: !hasRedisBenchmark,
  async fn() {
    await using server = redisServer();
    for (const pipeline of ["1", "16"]) {
      const csv = await run("redis-benchmark", [
        "-p",
        `${server.port}`,
        "-q",
        "-c",
        "8",
        "-n",
        "2000",
        "-P",
        pipeline,
        "-t",
        "ping_inline,ping_mbulk,set,get",
        "--csv",
      ]);
      const tests = [...csv.matchAll(/^"([A-Z_]+)","[\d.]+"/gm)].map((m) =>
        m[1]
      );
      assert.deepEqual(tests, ["PING_INLINE", "PING_MBULK", "SET", "GET"]);
      assert.doesNotMatch(csv, /WARNING|error/i);
    }
    // SET stored its 3-byte value under the one key it uses.
    assert.equal(server.store.get("key:__rand_int__")?.length, 3);
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

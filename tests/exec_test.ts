import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { exec, execHandler, parseCommand } from "../services.ts";
import { Connection } from "../connection.ts";
import { type ConnectionStats, serve } from "../server.ts";
import { installed, readAll } from "./_util.ts";

/** A server running `handler`, recording exits, closes and errors. */
function serveExec(
  command: string | string[],
  options: { gracePeriod?: number } = {},
) {
  const exits: Deno.CommandStatus[] = [];
  const errors: unknown[] = [];
  const closed = Promise.withResolvers<ConnectionStats>();
  const exited = Promise.withResolvers<Deno.CommandStatus>();
  const server = serve(
    {
      port: 0,
      gracePeriod: options.gracePeriod,
      onError: (error) => errors.push(error),
      onClose: (info) => closed.resolve(info),
    },
    execHandler(command, {
      onExit: (status) => {
        exits.push(status);
        exited.resolve(status);
      },
    }),
  );
  return {
    server,
    port: (server.addr as Deno.NetAddr).port,
    exits,
    exited: exited.promise,
    errors,
    closed: closed.promise,
  };
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let n = 0; n < bytes.length;) {
    n += await conn.write(bytes.subarray(n));
  }
}

/** Fills `block` with xorshift32 noise from `seed`. */
function noise(block: Uint8Array, seed: number): void {
  const words = new Uint32Array(
    block.buffer,
    block.byteOffset,
    block.length >>> 2,
  );
  let x = seed | 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x;
  }
}

Deno.test("execHandler() carries 50 MiB both ways through cat, byte-exact, with half-close", async () => {
  const { server, port, exited, errors, closed } = serveExec("cat");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const size = 50 * 1024 * 1024;
  const sent = createHash("sha256");
  const got = createHash("sha256");
  let received = 0;
  const send = async () => {
    const block = new Uint8Array(1024 * 1024);
    for (let i = 0; i < size / block.length; i++) {
      noise(block, i + 1);
      sent.update(block);
      await writeAll(conn, block);
    }
    await conn.closeWrite(); // cat reads end-of-file, and ends
  };
  const receive = async () => {
    const buffer = new Uint8Array(256 * 1024);
    for (let n; (n = await conn.read(buffer)) !== null;) {
      got.update(buffer.subarray(0, n));
      received += n;
    }
  };
  // Both at once: ncat's --exec deadlocks here.
  await Promise.all([send(), receive()]);
  assert.equal(received, size);
  assert.equal(got.digest("hex"), sent.digest("hex"));
  assert.equal((await exited).success, true);
  assert.equal((await closed).error, undefined);
  assert.deepEqual(errors, []);
});

Deno.test("execHandler() loses no tail of tr's output after the client's FIN", async () => {
  const { server, port, exited } = serveExec("tr a-z A-Z");
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // Over a MiB, ending in a partial line: tr's last write comes at EOF.
  const text = "the quick brown fox jumps over the lazy dog\n".repeat(25_000) +
    "tail without newline";
  const bytes = new TextEncoder().encode(text);
  const [, answer] = await Promise.all([
    writeAll(conn, bytes).then(() => conn.closeWrite()),
    readAll(conn),
  ]);
  assert.equal(answer.length, bytes.length);
  assert.equal(new TextDecoder().decode(answer), text.toUpperCase());
  assert.equal((await exited).code, 0);
});

Deno.test("execHandler() ends cleanly when the program exits before reading everything", async () => {
  const { server, port, exited, closed, errors } = serveExec(
    "head -c 10",
  );
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  // Far more than the pipe and socket buffers: what head does not read is
  // drained by the server until our FIN, so the client is never reset.
  const bytes = new Uint8Array(8 * 1024 * 1024).fill(0x61);
  const [, answer] = await Promise.all([
    writeAll(conn, bytes).then(() => conn.closeWrite()),
    readAll(conn),
  ]);
  assert.equal(new TextDecoder().decode(answer), "aaaaaaaaaa");
  assert.equal((await exited).code, 0);
  const stats = await closed;
  assert.equal(stats.error, undefined);
  assert.equal(stats.bytesIn, bytes.length);
  assert.deepEqual(errors, []);
});

Deno.test("execHandler() reports the exit code of a program that does not read", async () => {
  const { server, port, exited } = serveExec(["sh", "-c", "echo bye; exit 3"]);
  await using _ = server;
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await writeAll(conn, new TextEncoder().encode("ignored"));
  await conn.closeWrite();
  assert.equal(new TextDecoder().decode(await readAll(conn)), "bye\n");
  const status = await exited;
  assert.equal(status.success, false);
  assert.equal(status.code, 3);
});

Deno.test("execHandler() kills the program when the client resets", async () => {
  const { server, port, exits, closed } = serveExec("yes");
  await using _ = server;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(1024);
  assert.ok((await conn.read(buffer))! > 0);
  conn.close(); // with unread bytes: a reset
  // The handler settles only once `yes` has exited: it was killed.
  const stats = await closed;
  assert.ok(
    stats.error instanceof Deno.errors.ConnectionReset ||
      stats.error instanceof Deno.errors.BrokenPipe,
    `error: ${stats.error}`,
  );
  assert.deepEqual(exits, []); // onExit is for programs that ran their course
});

Deno.test("execHandler() kills the program when the server closes the connection", async () => {
  const { server, port, closed } = serveExec(
    ["sh", "-c", "echo ready; exec sleep 1000"],
    { gracePeriod: 0 },
  );
  using conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const buffer = new Uint8Array(16);
  const n = await conn.read(buffer);
  assert.equal(new TextDecoder().decode(buffer.subarray(0, n!)), "ready\n");
  // Returns only once the handler settled: sleep was killed.
  await server.shutdown();
  assert.notEqual((await closed).error, undefined);
});

Deno.test("execHandler() refuses a missing program at once, before any client", () => {
  for (const program of ["no-such-program-x7q", "/no/such/program-x7q"]) {
    assert.throws(() => execHandler(program), {
      name: "NotFound",
      message:
        `Cannot run '${program}' as the program was not found: check its name, its PATH or its working directory`,
    });
  }
  // A program that exists is not run by the check.
  execHandler("false");
});

Deno.test("exec() rejects a missing program with a clear error", async () => {
  const failed = Promise.withResolvers<unknown>();
  await using server = serve(
    { port: 0, onError: (error) => failed.resolve(error) },
    (connection) => exec(connection, "no-such-program-x7q").then(() => {}),
  );
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: server.addr.port,
  });
  const error = await failed.promise;
  assert.ok(error instanceof Deno.errors.NotFound);
  assert.equal(
    error.message,
    "Cannot run 'no-such-program-x7q' as the program was not found: check its name, its PATH or its working directory",
  );
  assert.equal((await readAll(conn)).length, 0);
});

Deno.test("execHandler() says --allow-run is needed when run permission is missing", async () => {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { execHandler } from ${
        JSON.stringify(import.meta.resolve("../services.ts"))
      };
try {
  execHandler("tr a-z A-Z");
} catch (error) {
  console.log(error.name + ": " + error.message);
}
`,
    );
    const { stdout, code } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-prompt", "--no-config", script],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    assert.equal(code, 0);
    assert.equal(
      new TextDecoder().decode(stdout),
      "NotCapable: Cannot run 'tr' as run permission is missing: run again with --allow-run=tr or --allow-run\n",
    );
  } finally {
    await Deno.remove(script);
  }
});

Deno.test("execHandler() refuses a bad command at once", () => {
  assert.throws(
    () => execHandler(""),
    new TypeError(
      `Cannot parse command as it holds no program name: current value is ""`,
    ),
  );
  assert.throws(
    () => execHandler([]),
    new TypeError(
      "Cannot run command as it must be a program name and arguments, all strings: current value is []",
    ),
  );
  assert.throws(
    () => execHandler(["cat", 1 as unknown as string]),
    TypeError,
  );
  assert.throws(
    () => execHandler("tr 'a-z A-Z"),
    new SyntaxError(
      `Cannot parse command as a ' quote is not closed: current value is "tr 'a-z A-Z"`,
    ),
  );
});

Deno.test("parseCommand() splits words, quotes and escapes like a shell, without expansion", () => {
  assert.deepEqual(parseCommand("  cat  "), ["cat"]);
  assert.deepEqual(parseCommand("tr\ta-z\nA-Z"), ["tr", "a-z", "A-Z"]);
  assert.deepEqual(parseCommand(`sh -c 'echo "$HOME" \\n'`), [
    "sh",
    "-c",
    `echo "$HOME" \\n`,
  ]);
  assert.deepEqual(parseCommand(`echo "a \\"b\\" \\\\ \\n" c`), [
    "echo",
    `a "b" \\ \\n`,
    "c",
  ]);
  assert.deepEqual(parseCommand(`a'b'"c"\\ d`), ["abc d"]);
  assert.deepEqual(parseCommand(`x '' ""`), ["x", "", ""]);
  assert.deepEqual(parseCommand("*.ts ~ $PATH"), ["*.ts", "~", "$PATH"]);
  assert.throws(() => parseCommand(`echo "open`), SyntaxError);
  assert.throws(
    () => parseCommand("echo \\"),
    new SyntaxError(
      `Cannot parse command as it ends in a backslash: current value is "echo \\\\"`,
    ),
  );
  assert.throws(() => parseCommand("   "), TypeError);
});

Deno.test("exec() runs over a connection.ts Connection and resolves to the exit status", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = listener.accept().then(async (conn) => {
    await using connection = new Connection(conn);
    return await exec(connection, ["sh", "-c", "tr a-z A-Z; exit 5"]);
  });
  using conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  await writeAll(conn, new TextEncoder().encode("over connection"));
  await conn.closeWrite();
  assert.equal(
    new TextDecoder().decode(await readAll(conn)),
    "OVER CONNECTION",
  );
  assert.equal((await served).code, 5);
});

/** Runs a netcat-like client `argv` with `input` on stdin; returns stdout. */
async function foreignClient(
  argv: string[],
  input: Uint8Array,
): Promise<{ output: Uint8Array; code: number }> {
  const child = new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const [, output, status] = await Promise.all([
    ReadableStream.from([input]).pipeTo(child.stdin), // then EOF
    new Response(child.stdout).bytes(),
    child.status,
  ]);
  return { output, code: status.code };
}

const FILE = "exec_test";
const peers = [
  {
    name: "socat",
    // -t: how long socat waits for our FIN after it sent its own.
    argv: (
      port: number,
    ) => ["socat", "-t", "30", "STDIO", `TCP:127.0.0.1:${port}`],
    present: installed("socat", { args: ["-V"], apt: "socat", file: FILE }),
  },
  {
    name: "ncat",
    argv: (port: number) => ["ncat", "127.0.0.1", String(port)],
    present: installed("ncat", { apt: "ncat", file: FILE }),
  },
];

for (const peer of peers) {
  Deno.test({
    name:
      `execHandler() passes half-close both ways with ${peer.name} as the client`,
    ignore: !peer.present,
    async fn() {
      const { server, port, exited } = serveExec("tr a-z A-Z");
      await using _ = server;
      // ncat and socat send FIN at the end of their stdin, and exit at ours.
      const text = "from a real peer\n".repeat(200_000) + "and a tail";
      const { output, code } = await foreignClient(
        peer.argv(port),
        new TextEncoder().encode(text),
      );
      assert.equal(code, 0);
      assert.equal(output.length, text.length);
      assert.equal(new TextDecoder().decode(output), text.toUpperCase());
      assert.equal((await exited).code, 0);
    },
  });
}

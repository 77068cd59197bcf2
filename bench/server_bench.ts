/**
 * Throughput and round trips of `serve()` beside baselines measured in the
 * same run: a bare `conn.read`/`conn.write` loop server (echo, and the same
 * loop applying `upperCase()`), and Node's `net` echo server.
 *
 * Every server runs in its own process (see `_echo_server.ts`); the load
 * comes from this one. Run:
 *
 * ```sh
 * deno run -N -R --allow-run bench/server_bench.ts [--mib 64] [--seconds 2] [--rounds 1]
 * ```
 *
 * Cells: 64 MiB through 1 and 16 connections (MiB/s), and round trips of
 * 64-byte messages over 1 and 64 connections (round trips per second). Each
 * `sock-*` figure is given as a ratio to the bare loop doing the same work.
 *
 * @module
 */

import { parseArgs } from "node:util";

const { values } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    mib: { type: "string", default: "64" },
    seconds: { type: "string", default: "2" },
    rounds: { type: "string", default: "1" },
    kinds: {
      type: "string",
      default: "bare,bare-upper,node,sock-echo,sock-upper,sock-stream",
    },
    cells: { type: "string", default: "bulk1,bulk16,rt1,rt64" },
  },
});
const MIB = Number(values.mib);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const KINDS = values.kinds!.split(",");
const CELLS = values.cells!.split(",");
/** A bound on every run, whatever the figures say. */
const DEADLINE_MS = 120_000;

interface BenchServer {
  kind: string;
  port: number;
  stop(): Promise<void>;
}

async function startServer(kind: string): Promise<BenchServer> {
  const command = kind === "node"
    ? new Deno.Command("node", {
      args: [
        "-e",
        "require('net').createServer((s) => { s.on('error', () => {}); s.pipe(s); })" +
        ".listen(0, '127.0.0.1', function () { console.log(JSON.stringify({ port: this.address().port })); })",
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    })
    : new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-N",
        new URL("./_echo_server.ts", import.meta.url).pathname,
        "--kind",
        kind,
      ],
      stdout: "piped",
      stderr: "inherit",
      stdin: "null",
    });
  const child = command.spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream());
  let text = "";
  for await (const part of lines) {
    text += part;
    if (text.includes("\n")) break;
  }
  const { port } = JSON.parse(text);
  return {
    kind,
    port,
    async stop() {
      child.kill("SIGTERM");
      await child.status;
    },
  };
}

/** Lower-case text, so the upper-case servers have work on every byte. */
function payload(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = 0x61 + (i % 26);
  return bytes;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

/** Sends `total` bytes through one connection and reads them back. */
async function bulk(port: number, total: number, upper: boolean) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const chunk = payload(65536);
    const send = (async () => {
      for (let sent = 0; sent < total;) {
        const n = Math.min(chunk.length, total - sent);
        await writeAll(conn, chunk.subarray(0, n));
        sent += n;
      }
      await conn.closeWrite();
    })();
    const buffer = new Uint8Array(65536);
    let received = 0;
    let first = true;
    for (let n; (n = await conn.read(buffer)) !== null;) {
      if (first && n > 0) {
        // One look at the content: the right service answered.
        const expected = upper ? 0x41 : 0x61;
        if (buffer[0] !== expected) throw new Error("Wrong answer");
        first = false;
      }
      received += n;
    }
    await send;
    if (received !== total) {
      throw new Error(`Received ${received} bytes, sent ${total}`);
    }
  } finally {
    conn.close();
  }
}

async function bulkCell(server: BenchServer, conns: number): Promise<number> {
  const total = MIB * 1024 * 1024;
  const upper = server.kind.includes("upper");
  const start = performance.now();
  await Promise.all(
    Array.from(
      { length: conns },
      () => bulk(server.port, Math.floor(total / conns), upper),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return MIB / seconds;
}

async function roundTrips(
  port: number,
  until: number,
  upper: boolean,
): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const message = payload(64);
  const buffer = new Uint8Array(4096);
  let count = 0;
  try {
    while (performance.now() < until) {
      await writeAll(conn, message);
      let got = 0;
      while (got < message.length) {
        const n = await conn.read(buffer.subarray(got));
        if (n === null) throw new Error("Server closed early");
        got += n;
      }
      if (buffer[0] !== (upper ? 0x41 : 0x61)) throw new Error("Wrong answer");
      count++;
    }
    await conn.closeWrite();
    while (await conn.read(buffer) !== null) { /* to EOF */ }
  } finally {
    conn.close();
  }
  return count;
}

async function rtCell(server: BenchServer, conns: number): Promise<number> {
  const upper = server.kind.includes("upper");
  const start = performance.now();
  const until = start + SECONDS * 1000;
  const counts = await Promise.all(
    Array.from(
      { length: conns },
      () => roundTrips(server.port, until, upper),
    ),
  );
  const seconds = (performance.now() - start) / 1000;
  return counts.reduce((a, b) => a + b, 0) / seconds;
}

const cellDefs: Record<
  string,
  { label: string; unit: string; run: (s: BenchServer) => Promise<number> }
> = {
  bulk1: {
    label: `${MIB} MiB, 1 conn`,
    unit: "MiB/s",
    run: (s) => bulkCell(s, 1),
  },
  bulk16: {
    label: `${MIB} MiB, 16 conns`,
    unit: "MiB/s",
    run: (s) => bulkCell(s, 16),
  },
  rt1: { label: "64 B rt, 1 conn", unit: "rt/s", run: (s) => rtCell(s, 1) },
  rt64: { label: "64 B rt, 64 conns", unit: "rt/s", run: (s) => rtCell(s, 64) },
};

function withDeadline<T>(promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout>;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("Benchmark run exceeded its deadline")),
        DEADLINE_MS,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

if (import.meta.main) {
  const servers: BenchServer[] = [];
  try {
    for (const kind of KINDS) servers.push(await startServer(kind));
    const results = new Map<string, Map<string, number>>();
    for (const cell of CELLS) {
      const def = cellDefs[cell];
      if (!def) throw new TypeError(`Cannot run unknown cell '${cell}'`);
      const best = new Map<string, number>();
      for (let round = 0; round < ROUNDS; round++) {
        for (const server of servers) {
          const value = await withDeadline(def.run(server));
          best.set(server.kind, Math.max(best.get(server.kind) ?? 0, value));
        }
      }
      results.set(cell, best);
    }
    const ratio = (value: number, base: number | undefined) =>
      base ? (value / base).toFixed(2) : "-";
    console.log(
      `| cell | ${KINDS.join(" | ")} | ${
        KINDS.filter((k) => k.startsWith("sock-")).map((k) => `${k}/bare`)
          .join(" | ")
      } |`,
    );
    console.log(
      `|${
        " --- |".repeat(
          KINDS.length * 1 + 1 +
            KINDS.filter((k) => k.startsWith("sock-")).length,
        )
      }`,
    );
    for (const cell of CELLS) {
      const def = cellDefs[cell]!;
      const best = results.get(cell)!;
      const figures = KINDS.map((k) =>
        Math.round(best.get(k)!).toLocaleString("en-US")
      );
      const ratios = KINDS.filter((k) => k.startsWith("sock-")).map((k) => {
        const base = k === "sock-upper" && best.has("bare-upper")
          ? best.get("bare-upper")
          : best.get("bare");
        return ratio(best.get(k)!, base);
      });
      console.log(
        `| ${def.label} (${def.unit}) | ${figures.join(" | ")} | ${
          ratios.join(" | ")
        } |`,
      );
    }
    console.log(
      "\nRatios: each sock-* figure over the bare loop doing the same work (sock-upper over bare-upper).",
    );
  } finally {
    for (const server of servers) await server.stop();
  }
}

/**
 * Micro-benchmarks of coalesced writes, for `deno bench`: 1024 writes of
 * 64 bytes, then FIN, read to the end by the peer, as bare `conn.write()`
 * calls (the baseline) and through a `Connection`, whose small writes are
 * copied into one buffer and leave in few calls. Measured over an in-memory
 * `connPair()` (the cost of the calls themselves) and over loopback TCP
 * (where each call is a system call).
 *
 * ```sh
 * deno bench -N bench/write_bench.ts
 * ```
 *
 * Each group's first entry is its baseline: read the "x faster/slower"
 * lines of the summary, not the absolute times, which vary by machine.
 *
 * @module
 */

import { Connection } from "../connection.ts";
import { connPair } from "../testing.ts";

const WRITES = 1024;
const SIZE = 64;
const message = new Uint8Array(SIZE).fill(0x61);

/** Reads until the peer's FIN; returns the byte count. */
async function drain(conn: Deno.Conn): Promise<number> {
  const buffer = new Uint8Array(64 * 1024);
  let total = 0;
  for (let n; (n = await conn.read(buffer)) !== null;) total += n;
  return total;
}

function check(total: number): void {
  if (total !== WRITES * SIZE) {
    throw new Error(
      `Cannot trust the run as the peer must read ${
        WRITES * SIZE
      } bytes: current count is ${total}`,
    );
  }
}

/** Bare writes: one call per message, each awaited, as a naive loop does. */
async function bareWrites(conn: Deno.Conn): Promise<void> {
  for (let i = 0; i < WRITES; i++) {
    for (let at = 0; at < SIZE;) at += await conn.write(message.subarray(at));
  }
  await conn.closeWrite();
}

/** The same writes through a Connection, each awaited too. */
async function connectionWrites(connection: Connection): Promise<void> {
  for (let i = 0; i < WRITES; i++) await connection.write(message);
  await connection.closeWrite();
}

Deno.bench({
  name: "bare conn.write(), in memory",
  group: "1024 writes of 64 B, in memory",
  baseline: true,
  fn: async () => {
    const [a, b] = connPair();
    const [, total] = await Promise.all([bareWrites(a), drain(b)]);
    check(total);
    a.close();
    b.close();
  },
});
Deno.bench({
  name: "Connection.write(), in memory",
  group: "1024 writes of 64 B, in memory",
  fn: async () => {
    const [a, b] = connPair();
    const connection = new Connection(a);
    const [, total] = await Promise.all([
      connectionWrites(connection),
      drain(b),
    ]);
    check(total);
    connection.close();
    b.close();
  },
});

// One listener for the loopback group; each iteration is a new connection.
const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });

async function loopbackPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const accepted = listener.accept();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  client.setNoDelay(true);
  return [client, await accepted];
}

Deno.bench({
  name: "bare conn.write(), loopback TCP",
  group: "1024 writes of 64 B, loopback TCP",
  baseline: true,
  fn: async () => {
    const [a, b] = await loopbackPair();
    const [, total] = await Promise.all([bareWrites(a), drain(b)]);
    check(total);
    a.close();
    b.close();
  },
});
Deno.bench({
  name: "Connection.write(), loopback TCP",
  group: "1024 writes of 64 B, loopback TCP",
  fn: async () => {
    const [a, b] = await loopbackPair();
    const connection = new Connection(a);
    const [, total] = await Promise.all([
      connectionWrites(connection),
      drain(b),
    ]);
    check(total);
    connection.close();
    b.close();
  },
});

/**
 * The load generator of `connection_bench.ts`: workloads run from the
 * benchmark's process against one server process, with bare `Deno.Conn`s
 * (so the client costs the same whatever the server), every loop bounded by
 * a count and by a deadline, and every answer checked.
 *
 * @module
 */

/** What a server answers: the same bytes, upper-cased, or a line protocol. */
export type Answer = "echo" | "upper" | "lines";

const LF = 0x0a;
const PONG = new TextEncoder().encode("+PONG\r\n");
const CHUNK = 65536;

/**
 * The connections of one measurement, closed together when it is over or
 * past its deadline, so that no loop outlives it.
 */
export class Scope {
  readonly #conns = new Set<Deno.Conn>();
  readonly #timer: ReturnType<typeof setTimeout>;
  #expired = false;
  readonly deadline: number;

  constructor(ms: number) {
    this.deadline = performance.now() + ms;
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.closeAll();
    }, ms);
  }

  get expired(): boolean {
    return this.#expired || performance.now() > this.deadline;
  }

  async connect(port: number): Promise<Deno.Conn> {
    if (this.expired) throw new Error("Measurement exceeded its deadline");
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    this.#conns.add(conn);
    return conn;
  }

  close(conn: Deno.Conn): void {
    if (this.#conns.delete(conn)) conn.close();
  }

  closeAll(): void {
    for (const conn of this.#conns) conn.close();
    this.#conns.clear();
  }

  /** Ends the scope; throws if the deadline cut the measurement short. */
  end(): void {
    clearTimeout(this.#timer);
    this.closeAll();
    if (this.#expired) throw new Error("Measurement exceeded its deadline");
  }
}

/** Lower-case letters, so the upper-case servers work on every byte. */
function payload(size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = 0x61 + (i % 26);
  return bytes;
}

/** The byte a server answers for `byte`. */
function expected(byte: number, answer: Answer): number {
  return answer === "upper" ? byte - 0x20 : byte;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let written = 0; written < bytes.length;) {
    written += await conn.write(bytes.subarray(written));
  }
}

async function readExactly(
  conn: Deno.Conn,
  buffer: Uint8Array,
  size: number,
): Promise<void> {
  for (let got = 0; got < size;) {
    const n = await conn.read(buffer.subarray(got, size));
    if (n === null) {
      throw new Error(`Server closed after ${got} of ${size} bytes`);
    }
    got += n;
  }
}

function wrong(what: string, got: number, want: number): Error {
  return new Error(
    `Wrong answer in ${what}: byte ${got} where ${want} was expected`,
  );
}

async function bulkOne(
  scope: Scope,
  port: number,
  total: number,
  until: number,
  answer: Answer,
): Promise<number> {
  const conn = await scope.connect(port);
  const chunk = payload(CHUNK);
  let sent = 0;
  const send = (async () => {
    while (sent < total && performance.now() < until && !scope.expired) {
      const n = Math.min(chunk.length, total - sent);
      await writeAll(conn, chunk.subarray(0, n));
      sent += n;
    }
    await conn.closeWrite();
  })();
  // Observed here so that a failed read below cannot leave it unhandled;
  // its error is still thrown by `await send`.
  send.catch(() => {});
  const buffer = new Uint8Array(4 * CHUNK);
  let received = 0;
  for (let n; (n = await conn.read(buffer)) !== null;) {
    // The first byte of every read, against the pattern sent.
    const want = expected(chunk[received % CHUNK]!, answer);
    if (buffer[0] !== want) throw wrong("bulk", buffer[0]!, want);
    received += n;
  }
  await send;
  scope.close(conn);
  if (received !== sent) {
    throw new Error(`Received ${received} bytes, sent ${sent}`);
  }
  return received;
}

/**
 * Sends up to `mib` MiB split over `conns` connections, for at most
 * `seconds` (then each connection stops sending), each half-closing when
 * done, and reads every byte back.
 *
 * @returns MiB per second: bytes echoed over the time until the last
 * connection's end.
 */
export async function bulk(
  port: number,
  answer: Answer,
  mib: number,
  conns: number,
  seconds: number,
  timeoutMs: number,
): Promise<number> {
  const total = mib * 1048576;
  const scope = new Scope(timeoutMs);
  const start = performance.now();
  const until = start + seconds * 1000;
  let bytes = 0;
  try {
    const counts = await Promise.all(
      Array.from(
        { length: conns },
        () => bulkOne(scope, port, Math.floor(total / conns), until, answer),
      ),
    );
    bytes = counts.reduce((a, b) => a + b, 0);
  } finally {
    scope.end();
  }
  return bytes / 1048576 / ((performance.now() - start) / 1000);
}

/**
 * Round trips of `size`-byte messages over `conns` connections, each
 * waiting for its whole answer before the next message, for `seconds`.
 *
 * @returns Round trips per second.
 */
export async function roundTrips(
  port: number,
  answer: Answer,
  size: number,
  conns: number,
  seconds: number,
  timeoutMs: number,
): Promise<number> {
  const scope = new Scope(timeoutMs);
  const message = payload(size);
  const first = expected(message[0]!, answer);
  const last = expected(message[size - 1]!, answer);
  try {
    const opened = await Promise.all(
      Array.from({ length: conns }, () => scope.connect(port)),
    );
    const start = performance.now();
    const until = start + seconds * 1000;
    const counts = await Promise.all(opened.map(async (conn) => {
      const buffer = new Uint8Array(size);
      let count = 0;
      while (performance.now() < until && count < 100_000_000) {
        await writeAll(conn, message);
        await readExactly(conn, buffer, size);
        if (buffer[0] !== first) throw wrong("round trip", buffer[0]!, first);
        if (buffer[size - 1] !== last) {
          throw wrong("round trip", buffer[size - 1]!, last);
        }
        count++;
      }
      return count;
    }));
    const elapsed = (performance.now() - start) / 1000;
    return counts.reduce((a, b) => a + b, 0) / elapsed;
  } finally {
    scope.end();
  }
}

/**
 * Connection churn: `workers` loops that each connect, send a short line,
 * read its answer and close, up to `count` connections in all or for
 * `seconds`.
 *
 * @returns Connections per second.
 */
export async function churn(
  port: number,
  answer: Answer,
  count: number,
  workers: number,
  seconds: number,
  timeoutMs: number,
): Promise<number> {
  const scope = new Scope(timeoutMs);
  const line = new TextEncoder().encode("hello\n");
  const want = answer === "lines"
    ? PONG
    : line.map((b) => b === LF ? b : expected(b, answer));
  let started = 0;
  let done = 0;
  const start = performance.now();
  const until = start + seconds * 1000;
  try {
    await Promise.all(Array.from({ length: workers }, async () => {
      const buffer = new Uint8Array(want.length);
      while (started < count && performance.now() < until) {
        started++;
        const conn = await scope.connect(port);
        await writeAll(conn, line);
        await readExactly(conn, buffer, want.length);
        if (buffer[0] !== want[0]) throw wrong("churn", buffer[0]!, want[0]!);
        scope.close(conn);
        done++;
      }
    }));
  } finally {
    scope.end();
  }
  return done / ((performance.now() - start) / 1000);
}

/**
 * Pipelined requests of a line protocol over one connection: "PING\n"
 * lines sent back to back (16 KiB writes of whole lines) up to `count` or
 * for `seconds`, while the answers ("+PONG\r\n" each) are read; timed until
 * the answer to the last line sent.
 *
 * @returns Requests per second.
 */
export async function pipeline(
  port: number,
  count: number,
  seconds: number,
  timeoutMs: number,
): Promise<number> {
  const scope = new Scope(timeoutMs);
  const ping = new TextEncoder().encode("PING\n");
  const perWrite = Math.floor(16384 / ping.length);
  const batch = new Uint8Array(perWrite * ping.length);
  for (let i = 0; i < perWrite; i++) batch.set(ping, i * ping.length);
  try {
    const conn = await scope.connect(port);
    const start = performance.now();
    const until = start + seconds * 1000;
    let sent = 0;
    // Our FIN after the last line: the server answers the rest, then ends
    // its side, which ends the reads below without any race on `sent`.
    const send = (async () => {
      while (sent < count && performance.now() < until) {
        const lines = Math.min(perWrite, count - sent);
        await writeAll(conn, batch.subarray(0, lines * ping.length));
        sent += lines;
      }
      await conn.closeWrite();
    })();
    send.catch(() => {}); // as in bulkOne()
    const buffer = new Uint8Array(4 * CHUNK);
    let received = 0;
    for (let n; (n = await conn.read(buffer)) !== null;) {
      // The answers are "+PONG\r\n" back to back: check where each read
      // starts in that pattern.
      const at = received % PONG.length;
      if (buffer[0] !== PONG[at]) {
        throw wrong("pipeline", buffer[0]!, PONG[at]!);
      }
      received += n;
    }
    await send;
    const elapsed = (performance.now() - start) / 1000;
    if (received !== sent * PONG.length) {
      throw new Error(
        `Received ${received} bytes of answers, expected ${sent * PONG.length}`,
      );
    }
    return sent / elapsed;
  } finally {
    scope.end();
  }
}

/**
 * Opens `count` connections that each send one short line and read its
 * answer, then stay open (idle) until the returned scope is ended. Opens
 * `batch` at a time, within the listener's backlog.
 *
 * @returns The scope holding the connections.
 */
export async function openIdle(
  port: number,
  answer: Answer,
  count: number,
  timeoutMs: number,
  batch = 100,
): Promise<Scope> {
  const scope = new Scope(timeoutMs);
  const line = new TextEncoder().encode("hello\n");
  const size = answer === "lines" ? PONG.length : line.length;
  try {
    for (let opened = 0; opened < count;) {
      const n = Math.min(batch, count - opened);
      await Promise.all(Array.from({ length: n }, async () => {
        const conn = await scope.connect(port);
        await writeAll(conn, line);
        await readExactly(conn, new Uint8Array(size), size);
      }));
      opened += n;
    }
  } catch (error) {
    scope.end();
    throw error;
  }
  return scope;
}

/**
 * Opens `count` connections (sequentially in batches) that each make one
 * exchange and close: a warm-up of the server's code paths.
 */
export async function warmUp(
  port: number,
  answer: Answer,
  count: number,
  timeoutMs: number,
): Promise<void> {
  const scope = await openIdle(port, answer, count, timeoutMs, 50);
  scope.end();
}

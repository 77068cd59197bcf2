// Helpers shared by the tests: one copy instead of one per file.

/** The bytes of `parts`, one after another. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Reads a raw connection to its end. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    chunks.push(buffer.slice(0, n));
  }
  return concat(chunks);
}

/** Resolves with what the connection ends with: EOF or an error. */
export async function endOf(conn: Deno.Conn): Promise<"eof" | unknown> {
  const buffer = new Uint8Array(1024);
  try {
    while (await conn.read(buffer) !== null) { /* drain */ }
    return "eof";
  } catch (error) {
    return error;
  }
}

/** Reads from `conn` until `want` bytes have come, or its end. */
export async function readBytes(
  conn: Deno.Conn,
  want: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  const buffer = new Uint8Array(65536);
  while (got < want) {
    const n = await conn.read(buffer.subarray(0, want - got));
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    got += n;
  }
  return concat(chunks);
}

/**
 * `length` deterministic bytes that do not repeat for a long while (a linear
 * congruential generator from `seed`): a mix-up of offsets shows.
 */
export function pattern(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  let x = seed;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes[i] = x >>> 24;
  }
  return bytes;
}

/** Deterministic pseudo-random bytes, `count` chunks of `size`. */
export function* noise(
  count: number,
  size: number,
  seed = 12345,
): Generator<Uint8Array> {
  let state = seed;
  for (let i = 0; i < count; i++) {
    const chunk = new Uint8Array(size);
    const words = new Uint32Array(chunk.buffer);
    for (let w = 0; w < words.length; w++) {
      state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
      words[w] = state;
    }
    yield chunk;
  }
}

/** Where {@linkcode installed} looks, and what it says when it does not find. */
export interface InstalledOptions {
  /** What to run it with: any quick call that exits, such as `--version`. */
  args?: string[];
  /** The Debian package that installs it, for the skip message. */
  apt?: string;
  /** The test file asking, for the skip message. */
  file: string;
}

/**
 * Whether `program` runs here. When it does not, prints (once per call)
 * which file skips the tests that need it and what would install it, so a
 * skipped foreign-peer test never passes silently.
 */
export function installed(program: string, options: InstalledOptions): boolean {
  const { args = ["--version"], apt, file } = options;
  try {
    new Deno.Command(program, { args, stdout: "null", stderr: "null" })
      .outputSync();
    return true;
  } catch (error) {
    const why = error instanceof Deno.errors.NotFound
      ? "it is not installed"
      : `it cannot run (${error})`;
    console.log(
      `${file}: skipping the tests that need ${program}: ${why}${
        apt ? ` (apt-get install -y ${apt})` : ""
      }`,
    );
    return false;
  }
}

/**
 * Whether this machine has an IPv6 loopback (`::1`) to bind: tests of IPv6
 * skip without one, saying so for `file`.
 */
export function hasIpv6Loopback(file: string): boolean {
  try {
    using _listener = Deno.listen({ hostname: "::1", port: 0 });
    return true;
  } catch {
    console.log(`${file}: no IPv6 loopback (::1): skipping the IPv6 cases`);
    return false;
  }
}

/**
 * Writes `chunk` with `writer` until a write waits for the peer, over an
 * in-memory pair (which moves bytes without timers: a write still pending
 * after a macrotask turn waits for the peer). Returns how many writes were
 * made and the one that waits, if any did within `max`.
 */
export async function writeUntilWaiting<T>(
  writer: WritableStreamDefaultWriter<T>,
  chunk: T,
  max = 100,
): Promise<{ written: number; waiting?: Promise<void> }> {
  let written = 0;
  while (written < max) {
    const write = writer.write(chunk);
    written++;
    let settled = false;
    write.then(() => void (settled = true));
    await new Promise((resolve) => setTimeout(resolve, 0));
    if (!settled) return { written, waiting: write };
  }
  return { written };
}

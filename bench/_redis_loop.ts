/**
 * The baseline of `redis_bench.ts`: a Redis-protocol server written by hand
 * on bare `Deno.listen`, the fastest plain Deno code we know for the job —
 * one 1 MiB read buffer per connection, `setNoDelay`, commands parsed in
 * place as offsets into that buffer (no views, no copies but a stored
 * value), a `Map`, every reply of one read gathered into one buffer and one
 * write per read. It answers what `examples/redis_server.ts` answers for
 * `redis-benchmark`: PING (inline and array), ECHO, SET, GET, CONFIG GET.
 *
 * ```sh
 * deno run -N bench/_redis_loop.ts [port]   # prints "listening on 127.0.0.1:<port>"
 * ```
 *
 * @module
 */

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const STAR = 0x2a;
const DOLLAR = 0x24;
const READ_SIZE = 1 << 20;
const MAX_ARGS = 64;

const encoder = new TextEncoder();
const PONG = encoder.encode("+PONG\r\n");
const OK = encoder.encode("+OK\r\n");
const NIL = encoder.encode("$-1\r\n");
const UNKNOWN = encoder.encode("-ERR unknown command\r\n");
const ARITY = encoder.encode("-ERR wrong number of arguments\r\n");
const BROKEN = encoder.encode("-ERR Protocol error\r\n");

const store = new Map<string, Uint8Array>();

/** One connection's state: its buffers and the command being parsed. */
class Session {
  readonly input = new Uint8Array(READ_SIZE);
  output = new Uint8Array(65536);
  length = 0; // bytes in `output`
  /** Offsets of the current command's arguments in `input`. */
  readonly starts = new Int32Array(MAX_ARGS);
  readonly ends = new Int32Array(MAX_ARGS);
  count = 0;

  reserve(n: number): void {
    if (this.length + n <= this.output.length) return;
    const grown = new Uint8Array(
      Math.max(this.length + n, this.output.length * 2),
    );
    grown.set(this.output.subarray(0, this.length));
    this.output = grown;
  }

  put(bytes: Uint8Array): void {
    this.reserve(bytes.length);
    this.output.set(bytes, this.length);
    this.length += bytes.length;
  }

  /** `$<n>\r\n`, the value, `\r\n`. */
  bulk(source: Uint8Array, start: number, end: number): void {
    const n = end - start;
    this.reserve(n + 24);
    const out = this.output;
    let p = this.length;
    out[p++] = DOLLAR;
    p = writeNumber(out, p, n);
    out[p++] = CR;
    out[p++] = LF;
    out.set(source.subarray(start, end), p);
    p += n;
    out[p++] = CR;
    out[p++] = LF;
    this.length = p;
  }
}

function writeNumber(out: Uint8Array, p: number, n: number): number {
  if (n === 0) {
    out[p] = 0x30;
    return p + 1;
  }
  let digits = 0;
  for (let m = n; m > 0; m = Math.floor(m / 10)) digits++;
  for (let i = p + digits - 1; i >= p; i--) {
    out[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return p + digits;
}

/** A header's number at `p`, to its CR; -1 if absent, -2 if not a number. */
let parsedEnd = 0;
function parseNumber(buf: Uint8Array, p: number, limit: number): number {
  let n = 0;
  const start = p;
  for (; p < limit && buf[p] !== CR; p++) {
    const digit = buf[p]! - 0x30;
    if (digit < 0 || digit > 9 || p - start > 15) return -2;
    n = n * 10 + digit;
  }
  if (p + 1 >= limit) return -1;
  if (buf[p + 1] !== LF || p === start) return -2;
  parsedEnd = p + 2;
  return n;
}

/** Whether the argument at `[start, end)` is `name` (upper-case ASCII). */
function is(buf: Uint8Array, start: number, end: number, name: string) {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) {
    if ((buf[start + i]! & 0xdf) !== name.charCodeAt(i)) return false;
  }
  return true;
}

function key(buf: Uint8Array, start: number, end: number): string {
  return String.fromCharCode.apply(
    null,
    buf.subarray(start, end) as unknown as number[],
  );
}

/** Runs the command whose arguments `s` holds, appending its reply. */
function execute(s: Session): void {
  const buf = s.input;
  const { starts, ends, count } = s;
  const s0 = starts[0]!, e0 = ends[0]!;
  if (is(buf, s0, e0, "PING")) {
    if (count === 1) s.put(PONG);
    else if (count === 2) s.bulk(buf, starts[1]!, ends[1]!);
    else s.put(ARITY);
  } else if (is(buf, s0, e0, "SET")) {
    if (count !== 3) return s.put(ARITY);
    store.set(key(buf, starts[1]!, ends[1]!), buf.slice(starts[2]!, ends[2]!));
    s.put(OK);
  } else if (is(buf, s0, e0, "GET")) {
    if (count !== 2) return s.put(ARITY);
    const value = store.get(key(buf, starts[1]!, ends[1]!));
    if (value === undefined) s.put(NIL);
    else s.bulk(value, 0, value.length);
  } else if (is(buf, s0, e0, "ECHO")) {
    if (count !== 2) return s.put(ARITY);
    s.bulk(buf, starts[1]!, ends[1]!);
  } else if (is(buf, s0, e0, "CONFIG")) {
    if (count !== 3) return s.put(ARITY);
    s.put(encoder.encode("*2\r\n"));
    s.bulk(buf, starts[2]!, ends[2]!);
    s.put(encoder.encode("$0\r\n\r\n"));
  } else s.put(UNKNOWN);
}

/**
 * Parses and runs the command at `at`, appending its reply; returns where
 * it ends, -1 if it is not all in `[at, limit)`, -2 if it is broken.
 */
function command(s: Session, at: number, limit: number): number {
  const buf = s.input;
  if (buf[at] !== STAR) {
    const lf = buf.indexOf(LF, at);
    if (lf < 0 || lf >= limit) return -1;
    const end = lf > at && buf[lf - 1] === CR ? lf - 1 : lf;
    s.count = 0;
    for (let p = at; p < end && s.count < MAX_ARGS;) {
      while (p < end && buf[p] === SPACE) p++;
      const start = p;
      while (p < end && buf[p] !== SPACE) p++;
      if (p > start) {
        s.starts[s.count] = start;
        s.ends[s.count++] = p;
      }
    }
    if (s.count > 0) execute(s);
    return lf + 1;
  }
  const count = parseNumber(buf, at + 1, limit);
  if (count < 0) return count;
  if (count > MAX_ARGS) return -2;
  let p = parsedEnd;
  for (let i = 0; i < count; i++) {
    if (p >= limit) return -1;
    if (buf[p] !== DOLLAR) return -2;
    const length = parseNumber(buf, p + 1, limit);
    if (length < 0) return length;
    const start = parsedEnd;
    const end = start + length;
    if (end + 2 > limit) return -1;
    s.starts[i] = start;
    s.ends[i] = end;
    p = end + 2;
  }
  s.count = count;
  if (count > 0) execute(s);
  return p;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) {
    at += await conn.write(bytes.subarray(at));
  }
}

/** Serves one connection until its FIN, a broken command or an error. */
export async function serveConn(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const s = new Session();
  let filled = 0;
  try {
    while (true) {
      const n = await conn.read(s.input.subarray(filled));
      if (n === null) break;
      filled += n;
      let at = 0;
      let broken = false;
      while (at < filled) {
        const end = command(s, at, filled);
        if (end === -1) break;
        if (end === -2) {
          s.put(BROKEN);
          broken = true;
          break;
        }
        at = end;
      }
      if (s.length > 0) {
        await writeAll(conn, s.output.subarray(0, s.length));
        s.length = 0;
      }
      if (broken || (at === 0 && filled === s.input.length)) break;
      // The start of a command cut short moves to the front.
      if (at < filled) s.input.copyWithin(0, at, filled);
      filled -= at;
    }
  } catch {
    // The client went away.
  } finally {
    conn.close();
  }
}

if (import.meta.main) {
  const listener = Deno.listen({
    hostname: "127.0.0.1",
    port: Number(Deno.args[0] ?? 0),
  });
  console.log(`listening on 127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) serveConn(conn);
}

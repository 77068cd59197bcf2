/**
 * A Redis-protocol (RESP2) server with `PING`, `ECHO`, `SET`, `GET`,
 * `COMMAND`, `CONFIG` and `QUIT`, keeping values in memory, that `redis-cli`
 * and `redis-benchmark` talk to — and a guide to writing a protocol codec of
 * your own for `framed()`.
 *
 * A client sends each command as an array: a header `*N\r\n`, then each
 * argument as `$len\r\n`, `len` bytes and `\r\n` (or, typed by hand, as one
 * inline line `PING\r\n`). The codec, {@linkcode resp}, has two synchronous
 * halves, which `framed()` runs without a stream:
 *
 * - {@linkcode CommandDecoder} finds every whole command in the bytes of one
 *   read and hands each on as an array of arguments, views of the read's
 *   bytes (no copy); a command that a read cuts short is kept (copied) until
 *   the next read completes it.
 * - {@linkcode ReplyEncoder} writes each reply as RESP bytes straight into
 *   the connection's write buffer.
 *
 * The handler is then one loop, pipelined or not: every command of one read
 * costs a function call, and the replies to them leave in one write.
 *
 * ```ts ignore
 * for await (const args of messages) await messages.write(execute(args, store));
 * ```
 *
 * A broken command (a bad header, a command over its limit) is answered
 * with an error and the connection closed, as Redis does.
 *
 * ```sh
 * deno run -N examples/redis_server.ts 6380   # 0 picks a free port
 * redis-cli -p 6380 SET greeting hello
 * redis-cli -p 6380 GET greeting
 * redis-benchmark -p 6380 -q -t ping_inline,ping_mbulk,set,get -P 16
 * ```
 *
 * @module
 */
import {
  type Codec,
  framed,
  FrameTooLargeError,
  type SyncDecoder,
  type SyncEncoder,
  TruncatedFrameError,
} from "@x/sock/framing";
import type { Connection } from "@x/sock/connection";
import { serve } from "@x/sock/server";
import { SyncTransformStream } from "@x/sock/sync-transform";

const CR = 0x0d;
const LF = 0x0a;
const SPACE = 0x20;
const MINUS = 0x2d;
const STAR = 0x2a; // "*": an array header
const DOLLAR = 0x24; // "$": a bulk string header

const encoder = new TextEncoder();

// ---------------------------------------------------------------------------
// Replies

/** A one-line reply, `+OK` or `-ERR ...`, encoded once: make it once. */
export class Status {
  /** The line with its "\r\n". */
  readonly bytes: Uint8Array;

  /**
   * @param line The reply without its "\r\n": "+" and a status, or "-" and
   * an error.
   */
  constructor(readonly line: string) {
    this.bytes = encoder.encode(`${line}\r\n`);
  }
}

/**
 * A RESP2 reply: a status or error line, an integer, a bulk string, nil
 * (`null`), or an array of replies.
 */
export type Reply = Status | number | Uint8Array | null | Reply[];

const OK = new Status("+OK");
/** QUIT's reply: "+OK", and the sign for the loop to hang up. */
const BYE = new Status("+OK");
const PONG = new Status("+PONG");
const NIL = encoder.encode("$-1\r\n");
const CRLF = encoder.encode("\r\n");

/** "$5\r\n" and "*2\r\n" for small lengths, encoded once. */
const headers = { [DOLLAR]: [] as Uint8Array[], [STAR]: [] as Uint8Array[] };
function header(type: typeof DOLLAR | typeof STAR, length: number) {
  const text = () =>
    encoder.encode(`${String.fromCharCode(type)}${length}\r\n`);
  return length < 1024 ? headers[type][length] ??= text() : text();
}

/**
 * The bytes from `start` to `end` as a view of the same memory: what
 * `subarray()` gives, made faster (no species lookup), which counts when
 * every argument of every command is one.
 */
function view(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
}

/** Copies `bytes` into `buffer` at `p`: the offset after, or -1 if full. */
function put(bytes: Uint8Array, buffer: Uint8Array, p: number): number {
  if (p < 0 || p + bytes.length > buffer.length) return -1;
  // A few bytes are copied faster by hand than by a call to set().
  if (bytes.length <= 16) {
    for (let i = 0; i < bytes.length; i++) buffer[p + i] = bytes[i]!;
  } else buffer.set(bytes, p);
  return p + bytes.length;
}

/**
 * The codec's encoder: replies in, RESP bytes out. `framed()` calls
 * `encodeInto()`, which writes a reply straight into the connection's write
 * buffer; `transform()` (for the stream) emits the constant parts and the
 * value itself, never a copy.
 */
export class ReplyEncoder implements SyncEncoder<Reply> {
  encodeInto(reply: Reply, buffer: Uint8Array, offset: number): number {
    if (reply instanceof Status) return put(reply.bytes, buffer, offset);
    if (reply === null) return put(NIL, buffer, offset);
    if (reply instanceof Uint8Array) {
      const p = put(header(DOLLAR, reply.length), buffer, offset);
      return put(CRLF, buffer, put(reply, buffer, p));
    }
    if (typeof reply === "number") {
      return put(encoder.encode(`:${reply}\r\n`), buffer, offset);
    }
    let p = put(header(STAR, reply.length), buffer, offset);
    for (const item of reply) p = p < 0 ? p : this.encodeInto(item, buffer, p);
    return p;
  }

  transform(reply: Reply, emit: (bytes: Uint8Array) => void): void {
    if (reply instanceof Uint8Array) {
      emit(header(DOLLAR, reply.length));
      emit(reply);
      emit(CRLF);
    } else if (reply instanceof Status) emit(reply.bytes);
    else if (reply === null) emit(NIL);
    else if (typeof reply === "number") emit(encoder.encode(`:${reply}\r\n`));
    else {
      emit(header(STAR, reply.length));
      for (const item of reply) this.transform(item, emit);
    }
  }
}

// ---------------------------------------------------------------------------
// Commands

/** Options for {@linkcode resp}. */
export interface RespOptions {
  /**
   * The most bytes one command may take, headers included: bounds what a
   * connection buffers for a command that arrives in pieces.
   *
   * @default {1048576}
   */
  maxCommandLength?: number;
}

/**
 * The codec's decoder: bytes in, whole commands out, each an array of its
 * arguments.
 *
 * It parses each read in place. The arguments it emits are views of the
 * read's bytes (`framed()` hands them out before the next read, and the
 * `SyncTransformer` contract says they are used up by then); only a command
 * cut short at the end of a read is copied, into `#rest`, and parsed again
 * once enough bytes have come; `framed()` reads the bytes such a command
 * still needs (a large value's rest) straight into `#rest` through
 * `reserve()` and `commit()`.
 *
 * @throws {SyntaxError} A header that is not a number, an argument without
 * its `$`, a bulk string without its "\r\n".
 * @throws {FrameTooLargeError} A command over `maxCommandLength`.
 * @throws {TruncatedFrameError} From `flush()`: the input ended inside a
 * command.
 */
export class CommandDecoder implements SyncDecoder<Uint8Array[]> {
  readonly #max: number;
  /** A command cut short by the end of a read, with room to grow. */
  #rest = new Uint8Array(0);
  #restLength = 0;
  /** Bytes the cut command needs (at least) before it is worth parsing. */
  #need = 0;
  /** The number the last header line held. */
  #number = 0;

  constructor(options: RespOptions = {}) {
    const { maxCommandLength = 1048576 } = options;
    if (!Number.isSafeInteger(maxCommandLength) || maxCommandLength < 1) {
      throw new RangeError(
        `Cannot create RESP decoder as maxCommandLength must be a positive integer: current value is ${maxCommandLength}`,
      );
    }
    this.#max = maxCommandLength;
  }

  transform(chunk: Uint8Array, emit: (args: Uint8Array[]) => void): void {
    if (this.#restLength > 0) {
      this.#append(chunk);
      this.#parseRest(emit);
    } else this.#parse(chunk, emit);
  }

  /** Room in `#rest` for bytes the cut command needs, for `framed()` to read into. */
  reserve(room: number): Uint8Array | undefined {
    const length = this.#restLength;
    if (length === 0 || length >= this.#need) return undefined;
    const want = Math.min(this.#need, length + room);
    return this.#restFor(want).subarray(length, want);
  }

  /** Takes `n` bytes read where `reserve()` said. */
  commit(n: number, emit: (args: Uint8Array[]) => void): void {
    this.#restLength += n;
    this.#parseRest(emit);
  }

  /** Parses the cut command once it has what it needs. */
  #parseRest(emit: (args: Uint8Array[]) => void): void {
    if (this.#restLength < this.#need) return;
    const bytes = this.#rest.subarray(0, this.#restLength);
    this.#restLength = 0;
    this.#parse(bytes, emit);
  }

  #parse(bytes: Uint8Array, emit: (args: Uint8Array[]) => void): void {
    let at = 0;
    while (at < bytes.length) {
      const end = bytes[at] === STAR
        ? this.#array(bytes, at, emit)
        : this.#inline(bytes, at, emit);
      if (end < 0) {
        // Cut short: keep a copy, in a new buffer, as the commands emitted
        // above may be views of the old one.
        const rest = bytes.subarray(at);
        this.#rest = new Uint8Array(Math.max(rest.length * 2, 256));
        this.#rest.set(rest);
        this.#restLength = rest.length;
        return;
      }
      at = end;
    }
  }

  flush(): void {
    if (this.#restLength > 0) {
      throw new TruncatedFrameError(this.#restLength, this.#need);
    }
  }

  #append(chunk: Uint8Array): void {
    const length = this.#restLength + chunk.length;
    this.#restFor(length).set(chunk, this.#restLength);
    this.#restLength = length;
  }

  /** `#rest`, grown (by doublings at least) to hold `length` bytes. */
  #restFor(length: number): Uint8Array {
    if (length <= this.#rest.length) return this.#rest;
    const grown = new Uint8Array(Math.max(length, this.#rest.length * 2));
    grown.set(this.#rest.subarray(0, this.#restLength));
    return this.#rest = grown;
  }

  /**
   * An array command at `at`: `*N\r\n`, then N times `$len\r\n`, the bytes
   * and "\r\n". Returns where it ends, or -1 when it is not all there.
   */
  #array(bytes: Uint8Array, at: number, emit: (args: Uint8Array[]) => void) {
    let p = this.#header(bytes, at + 1, "array length");
    if (p < 0) return this.#cut(at, bytes.length - at + 1);
    const count = this.#number;
    // "*0" and "*-1" hold no command: skipped, as Redis does.
    if (count <= 0) return p;
    // Each argument takes 6 bytes at least ("$0\r\n\r\n").
    this.#check(at, p + 6 * count);
    const args: Uint8Array[] = new Array(count);
    for (let i = 0; i < count; i++) {
      if (p >= bytes.length) return this.#cut(at, p - at + 1);
      if (bytes[p] !== DOLLAR) {
        throw new SyntaxError(
          `Cannot decode RESP command as argument ${
            i + 1
          } must start with '$': current byte is '${
            String.fromCharCode(bytes[p]!)
          }'`,
        );
      }
      const start = this.#header(bytes, p + 1, "bulk length");
      if (start < 0) return this.#cut(at, bytes.length - at + 1);
      const end = start + this.#number;
      this.#check(at, end + 2);
      if (end + 2 > bytes.length) return this.#cut(at, end + 2 - at);
      if (bytes[end] !== CR || bytes[end + 1] !== LF) {
        throw new SyntaxError(
          `Cannot decode RESP command as argument ${
            i + 1
          } must end with "\\r\\n" after its ${this.#number} bytes: current bytes are ${
            bytes[end]
          } ${bytes[end + 1]}`,
        );
      }
      args[i] = view(bytes, start, end);
      p = end + 2;
    }
    emit(args);
    return p;
  }

  /**
   * An inline command at `at`: words up to "\n" (or "\r\n"). Returns where
   * it ends, or -1 when it is not all there.
   */
  #inline(bytes: Uint8Array, at: number, emit: (args: Uint8Array[]) => void) {
    const lf = bytes.indexOf(LF, at);
    if (lf < 0) return this.#cut(at, bytes.length - at + 1);
    this.#check(at, lf + 1);
    const end = lf > at && bytes[lf - 1] === CR ? lf - 1 : lf;
    // Words are counted first, so that the array is made at its size: a
    // growing one takes room for 17 (it may be held a while: a pipelined
    // read's commands wait while the answers cannot leave).
    let count = 0;
    for (let p = at; p < end; p++) {
      if (bytes[p] !== SPACE && (p === at || bytes[p - 1] === SPACE)) count++;
    }
    // An empty line is no command: skipped, as Redis does.
    if (count === 0) return lf + 1;
    const args: Uint8Array[] = new Array(count);
    for (let p = at, i = 0; i < count;) {
      while (bytes[p] === SPACE) p++;
      const start = p;
      while (p < end && bytes[p] !== SPACE) p++;
      args[i++] = view(bytes, start, p);
    }
    emit(args);
    return lf + 1;
  }

  /**
   * The decimal number and "\r\n" of a header line at `p` (after its "*" or
   * "$"), into `#number`. Returns where the line ends, or -1 when it is not
   * all there.
   */
  #header(bytes: Uint8Array, p: number, what: string): number {
    const start = p;
    // An array length may be -1 (a null array); a bulk length may not.
    if (bytes[p] === MINUS && what === "array length") p++;
    let n = 0;
    for (; p < bytes.length && bytes[p] !== CR; p++) {
      const digit = bytes[p]! - 0x30;
      if (digit < 0 || digit > 9 || p - start > 15) {
        throw this.#badHeader(bytes, start, p + 1, what);
      }
      n = n * 10 + digit;
    }
    if (p + 1 >= bytes.length) return -1;
    const digits = p - start - (bytes[start] === MINUS ? 1 : 0);
    if (bytes[p + 1] !== LF || digits === 0) {
      throw this.#badHeader(bytes, start, p + 2, what);
    }
    this.#number = bytes[start] === MINUS ? -n : n;
    return p + 2;
  }

  #badHeader(bytes: Uint8Array, start: number, end: number, what: string) {
    const text = JSON.stringify(
      String.fromCharCode(...bytes.subarray(start, Math.min(end, start + 20))),
    );
    return new SyntaxError(
      `Cannot decode RESP command as its ${what} must be a decimal number and "\\r\\n": current text is ${text}`,
    );
  }

  /** Throws when a command from `at` would run past `end` over the limit. */
  #check(at: number, end: number): void {
    if (end - at > this.#max) {
      throw new FrameTooLargeError(
        `Cannot decode RESP command as it must be at most ${this.#max} bytes: current length is at least ${
          end - at
        } bytes`,
        end - at,
        this.#max,
      );
    }
  }

  /** A command cut short at `at`, which needs `need` bytes at least. */
  #cut(at: number, need: number): -1 {
    this.#check(at, at + need);
    this.#need = need;
    return -1;
  }
}

/**
 * The RESP codec for `framed()`: commands (arrays of arguments) in, replies
 * out. It has synchronous cores (`syncDecoder`, `syncEncoder`), so
 * `framed()` runs it on its fast path; its streams are the same cores in a
 * `SyncTransformStream`, for `pipeThrough()`.
 *
 * @param options The limit on a command.
 * @returns The codec.
 */
export function resp(options: RespOptions = {}): Codec<Reply, Uint8Array[]> {
  new CommandDecoder(options); // checks the options now
  return {
    syncDecoder: () => new CommandDecoder(options),
    syncEncoder: () => new ReplyEncoder(),
    decoder: () => new SyncTransformStream(new CommandDecoder(options)),
    encoder: () => new SyncTransformStream(new ReplyEncoder()),
  };
}

// ---------------------------------------------------------------------------
// The server

/**
 * Whether a command's `name` is `command` (upper-case letters), in either
 * case: compared in place, so that matching a command makes no string.
 */
function is(name: Uint8Array, command: string): boolean {
  if (name.length !== command.length) return false;
  for (let i = 0; i < command.length; i++) {
    // 0xdf clears the bit that makes a letter lower-case.
    if ((name[i]! & 0xdf) !== command.charCodeAt(i)) return false;
  }
  return true;
}

/** A key as a string of one character per byte: any bytes, a distinct key. */
function keyOf(bytes: Uint8Array): string {
  let key = "";
  for (let i = 0; i < bytes.length; i += 4096) {
    const part = bytes.length <= 4096 ? bytes : bytes.subarray(i, i + 4096);
    key += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return key;
}

function wrongArity(name: string): Status {
  return new Status(`-ERR wrong number of arguments for '${name}' command`);
}

/**
 * Runs one command against `store`.
 *
 * @param args The command's name and arguments (views the caller may
 * reuse: a value kept in the store is copied).
 * @param store The keys and values.
 * @returns The reply.
 */
export function execute(
  args: Uint8Array[],
  store: Map<string, Uint8Array>,
): Reply {
  const name = args[0]!;
  if (is(name, "PING")) {
    if (args.length > 2) return wrongArity("ping");
    return args.length === 2 ? args[1]! : PONG;
  }
  if (is(name, "ECHO")) {
    return args.length === 2 ? args[1]! : wrongArity("echo");
  }
  if (is(name, "SET")) {
    if (args.length !== 3) return wrongArity("set");
    store.set(keyOf(args[1]!), args[2]!.slice());
    return OK;
  }
  if (is(name, "GET")) {
    if (args.length !== 2) return wrongArity("get");
    return store.get(keyOf(args[1]!)) ?? null;
  }
  // redis-cli asks for the command docs: none here.
  if (is(name, "COMMAND")) return [];
  // redis-benchmark asks for settings: each one empty.
  if (is(name, "CONFIG")) {
    if (args.length !== 3 || !is(args[1]!, "GET")) return wrongArity("config");
    return [args[2]!, new Uint8Array(0)];
  }
  if (is(name, "QUIT")) return BYE;
  return new Status(`-ERR unknown command '${new TextDecoder().decode(name)}'`);
}

/**
 * Serves one connection: answers its commands in order, pipelined or not,
 * until the peer's FIN, `QUIT` or a broken command.
 *
 * @param connection The client, as `serve()` hands it over (or a bare
 * `Deno.Conn`).
 * @param store The keys and values, shared by all connections.
 * @param options The limit on a command.
 */
export async function serveRedis(
  connection: Connection | Deno.Conn,
  store: Map<string, Uint8Array>,
  options?: RespOptions,
): Promise<void> {
  const messages = framed(connection, resp(options));
  try {
    for await (const args of messages) {
      // Resolves at once while the write buffer has room; the replies to
      // one read's commands leave together when the loop asks for more.
      const reply = execute(args, store);
      await messages.write(reply);
      if (reply === BYE) break;
    }
  } catch (error) {
    // Every command before the broken one has been answered: say what
    // broke, as Redis does, and hang up.
    if (
      !(error instanceof SyntaxError || error instanceof FrameTooLargeError ||
        error instanceof TruncatedFrameError)
    ) throw error;
    await messages.write(new Status(`-ERR Protocol error: ${error.message}`));
  }
  await messages.closeWrite();
  // After QUIT the input is left unread: hang up, as Redis does.
  messages.close();
}

if (import.meta.main) {
  const store = new Map<string, Uint8Array>();
  serve({
    hostname: "127.0.0.1",
    port: Number(Deno.args[0] ?? 6380),
    onListen: (addr) =>
      console.log(`Redis protocol on 127.0.0.1:${(addr as Deno.NetAddr).port}`),
  }, (connection) => serveRedis(connection, store));
}

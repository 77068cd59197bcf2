/**
 * A Redis-protocol (RESP2) server with `PING`, `ECHO`, `SET`, `GET`,
 * `COMMAND` and `QUIT`, keeping values in memory, that `redis-cli` talks to.
 *
 * RESP is line-based: a client sends each command as an array header
 * `*N\r\n`, then each argument as `$len\r\n` and `len` bytes and `\r\n`
 * (or, typed by hand, as one inline line `PING\r\n`). So the server reads
 * CRLF lines with `framed()`; an argument holding "\r\n" arrives as several
 * lines and is joined back by its announced length. Pipelined commands come
 * as batches (`batch: true`): all the lines of one read at once. An inline
 * line over the limit is answered with an error, in order, and the
 * connection goes on (`oversize: "discard"`); a broken array closes it, as
 * Redis does.
 *
 * Replies are not lines (a bulk value may hold newlines), so the codec's
 * encoder writes RESP values: its decoder comes from this module's
 * {@linkcode LineDecoderStream}, its encoder is a small
 * {@linkcode SyncTransformStream}.
 *
 * ```sh
 * deno run -N examples/redis_server.ts 6380   # 0 picks a free port
 * redis-cli -p 6380 SET greeting hello
 * redis-cli -p 6380 GET greeting
 * ```
 *
 * @module
 */
import {
  type Codec,
  framed,
  LineDecoderStream,
  type OversizeOptions,
} from "@x/sock/framing";
import { SyncTransformStream } from "@x/sock/sync-transform";

/** A RESP2 reply: simple string, error, integer, bulk (or nil), array. */
export type Reply =
  | { simple: string }
  | { error: string }
  | number
  | Uint8Array
  | null
  | Reply[];

const encoder = new TextEncoder();
const CRLF = encoder.encode("\r\n");

/** Writes replies as RESP bytes, one chunk per reply. */
function writeReply(reply: Reply, out: Uint8Array[]): void {
  const line = (text: string) => out.push(encoder.encode(`${text}\r\n`));
  if (reply === null) line("$-1");
  else if (typeof reply === "number") line(`:${reply}`);
  else if (reply instanceof Uint8Array) {
    line(`$${reply.length}`);
    out.push(reply, CRLF);
  } else if (Array.isArray(reply)) {
    line(`*${reply.length}`);
    for (const item of reply) writeReply(item, out);
  } else if ("simple" in reply) line(`+${reply.simple}`);
  else line(`-${reply.error}`);
}

/** The RESP codec's encoder: replies in, bytes out. */
class ReplyEncoderStream extends SyncTransformStream<Reply, Uint8Array> {
  constructor() {
    super({
      transform(reply, emit) {
        const out: Uint8Array[] = [];
        writeReply(reply, out);
        const bytes = new Uint8Array(out.reduce((n, p) => n + p.length, 0));
        let offset = 0;
        for (const part of out) {
          bytes.set(part, offset);
          offset += part.length;
        }
        emit(bytes);
      },
    });
  }
}

/** Options for {@linkcode serveRedis}. */
export interface RedisOptions {
  /** The keys and values, shared by all connections. */
  store: Map<string, Uint8Array>;
  /**
   * The longest line (an inline command, or one line of a value), not
   * counting its "\r\n".
   *
   * @default {1048576}
   */
  maxLineLength?: number;
}

/** CRLF lines with their endings kept (to count a value's bytes) in, replies out. */
function respCodec(maxLineLength: number): Codec<Reply> {
  return {
    decoder: (overrides?: OversizeOptions) =>
      new LineDecoderStream({
        maxLineLength,
        keepDelimiter: true,
        ...overrides,
      }),
    encoder: () => new ReplyEncoderStream(),
  };
}

const decoder = new TextDecoder();
const name = (bytes: Uint8Array) => decoder.decode(bytes).toUpperCase();
const key = (bytes: Uint8Array) => String.fromCharCode(...bytes);

/** Runs one command. */
export function execute(
  args: Uint8Array[],
  store: Map<string, Uint8Array>,
): Reply {
  const command = name(args[0]!);
  const arity = (n: number) =>
    args.length === n ? undefined : {
      error:
        `ERR wrong number of arguments for '${command.toLowerCase()}' command`,
    };
  switch (command) {
    case "PING":
      if (args.length > 2) return arity(2)!;
      return args.length === 2 ? args[1]! : { simple: "PONG" };
    case "ECHO":
      return arity(2) ?? args[1]!;
    case "SET":
      // Copy: the argument may be a view of the connection's read buffer.
      if (args.length !== 3) return arity(3)!;
      store.set(key(args[1]!), args[2]!.slice());
      return { simple: "OK" };
    case "GET":
      return arity(2) ?? store.get(key(args[1]!)) ?? null;
    case "COMMAND":
      return []; // redis-cli asks for command docs; it copes with none
    case "QUIT":
      return { simple: "OK" };
    default:
      return { error: `ERR unknown command '${decoder.decode(args[0]!)}'` };
  }
}

/**
 * Reassembles commands from CRLF lines (which keep their endings): array
 * commands (`*N`, then `$len` and the bytes for each argument) and inline
 * ones.
 */
class CommandParser {
  #args: Uint8Array[] = [];
  #left = 0; // arguments still to come in the current array
  #want = -1; // bytes (with the final CRLF) of the argument being read
  #parts: Uint8Array[] = [];
  #have = 0;

  /** Whether a command is partly read: a bad line then breaks the stream. */
  get busy(): boolean {
    return this.#left > 0;
  }

  /** The command this line completes, if any; a SyntaxError on bad input. */
  push(line: Uint8Array): Uint8Array[] | undefined {
    if (this.#want >= 0) return this.#value(line);
    const text = decoder.decode(line).replace(/\r?\n$/, "");
    if (this.#left > 0) {
      const length = /^\$(\d+)$/.exec(text);
      if (!length) {
        throw new SyntaxError(
          `Protocol error: expected '$', got '${text.slice(0, 1)}'`,
        );
      }
      this.#want = Number(length[1]) + 2;
      return undefined;
    }
    if (text.startsWith("*")) {
      const count = /^\*(-?\d+)$/.exec(text);
      if (!count) {
        throw new SyntaxError("Protocol error: invalid multibulk length");
      }
      this.#left = Math.max(0, Number(count[1]));
      this.#args = [];
      return undefined;
    }
    const words = text.split(" ").filter(Boolean);
    return words.length > 0 ? words.map((w) => encoder.encode(w)) : undefined;
  }

  #value(line: Uint8Array): Uint8Array[] | undefined {
    this.#parts.push(line.slice());
    this.#have += line.length;
    if (this.#have < this.#want) return undefined;
    const value = new Uint8Array(this.#have);
    let offset = 0;
    for (const part of this.#parts) {
      value.set(part, offset);
      offset += part.length;
    }
    const want = this.#want;
    this.#parts = [];
    this.#have = 0;
    this.#want = -1;
    if (
      value.length !== want || value[want - 2] !== 0x0d ||
      value[want - 1] !== 0x0a
    ) {
      throw new SyntaxError("Protocol error: bulk length does not match");
    }
    this.#args.push(value.subarray(0, want - 2));
    if (--this.#left > 0) return undefined;
    return this.#args;
  }
}

/**
 * Serves one connection: reads commands, pipelined or not, and answers each
 * in order, until the peer's FIN, `QUIT` or a protocol error.
 */
export async function serveRedis(
  conn: Deno.Conn,
  options: RedisOptions,
): Promise<void> {
  const { store, maxLineLength = 1048576 } = options;
  const TOO_LONG = new Uint8Array(0); // stands in for a dropped line
  const { readable, writable } = framed(conn, respCodec(maxLineLength), {
    batch: true,
    oversize: "discard",
    onOversize: () => TOO_LONG,
  });
  const writer = writable.getWriter();
  const parser = new CommandParser();
  const send = (reply: Reply) => writer.write(reply).catch(() => {});
  try {
    reading: for await (const batch of readable) {
      for (const line of batch) {
        let command: Uint8Array[] | undefined;
        try {
          if (line === TOO_LONG) {
            if (!parser.busy) {
              send({
                error: `ERR Protocol error: line over ${maxLineLength} bytes`,
              });
              continue;
            }
            throw new SyntaxError(
              `Protocol error: line over ${maxLineLength} bytes`,
            );
          }
          command = parser.push(line);
        } catch (error) {
          send({ error: `ERR ${(error as Error).message}` });
          break reading;
        }
        if (command === undefined) continue;
        send(execute(command, store));
        if (name(command[0]!) === "QUIT") break reading;
      }
      // Answers for a whole batch are queued; wait here for backpressure.
      await writer.ready;
    }
  } finally {
    await writer.close().catch(() => {});
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 6380);
  const store = new Map<string, Uint8Array>();
  using listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`Redis protocol on 127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) {
    serveRedis(conn, { store }).catch((error) =>
      console.error(`redis: ${error.message}`)
    );
  }
}

/**
 * A TCP client with split I/O and half-close: the classic client that sends
 * its input on one side, prints what comes back on the other, and ends its
 * sending side with `shutdown(SHUT_WR)` while it keeps reading.
 *
 * {@linkcode connect} opens a connection (TCP over IPv4 or IPv6, TLS, or a
 * Unix socket) as half-close-safe streams; {@linkcode exchange} is the
 * split-I/O client as one call. For messages rather than bytes, wrap the
 * connection with `framed()` from `@x/sock/framing`: `exchange()` works on
 * the framed pair too.
 *
 * ```ts
 * import { connect, exchange } from "@x/sock/client";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * // A one-connection uppercase server on loopback.
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new ConnStreams(conn);
 *   return readable.pipeThrough(new UpperCaseStream()).pipeTo(writable);
 * });
 *
 * const conn = await connect({ port: listener.addr.port });
 * const input = ReadableStream.from(["hello"])
 *   .pipeThrough(new TextEncoderStream());
 * assert.equal(await new Response(exchange(conn, input)).text(), "HELLO");
 * await served;
 * ```
 *
 * It is also a program: `deno run -N jsr:@x/sock/client --help`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ConnStreams, type ConnStreamsOptions } from "./conn_streams.ts";

/** Options for {@linkcode connect}. */
export interface ConnectOptions {
  /**
   * Host name or address to connect to. Names are resolved, and every
   * address they resolve to is tried (IPv6 and IPv4). An IPv6 address may be
   * given with or without brackets (`"::1"`, `"[::1]"`).
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
  /**
   * Port to connect to, from 1 to 65535.
   *
   * @default {9990}
   */
  port?: number;
  /**
   * Path of a Unix socket to connect to. When set, `hostname` and `port` are
   * not used. Needs read and write permission for the path.
   *
   * @default {undefined}
   */
  path?: string;
  /**
   * Whether to speak TLS over the TCP connection. The handshake is part of
   * connecting: a certificate that is not trusted fails `connect()`.
   *
   * @default {false}
   */
  tls?: boolean;
  /**
   * PEM certificates to trust besides the system's, for TLS servers with a
   * self-signed certificate or a private CA.
   *
   * @default {undefined}
   */
  caCerts?: string[];
  /**
   * Milliseconds to wait for the connection, and the TLS handshake, before
   * giving up with a {@linkcode ConnectError} caused by a
   * `Deno.errors.TimedOut`. `Infinity` waits as long as the system does.
   *
   * @default {10000}
   */
  connectTimeout?: number;
  /**
   * Aborts the attempt to connect (`connect()` then rejects with the
   * signal's reason) and, once connected, closes the connection (its
   * streams then error with the signal's reason).
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * A failure to connect, for callers to catch. The message names the target
 * and the cause; `cause` is the Deno error that says why:
 * `ConnectionRefused`, `TimedOut` (no answer within `connectTimeout`),
 * `NotFound` (host name not found, or no such Unix socket),
 * `ConnectionReset`, `InvalidData` (a TLS certificate not trusted), and so on.
 *
 * @example Tell a refused connection apart
 * ```ts
 * import { ConnectError, connect } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close(); // nobody listens there now
 * await assert.rejects(connect({ port }), (error) => {
 *   assert.ok(error instanceof ConnectError);
 *   assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
 *   assert.equal(error.target, `127.0.0.1:${port}`);
 *   return true;
 * });
 * ```
 */
export class ConnectError extends Error {
  /**
   * What could not be reached: `host:port` (`[address]:port` for IPv6) or
   * the Unix socket path.
   */
  readonly target: string;

  /**
   * Creates the error.
   *
   * @param target What could not be reached.
   * @param cause Why.
   */
  constructor(target: string, cause: unknown) {
    super(`Cannot connect to ${target}: ${describe(cause)}`, { cause });
    this.name = "ConnectError";
    this.target = target;
  }
}

/**
 * An open client connection: the half-close-safe streams of
 * {@linkcode ConnStreams} (`readable`, `writable`, `closed`, byte counters,
 * `close()`) and the two addresses. `using` closes it at once;
 * `await using` closes it and waits until it is closed.
 *
 * @example Close a connection at the end of a scope
 * ```ts
 * import { ClientConnection } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const accepted = listener.accept();
 * {
 *   await using conn = new ClientConnection(
 *     await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   );
 *   assert.equal((conn.remoteAddr as Deno.NetAddr).port, listener.addr.port);
 * }
 * using server = await accepted;
 * // Our side is closed: the server reads end-of-file.
 * assert.equal(await server.read(new Uint8Array(1)), null);
 * ```
 */
export class ClientConnection extends ConnStreams implements AsyncDisposable {
  /** Our end of the connection. */
  readonly localAddr: Deno.Addr;
  /** The server's end. */
  readonly remoteAddr: Deno.Addr;

  /**
   * Wraps a connection from `Deno.connect` or the like. From here on, only
   * this object may touch it.
   *
   * @param conn The connection to wrap.
   * @param options Read size, and a signal that closes the connection.
   */
  constructor(conn: Deno.Conn, options: ConnStreamsOptions = {}) {
    super(conn, options);
    this.localAddr = conn.localAddr;
    this.remoteAddr = conn.remoteAddr;
  }

  /** Closes the connection now and waits until it is closed. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.closed.catch(() => {});
  }
}

/** The default port, the server's default too. */
const DEFAULT_PORT = 9990;
/** The longest delay `setTimeout` takes; longer ones fire at once. */
const MAX_DELAY = 2 ** 31 - 1;

/**
 * Connects to a server, over TCP (IPv4 or IPv6, names resolved), TLS or a
 * Unix socket.
 *
 * @param options Where to connect and how long to try.
 * @returns The connection as half-close-safe streams.
 * @throws {ConnectError} The connection failed; `cause` says why.
 * @throws {RangeError} `port` or `connectTimeout` is out of range.
 * @throws {TypeError} `tls` is asked for over a Unix socket.
 *
 * @example Send, half-close, read the whole answer
 * ```ts
 * import { connect } from "@x/sock/client";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new ConnStreams(conn);
 *   return readable.pipeTo(writable); // echo
 * });
 * const conn = await connect({ port: listener.addr.port });
 * const writer = conn.writable.getWriter();
 * await writer.write(new TextEncoder().encode("ping"));
 * await writer.close(); // shutdown(SHUT_WR)
 * assert.equal(await new Response(conn.readable).text(), "ping");
 * await served;
 * ```
 */
export async function connect(
  options: ConnectOptions = {},
): Promise<ClientConnection> {
  const {
    hostname = "127.0.0.1",
    port = DEFAULT_PORT,
    path,
    tls = false,
    caCerts,
    connectTimeout = 10_000,
    signal,
  } = options;
  if (
    path === undefined && (!Number.isInteger(port) || port < 1 || port > 65535)
  ) {
    throw new RangeError(
      `Cannot connect as port must be an integer from 1 to 65535: current value is ${port}`,
    );
  }
  if (!(connectTimeout > 0)) {
    throw new RangeError(
      `Cannot connect as connectTimeout must be > 0 ms: current value is ${connectTimeout}`,
    );
  }
  if (path !== undefined && tls) {
    throw new TypeError(
      "Cannot connect as tls works over TCP only: current target is the Unix socket path",
    );
  }
  const target = targetOf(options);
  signal?.throwIfAborted();

  // One signal stops every step of the attempt: the caller's abort or the
  // timeout, whichever comes first.
  const stop = new AbortController();
  const timedOut = new Deno.errors.TimedOut(
    `no answer within ${connectTimeout} ms`,
  );
  const timer = connectTimeout <= MAX_DELAY
    ? setTimeout(() => stop.abort(timedOut), connectTimeout)
    : undefined;
  const onAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener("abort", onAbort, { once: true });
  let conn: Deno.Conn;
  try {
    conn = await open(
      unbracket(hostname),
      port,
      path,
      tls,
      caCerts,
      stop.signal,
    );
  } catch (error) {
    if (stop.signal.aborted && stop.signal.reason !== timedOut) {
      throw stop.signal.reason; // the caller's own abort
    }
    throw new ConnectError(
      target,
      stop.signal.aborted ? timedOut : normalize(error),
    );
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
  }
  if (conn.remoteAddr.transport === "tcp" && !tls) {
    // Interactive use sends small writes: send them now, not batched.
    (conn as Deno.TcpConn).setNoDelay(true);
  }
  return new ClientConnection(conn, { signal });
}

/** Opens the connection; every step ends early when `stop` aborts. */
async function open(
  hostname: string,
  port: number,
  path: string | undefined,
  tls: boolean,
  caCerts: string[] | undefined,
  stop: AbortSignal,
): Promise<Deno.Conn> {
  if (path !== undefined) {
    // A Unix connect takes no signal, but it also never waits on a peer.
    return await Deno.connect({ transport: "unix", path });
  }
  const tcp = await Deno.connect({ hostname, port, signal: stop });
  if (!tls) return tcp;
  // TCP first, then TLS over it, rather than Deno.connectTls: that one takes
  // no signal, and a handshake that never ends must still time out.
  let secure: Deno.TlsConn;
  try {
    secure = await Deno.startTls(tcp, { hostname, caCerts });
  } catch (error) {
    closeQuietly(tcp);
    throw error;
  }
  const onStop = () => closeQuietly(secure);
  stop.addEventListener("abort", onStop, { once: true });
  try {
    // A certificate that is not trusted fails here, not at the first read.
    await secure.handshake();
  } catch (error) {
    closeQuietly(secure);
    throw error;
  } finally {
    stop.removeEventListener("abort", onStop);
  }
  return secure;
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}

function unbracket(hostname: string): string {
  return hostname.startsWith("[") && hostname.endsWith("]")
    ? hostname.slice(1, -1)
    : hostname;
}

/** `host:port`, `[v6]:port` or the Unix path: what error messages name. */
function targetOf(options: ConnectOptions): string {
  if (options.path !== undefined) return options.path;
  const hostname = unbracket(options.hostname ?? "127.0.0.1");
  const port = options.port ?? DEFAULT_PORT;
  return hostname.includes(":")
    ? `[${hostname}]:${port}`
    : `${hostname}:${port}`;
}

/**
 * Deno reports a name that does not resolve as a plain `Error`: give it the
 * class that says so, keeping the original as its cause.
 */
function normalize(error: unknown): unknown {
  if (
    error instanceof Error && error.constructor === Error &&
    /failed to lookup address|name or service not known|nodename nor servname|no address associated|name resolution/i
      .test(error.message)
  ) {
    return new Deno.errors.NotFound(`host not found (${error.message})`, {
      cause: error,
    });
  }
  return error;
}

/**
 * The split-I/O client as one call: sends `input` to the peer, half-closes
 * when it ends, and gives back what the peer sends until the peer closes.
 * Both directions run at once, so a peer that answers as it reads never
 * waits on us, and a peer that answers only after our FIN gets it.
 *
 * The returned stream ends once the peer has closed its side and all of
 * `input` has been sent; an error on either side (the input's, a write's, a
 * read's) errors it. Cancelling it closes the connection and cancels
 * `input`.
 *
 * Works on any readable and writable pair that half-closes when its
 * writable closes: a {@linkcode ClientConnection}, a {@linkcode ConnStreams},
 * or a message-level pair from `framed()` in `@x/sock/framing` (then `input`
 * is messages and so is the result).
 *
 * @typeParam Out What the peer's side yields: bytes, or messages.
 * @typeParam In What `input` yields.
 * @param connection From {@linkcode connect}, or any such pair.
 * @param input What to send.
 * @returns What the peer sends back.
 *
 * @example Send bytes, get the whole answer
 * ```ts
 * import { connect, exchange } from "@x/sock/client";
 * import { ConnStreams } from "@x/sock/conn-streams";
 * import { EchoStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then((conn) => {
 *   const { readable, writable } = new ConnStreams(conn);
 *   return readable.pipeThrough(new EchoStream()).pipeTo(writable);
 * });
 *
 * const conn = await connect({ port: listener.addr.port });
 * const input = ReadableStream.from([new Uint8Array([0, 1, 255])]);
 * const answer = await new Response(exchange(conn, input)).bytes();
 * assert.deepEqual(answer, new Uint8Array([0, 1, 255]));
 * await served;
 * ```
 */
export function exchange<Out = Uint8Array, In = Uint8Array>(
  connection: {
    readonly readable: ReadableStream<Out>;
    readonly writable: WritableStream<In>;
  },
  input: ReadableStream<In>,
): ReadableStream<Out> {
  const reader = connection.readable.getReader();
  // Aborted when the reading side fails or is cancelled: stops the sending.
  const stop = new AbortController();
  let sendFailed = false;
  let sendError: unknown;
  // pipeTo closes the writable at the end of input: closeWrite(), our FIN.
  const sending = input.pipeTo(connection.writable, { signal: stop.signal })
    .catch((error) => {
      if (stop.signal.aborted) return; // we stopped it; the reason is known
      sendFailed = true;
      sendError = error;
      // A pair whose readable does not fail with its writable would keep a
      // read pending forever: end it, and report the sending error below.
      reader.cancel(error).catch(() => {});
    });
  return new ReadableStream<Out>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Out>;
      try {
        result = await reader.read();
      } catch (error) {
        if (sendFailed) throw sendError;
        stop.abort(error);
        throw error;
      }
      if (!result.done) return controller.enqueue(result.value);
      // The peer is done; so are we once all of the input has been sent.
      await sending;
      if (sendFailed) throw sendError;
      controller.close();
    },
    async cancel(reason) {
      stop.abort(reason);
      await reader.cancel(reason).catch(() => {});
      await sending;
    },
  }, { highWaterMark: 0 });
}

/** The cause of a failure, in words for a message. */
function describe(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is a server listening there?)";
  }
  if (error instanceof Deno.errors.TimedOut) {
    return `timed out: ${error.message}`;
  }
  if (error instanceof Deno.errors.ConnectionReset) {
    return "connection reset by peer";
  }
  if (error instanceof Deno.errors.BrokenPipe) {
    return "connection closed by peer while sending (broken pipe)";
  }
  if (error instanceof Deno.errors.InvalidData) {
    return `TLS handshake failed: ${error.message}`;
  }
  return error instanceof Error ? error.message : String(error);
}

// ---------------------------------------------------------------------------
// The program

const USAGE = `Usage: deno run -N jsr:@x/sock/client [options]

Connects to a TCP server and splits I/O: what you type (or pipe in) is sent,
what the server sends is printed as it arrives. At the end of input (Ctrl-D,
or a line that is just "q" at a terminal) the client half-closes
(shutdown(SHUT_WR)) and prints the rest of the answer until the server closes.

With stdin piped, bytes go through unchanged, in both directions.
At a terminal, the client says where it is connected (on stderr) and then
waits for you, without a prompt: each line is sent when you press Enter, and
replies are printed the moment they arrive, between your lines. After "q" or
Ctrl-D it says so and prints replies until the server closes.

Options:
  --host <name>              host name or address (default 127.0.0.1)
  -p, --port <n>             port (default ${DEFAULT_PORT})
  --unix <path>              connect to a Unix socket instead (needs -R -W)
  --tls                      speak TLS
  --ca <file>                trust this PEM CA certificate too (needs -R)
  --connect-timeout <ms>     give up connecting after this long (default 10000)
  -h, --help                 show this help

Exit codes: 0 done, 1 connection failure, 2 usage.`;

class UsageError extends Error {}

function parsePositive(flag: string, text: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new UsageError(
      `Cannot use ${flag} as it must be an integer from 1 to ${max}: current value is "${text}"`,
    );
  }
  return value;
}

/** Reads the command line into options, or `undefined` for --help. */
function parse(args: string[]): ConnectOptions & { ca?: string } | undefined {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string", short: "p" },
        unix: { type: "string" },
        tls: { type: "boolean" },
        ca: { type: "string" },
        "connect-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return undefined;
  const tls = values.tls === true || values.ca !== undefined;
  if (values.unix !== undefined) {
    const other = ["host", "port", "tls", "ca"]
      .find((name) => values[name as keyof typeof values] !== undefined);
    if (other) {
      throw new UsageError(
        `Cannot use --${other} with --unix as a Unix socket has no host, port or TLS: current value is "${
          values[other as keyof typeof values]
        }"`,
      );
    }
  }
  return {
    hostname: values.host,
    port: values.port === undefined
      ? undefined
      : parsePositive("--port", values.port, 65535),
    path: values.unix,
    tls,
    ca: values.ca,
    connectTimeout: values["connect-timeout"] === undefined
      ? undefined
      : parsePositive(
        "--connect-timeout",
        values["connect-timeout"],
        MAX_DELAY,
      ),
  };
}

const NEWLINE = 0x0a;
const QUIT = [
  new Uint8Array([0x71, NEWLINE]),
  new Uint8Array([0x71, 0x0d, NEWLINE]),
];

function isQuit(line: Uint8Array): boolean {
  return QUIT.some((q) =>
    q.length === line.length && q.every((byte, i) => byte === line[i])
  );
}

/**
 * What is typed at the terminal, a line at a time, until a line that is
 * just "q" or Ctrl-D. Bytes stay bytes: nothing is decoded.
 */
function typedLines(
  stdin: ReadableStream<Uint8Array>,
  onEnd: () => void,
): ReadableStream<Uint8Array> {
  const reader = stdin.getReader();
  let pending = new Uint8Array(0);
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (true) {
        const newline = pending.indexOf(NEWLINE);
        if (newline !== -1) {
          const line = pending.subarray(0, newline + 1);
          pending = pending.subarray(newline + 1);
          if (isQuit(line)) {
            // The read of the next line, if any, is left to Deno.exit().
            reader.releaseLock();
            onEnd();
            return controller.close();
          }
          return controller.enqueue(line);
        }
        const { done, value } = await reader.read();
        if (done) {
          // Ctrl-D after some text sends that text without a line end.
          if (pending.length) controller.enqueue(pending);
          onEnd();
          return controller.close();
        }
        const joined = new Uint8Array(pending.length + value.length);
        joined.set(pending);
        joined.set(value, pending.length);
        pending = joined;
      }
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
}

/** Runs the program with `args`; returns the exit code. */
async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parse(args);
    if (options?.ca !== undefined) {
      options.caCerts = [await Deno.readTextFile(options.ca)];
    }
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      console.error(`error: ${error.message}`);
      return 1;
    }
    const message = error instanceof UsageError
      ? error.message
      : `Cannot read the --ca file "${options?.ca}": ${describe(error)}`;
    console.error(`error: ${message} (see --help)`);
    return 2;
  }
  if (!options) {
    console.log(USAGE);
    return 0;
  }
  const target = targetOf(options);
  let conn: ClientConnection;
  try {
    conn = await connect(options);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    return 1;
  }
  try {
    const interactive = Deno.stdin.isTerminal();
    let input: ReadableStream<Uint8Array> = Deno.stdin.readable;
    if (interactive) {
      console.error(
        `Connected to ${target}. Type lines to send; "q" or Ctrl-D ends sending.`,
      );
      input = typedLines(
        input,
        () =>
          console.error(
            "Sending side closed; waiting for the server to close.",
          ),
      );
    }
    await exchange(conn, input).pipeTo(Deno.stdout.writable, {
      preventClose: true,
    });
    await conn.closed;
    return 0;
  } catch (error) {
    conn.close();
    console.error(
      `error: Cannot exchange data with ${target}: ${describe(error)}`,
    );
    return 1;
  }
}

if (import.meta.main) {
  // Exit explicitly: a terminal read still pending after "q" must not keep
  // the process alive.
  Deno.exit(await main(Deno.args));
}

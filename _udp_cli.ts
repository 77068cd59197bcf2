/**
 * The `--udp` mode of both programs, a thin layer over
 * {@linkcode serveDatagrams} and {@linkcode listenDatagram}: the programs
 * parse and check their flags, then call {@linkcode runUdpServer} or
 * {@linkcode runUdpClient}.
 *
 * ```ts
 * import { runUdpClient, runUdpServer } from "./_udp_cli.ts";
 * import assert from "node:assert/strict";
 *
 * // The server program's `--udp --service upper`, stopped by a signal.
 * const stopServer = new AbortController();
 * const listening = Promise.withResolvers<Deno.NetAddr>();
 * const server = runUdpServer({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   service: "upper",
 *   quiet: true,
 *   signal: stopServer.signal,
 *   onListen: (addr) => listening.resolve(addr),
 *   log: () => {},
 * });
 * const { port } = await listening.promise;
 *
 * // The client program's `--udp`: a line in, the answer out.
 * const stopClient = new AbortController();
 * let printed = "";
 * const code = await runUdpClient({
 *   hostname: "127.0.0.1",
 *   port,
 *   quitAfterEof: Infinity, // until the answer, which aborts
 *   signal: stopClient.signal,
 *   input: ReadableStream.from([new TextEncoder().encode("hello\n")]),
 *   output: new WritableStream({
 *     write(chunk) {
 *       printed += new TextDecoder().decode(chunk);
 *       stopClient.abort();
 *     },
 *   }),
 *   log: () => {},
 * });
 * assert.equal(code, 0);
 * assert.equal(printed, "HELLO\n");
 * stopServer.abort();
 * assert.equal(await server, 0);
 * ```
 *
 * @module
 */

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import {
  type DatagramEndpoint,
  type DatagramHandler,
  listenDatagram,
  serveDatagrams,
} from "./datagram.ts";
import { upperCase } from "./services.ts";
import { errorText, formatAddr, permissionHint } from "./_cli.ts";
import {
  formatHexDump,
  HexDump,
  type HexDumpDirection,
  openDumpSink,
} from "./_hex_dump.ts";

/**
 * The services the UDP server offers.
 *
 * @example Check a `--service` value
 * ```ts
 * import type { UdpService } from "./_udp_cli.ts";
 * import assert from "node:assert/strict";
 *
 * const services: readonly string[] = ["upper", "echo", "discard"];
 * const isService = (value: string): value is UdpService =>
 *   services.includes(value);
 * assert.ok(isService("echo"));
 * assert.ok(!isService("chargen")); // a TCP service only
 * ```
 */
export type UdpService = "upper" | "echo" | "discard";

/**
 * Options of {@linkcode runUdpServer}, already checked by the program.
 *
 * @example Discard datagrams, with a hex dump of each
 * ```ts
 * import { runUdpServer, type UdpServerOptions } from "./_udp_cli.ts";
 * import { listenDatagram } from "./datagram.ts";
 * import assert from "node:assert/strict";
 *
 * const hexDump = await Deno.makeTempFile();
 * await using client = await listenDatagram();
 * const controller = new AbortController();
 * const lines: string[] = [];
 * const options: UdpServerOptions = {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   service: "discard",
 *   verbose: true,
 *   hexDump,
 *   signal: controller.signal,
 *   onListen: (addr) => void client.send(new TextEncoder().encode("hello"), addr),
 *   log(line) {
 *     lines.push(line);
 *     if (line.startsWith("Datagram from")) controller.abort(); // served
 *   },
 * };
 * assert.equal(await runUdpServer(options), 0);
 * assert.match(lines[1]!, /^Datagram from 127\.0\.0\.1:\d+: 5 bytes in, no answer on /);
 * assert.match(await Deno.readTextFile(hexDump), /< 00000000  68 65 6c 6c 6f .*\|hello\|/);
 * await Deno.remove(hexDump);
 * ```
 */
export interface UdpServerOptions {
  /** The address to bind to, such as `"127.0.0.1"` or `"::1"`; required. */
  hostname: string;
  /** The port; `0` for any free one; required. */
  port: number;
  /**
   * `upper` answers each datagram upper-cased (ASCII letters), `echo` as it
   * is, `discard` not at all (RFC 863); required.
   */
  service: UdpService;
  /**
   * Log only where it listens, errors and the end.
   *
   * @default {false}
   */
  quiet?: boolean;
  /**
   * Also log the local address and error stacks.
   *
   * @default {false}
   */
  verbose?: boolean;
  /**
   * Write a hex dump of every datagram in and out to this file; `"-"` for
   * stderr.
   *
   * @default {undefined} (no dump)
   */
  hexDump?: string;
  /**
   * Aborting it shuts the server down; the promise then resolves to 0.
   *
   * @default {undefined} (runs until the process ends)
   */
  signal?: AbortSignal;
  /**
   * Called after the listening line, with the bound address.
   *
   * @default {undefined}
   */
  onListen?(addr: Deno.NetAddr): void;
  /**
   * Where log lines go.
   *
   * @default {console.error}
   */
  log?(line: string): void;
}

/**
 * Options of {@linkcode runUdpClient}, already checked by the program.
 *
 * @example Send two lines with "\r\n", expecting no answer
 * ```ts
 * import { runUdpClient, type UdpClientOptions } from "./_udp_cli.ts";
 * import { listenDatagram } from "./datagram.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await listenDatagram();
 * const options: UdpClientOptions = {
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   crlf: true,
 *   sendOnly: true, // done at the end of the input
 *   idleTimeout: 5000,
 *   input: ReadableStream.from([new TextEncoder().encode("one\ntwo\n")]),
 *   log: () => {},
 * };
 * assert.equal(await runUdpClient(options), 0);
 * const received: string[] = [];
 * for await (const { data } of server.readable) {
 *   received.push(new TextDecoder().decode(data));
 *   if (received.length === 2) break;
 * }
 * assert.deepEqual(received, ["one\r\n", "two\r\n"]);
 * ```
 */
export interface UdpClientOptions {
  /** The server's host name or address; required. */
  hostname: string;
  /** The server's port; required. */
  port: number;
  /**
   * Milliseconds to wait for answers after the end of input, counted from
   * the end of input (answers do not extend it); `Infinity` waits until
   * `signal` or the idle timeout.
   *
   * @default {1000}
   */
  quitAfterEof?: number;
  /**
   * Milliseconds without a datagram sent or received after which the client
   * gives up with exit code 1; `0` for never.
   *
   * @default {0}
   */
  idleTimeout?: number;
  /**
   * Send each line's `"\n"` as `"\r\n"`.
   *
   * @default {false}
   */
  crlf?: boolean;
  /**
   * Do not print answers; end right after the input.
   *
   * @default {false}
   */
  sendOnly?: boolean;
  /**
   * Do not read the input; print what the server sends until `signal` or
   * the idle timeout.
   *
   * @default {false}
   */
  recvOnly?: boolean;
  /**
   * Say where it sends, what it ignores, and the totals.
   *
   * @default {false}
   */
  verbose?: boolean;
  /**
   * Write a hex dump of every datagram in and out to this file; `"-"` for
   * stderr.
   *
   * @default {undefined} (no dump)
   */
  hexDump?: string;
  /**
   * Send each read of the input as one datagram, instead of each line.
   *
   * @default {false}
   */
  chunks?: boolean;
  /**
   * Aborting it (Ctrl-C) ends the client at once; it resolves to 0.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * What to send.
   *
   * @default {Deno.stdin.readable}
   */
  input?: ReadableStream<Uint8Array>;
  /**
   * Where answers go; never closed.
   *
   * @default {Deno.stdout.writable}
   */
  output?: WritableStream<Uint8Array>;
  /**
   * Where log lines go.
   *
   * @default {console.error}
   */
  log?(line: string): void;
}

/**
 * The default of {@linkcode UdpClientOptions.quitAfterEof}, in milliseconds.
 *
 * @example
 * ```ts
 * import { DEFAULT_QUIT_AFTER_EOF } from "./_udp_cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_QUIT_AFTER_EOF, 1000);
 * ```
 */
export const DEFAULT_QUIT_AFTER_EOF = 1000;

/**
 * Runs the UDP server until `signal` aborts: every datagram is answered to
 * its sender through the service.
 *
 * Logs to stderr: `Listening on 127.0.0.1:9990/udp (service: upper)`, then
 * (unless quiet) `Datagram from 127.0.0.1:40000: 6 bytes in, 6 bytes out`
 * for each datagram, `error: ...` lines, and at the end `Stopped: N
 * datagrams in, M answered, D dropped`.
 *
 * @returns A promise of the exit code: 0 once stopped, 1 when the hex-dump
 * file cannot be opened (one `error: ...` line is logged). It rejects with
 * the bind error (`Deno.errors.AddrInUse`, `AddrNotAvailable`, `NotFound`,
 * `NotCapable`), for the program to print.
 *
 * @example Start, then stop at once
 * ```ts
 * import { runUdpServer } from "./_udp_cli.ts";
 * import assert from "node:assert/strict";
 *
 * const controller = new AbortController();
 * const lines: string[] = [];
 * const code = await runUdpServer({
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   service: "echo",
 *   signal: controller.signal,
 *   log: (line) => lines.push(line),
 *   onListen: () => controller.abort(),
 * });
 * assert.equal(code, 0);
 * assert.match(lines[0]!, /^Listening on 127\.0\.0\.1:\d+\/udp \(service: echo\)$/);
 * assert.equal(lines[1], "Stopped: 0 datagrams in, 0 answered, 0 dropped");
 * ```
 */
export async function runUdpServer(options: UdpServerOptions): Promise<number> {
  const log = options.log ?? ((line: string) => console.error(line));
  const { verbose = false, quiet = false, service } = options;
  const answer = service === "upper"
    ? upperCase
    : service === "echo"
    ? (data: Uint8Array) => data
    : () => undefined;
  let dump: DatagramDump | undefined;
  if (options.hexDump !== undefined) {
    dump = await DatagramDump.open(options.hexDump, log);
    if (!dump) return 1;
  }
  let handler: DatagramHandler = (data) => answer(data);
  if (dump) {
    const hexDump = dump;
    handler = async (data, remoteAddr) => {
      await hexDump.write("<", data, remoteAddr);
      const out = answer(data);
      if (out !== undefined) await hexDump.write(">", out, remoteAddr);
      return out;
    };
  }
  let local = "";
  try {
    const server = await serveDatagrams({
      hostname: options.hostname,
      port: options.port,
      signal: options.signal,
      onListen: (addr) => {
        local = formatAddr(addr);
        log(`Listening on ${local}/udp (service: ${service})`);
        options.onListen?.(addr);
      },
      onDatagram: quiet ? undefined : (info) =>
        log(
          `Datagram from ${
            formatAddr(info.remoteAddr)
          }: ${info.bytesIn} bytes in, ${
            info.bytesOut === undefined
              ? "no answer"
              : `${info.bytesOut} bytes out`
          }${verbose ? ` on ${local}` : ""}`,
        ),
      onError: (error, remoteAddr) =>
        log(
          `error: ${remoteAddr ? `${formatAddr(remoteAddr)}: ` : ""}${
            errorText(error, verbose)
          }`,
        ),
    }, handler);
    await server.finished;
    log(
      `Stopped: ${server.received} datagrams in, ${server.answered} answered, ${server.dropped} dropped`,
    );
    return 0;
  } finally {
    await dump?.close();
  }
}

/**
 * Runs the UDP client: sends the input to the server as datagrams, one a
 * line (or a read, with `chunks`), and writes the server's answers to the
 * output as they come.
 *
 * A line keeps its `"\n"`; a last line without one is sent at the end of
 * input, and at a terminal whatever was typed before Ctrl-D is sent at
 * once. A line longer than the largest datagram (65507 bytes over IPv4,
 * 65527 over IPv6) is sent as several. Only datagrams from the server's
 * address and port are printed; others are ignored (and logged with
 * `verbose`). After the end of input the client waits `quitAfterEof` for
 * answers, then ends.
 *
 * @returns A promise of the exit code: 0 when done or aborted, 1 after a
 * send error, the idle timeout, or when the hex-dump file cannot be opened
 * (one `error: ...` line is logged). It rejects with the setup error
 * (`Deno.errors.NotFound` for a host that does not resolve, `NotCapable`),
 * for the program to print.
 *
 * @example Two lines, two datagrams, two answers
 * ```ts
 * import { runUdpClient } from "./_udp_cli.ts";
 * import { serveDatagrams } from "./datagram.ts";
 * import { upperCase } from "./services.ts";
 * import assert from "node:assert/strict";
 *
 * await using server = await serveDatagrams({ port: 0 }, upperCase);
 * const controller = new AbortController();
 * let printed = "";
 * const code = await runUdpClient({
 *   hostname: "127.0.0.1",
 *   port: server.addr.port,
 *   quitAfterEof: Infinity, // until the signal: here, the second answer
 *   signal: controller.signal,
 *   input: ReadableStream.from([new TextEncoder().encode("a\nb\n")]),
 *   output: new WritableStream({
 *     write(chunk) {
 *       printed += new TextDecoder().decode(chunk);
 *       if (printed === "A\nB\n") controller.abort();
 *     },
 *   }),
 * });
 * assert.equal(code, 0);
 * assert.equal(server.received, 2);
 * ```
 */
export async function runUdpClient(options: UdpClientOptions): Promise<number> {
  const log = options.log ?? ((line: string) => console.error(line));
  const {
    verbose = false,
    sendOnly = false,
    recvOnly = false,
    crlf = false,
    chunks = false,
    idleTimeout = 0,
    quitAfterEof = DEFAULT_QUIT_AFTER_EOF,
    signal,
  } = options;
  signal?.throwIfAborted();
  const address = await resolveHost(options.hostname, options.port);
  const family = isIP(address) as 4 | 6;
  // A loopback server is reached from the loopback address; any other from
  // the wildcard address, so that the system picks the interface.
  const bindHost = isLoopback(address)
    ? (family === 6 ? "::1" : "127.0.0.1")
    : (family === 6 ? "::" : "0.0.0.0");
  let dump: DatagramDump | undefined;
  if (options.hexDump !== undefined) {
    dump = await DatagramDump.open(options.hexDump, log);
    if (!dump) return 1;
  }

  let endpoint: DatagramEndpoint;
  try {
    endpoint = await listenDatagram({
      hostname: bindHost,
      port: 0,
      remoteAddr: { hostname: address, port: options.port },
    });
  } catch (error) {
    await dump?.close();
    throw error;
  }
  const peer = endpoint.remoteAddr!;
  const where = `${formatAddr(peer)}/udp`;
  const interactive = options.input === undefined && !recvOnly &&
    Deno.stdin.isTerminal();
  if (interactive) {
    log(
      `Sending to ${where}: each ${
        chunks ? "read" : "line"
      } is a datagram; Ctrl-D ends`,
    );
  } else if (verbose) {
    log(`Sending to ${where} from ${formatAddr(endpoint.addr)}/udp`);
  }

  // Whichever happens first ends the run: the quit delay after the input,
  // a send error, the idle timeout, or the signal.
  const end = Promise.withResolvers<number>();
  let lastActivity = performance.now();
  const timers: ReturnType<typeof setTimeout>[] = [];
  const onAbort = () => end.resolve(0);
  signal?.addEventListener("abort", onAbort, { once: true });
  if (idleTimeout > 0) {
    const check = () => {
      const idle = performance.now() - lastActivity;
      if (idle >= idleTimeout) {
        log(
          `error: Cannot go on as nothing was sent or received for ${idleTimeout} ms (idle timeout)`,
        );
        end.resolve(1);
      } else {
        timers.push(setTimeout(check, idleTimeout - idle));
      }
    };
    timers.push(setTimeout(check, idleTimeout));
  }

  const output = sendOnly
    ? undefined
    : (options.output ?? Deno.stdout.writable).getWriter();
  const receiving = (async () => {
    for await (const { data, remoteAddr } of endpoint.readable) {
      if (
        remoteAddr.port !== peer.port || remoteAddr.hostname !== peer.hostname
      ) {
        if (verbose) {
          log(
            `Ignored a datagram of ${data.length} bytes from ${
              formatAddr(remoteAddr)
            }: not the server`,
          );
        }
        continue;
      }
      lastActivity = performance.now();
      await dump?.write("<", data, peer);
      if (output) await output.write(data);
    }
  })();
  receiving.catch((error) => {
    log(`error: Cannot print answers: ${errorText(error, verbose)}`);
    end.resolve(1);
  });

  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  if (!recvOnly) {
    reader = (options.input ?? Deno.stdin.readable).getReader();
    const send = async (data: Uint8Array) => {
      await dump?.write(">", data, peer);
      await endpoint.send(data);
      lastActivity = performance.now();
    };
    const sending = sendInput(reader, send, {
      max: endpoint.maxDatagramSize,
      lines: !chunks,
      crlf,
      flushEachRead: interactive,
    });
    sending.then(() => {
      if (sendOnly || quitAfterEof <= 0) end.resolve(0);
      else if (quitAfterEof !== Infinity) {
        timers.push(setTimeout(() => end.resolve(0), quitAfterEof));
      }
    }, (error) => {
      log(`error: ${errorText(error, verbose)}`);
      end.resolve(1);
    });
  }

  const code = await end.promise;
  for (const timer of timers) clearTimeout(timer);
  signal?.removeEventListener("abort", onAbort);
  reader?.cancel().catch(() => {});
  await endpoint[Symbol.asyncDispose]();
  await receiving.catch(() => {});
  output?.releaseLock();
  if (verbose) {
    log(
      `Sent ${endpoint.datagramsSent} datagrams (${endpoint.bytesSent} bytes), received ${endpoint.datagramsReceived} (${endpoint.bytesReceived} bytes), ${endpoint.dropped} dropped`,
    );
  }
  await dump?.close();
  return code;
}

// ---------------------------------------------------------------------------
// Helpers

/** Sends the input a line (or a read) at a time, each at most `max` bytes. */
async function sendInput(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  send: (data: Uint8Array) => Promise<void>,
  options: {
    max: number;
    lines: boolean;
    crlf: boolean;
    flushEachRead: boolean;
  },
): Promise<void> {
  const { max, lines, crlf, flushEachRead } = options;
  const sendSplit = async (data: Uint8Array) => {
    for (let i = 0; i < data.length; i += max) {
      await send(data.subarray(i, Math.min(i + max, data.length)));
    }
  };
  let pending: Uint8Array = new Uint8Array(0);
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!lines) {
      await sendSplit(crlf ? toCrlf(value) : value);
      continue;
    }
    let chunk: Uint8Array = value;
    if (pending.length > 0) {
      chunk = new Uint8Array(pending.length + value.length);
      chunk.set(pending);
      chunk.set(value, pending.length);
    }
    let start = 0;
    for (let nl; (nl = chunk.indexOf(0x0a, start)) !== -1; start = nl + 1) {
      await sendSplit(line(chunk.subarray(start, nl + 1), crlf));
    }
    pending = chunk.slice(start);
    // A line longer than a datagram goes as it fills: no unbounded buffer.
    if (pending.length >= max) {
      const whole = pending.length - (pending.length % max);
      await sendSplit(pending.subarray(0, whole));
      pending = pending.slice(whole);
    }
    if (flushEachRead && pending.length > 0) {
      await sendSplit(pending);
      pending = new Uint8Array(0);
    }
  }
  if (pending.length > 0) await sendSplit(pending);
}

/** Each "\n" not after a "\r" as "\r\n" (a "\r" ending the previous read is not seen). */
function toCrlf(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a && bytes[i - 1] !== 0x0d) out.push(0x0d);
    out.push(bytes[i]!);
  }
  return out.length === bytes.length ? bytes : new Uint8Array(out);
}

function line(bytes: Uint8Array, crlf: boolean): Uint8Array {
  if (!crlf || (bytes.length > 1 && bytes[bytes.length - 2] === 0x0d)) {
    return bytes;
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes.subarray(0, bytes.length - 1));
  out[bytes.length - 1] = 0x0d;
  out[bytes.length] = 0x0a;
  return out;
}

async function resolveHost(hostname: string, port: number): Promise<string> {
  if (isIP(hostname)) return hostname;
  try {
    return (await lookup(hostname)).address;
  } catch (error) {
    if ((error as { code?: string }).code === "EPERM") {
      throw new Deno.errors.NotCapable(
        `Requires net access to "${hostname}:${port}", run again with the --allow-net flag`,
      );
    }
    throw new Deno.errors.NotFound(
      `Cannot resolve host as the name is not known: current value is "${hostname}"`,
      { cause: error },
    );
  }
}

function isLoopback(address: string): boolean {
  return address === "::1" || address.startsWith("127.") ||
    address.startsWith("::ffff:127.");
}

/**
 * A hex dump of datagrams into a file (`-` for stderr): each datagram is
 * a record of its own, with offsets from 0, labelled with the peer.
 */
class DatagramDump {
  #dump: HexDump;

  private constructor(dump: HexDump) {
    this.#dump = dump;
  }

  /** Opens the file; `undefined` after logging why it cannot. */
  static async open(
    path: string,
    log: (line: string) => void,
  ): Promise<DatagramDump | undefined> {
    try {
      return new DatagramDump(new HexDump(await openDumpSink(path)));
    } catch (error) {
      const reason = permissionHint(error) ??
        (error instanceof Error ? error.message : String(error));
      log(`error: Cannot write --hex-dump file "${path}" as ${reason}`);
      return undefined;
    }
  }

  /** Dumps one datagram; resolves when the sink has room. */
  write(
    direction: HexDumpDirection,
    bytes: Uint8Array,
    peer: Deno.NetAddr,
  ): Promise<void> {
    const label = formatAddr(peer);
    if (bytes.length === 0) {
      return this.#dump.note(`${label} ${direction} (empty datagram)`);
    }
    return this.#dump.writeText(formatHexDump(bytes, { direction, label }));
  }

  async close(): Promise<void> {
    await this.#dump.close().catch(() => {});
  }
}

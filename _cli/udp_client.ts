/**
 * The client program's `--udp` mode: {@linkcode runUdpClient} sends the
 * input as datagrams and prints the answers, over
 * {@linkcode listenDatagram}.
 *
 * @module
 */

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { type DatagramEndpoint, listenDatagram } from "../datagram.ts";
import { errorText, formatAddr } from "./common.ts";
import { DatagramDump } from "./datagram_dump.ts";
import { sendInput } from "./udp_input.ts";

/**
 * Options of {@linkcode runUdpClient}, already checked by the program.
 *
 * @example Send two lines with "\r\n", expecting no answer
 * ```ts
 * import { runUdpClient, type UdpClientOptions } from "./udp_client.ts";
 * import { listenDatagram } from "../datagram.ts";
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
 * import { DEFAULT_QUIT_AFTER_EOF } from "./udp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(DEFAULT_QUIT_AFTER_EOF, 1000);
 * ```
 */
export const DEFAULT_QUIT_AFTER_EOF = 1000;

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
 * import { runUdpClient } from "./udp_client.ts";
 * import { serveDatagrams } from "../datagram.ts";
 * import { upperCase } from "../services.ts";
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
      `Sent ${endpoint.datagramsSent} datagram${
        endpoint.datagramsSent === 1 ? "" : "s"
      } (${endpoint.bytesSent} bytes), received ${endpoint.datagramsReceived} (${endpoint.bytesReceived} bytes), ${endpoint.dropped} dropped`,
    );
  }
  await dump?.close();
  return code;
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

/**
 * The server program's `--udp` mode: {@linkcode runUdpServer} answers
 * every datagram through a service, over {@linkcode serveDatagrams}.
 *
 * @module
 */

import { type DatagramHandler, serveDatagrams } from "../datagram.ts";
import { upperCase } from "../services.ts";
import { errorText, formatAddr } from "./common.ts";
import { DatagramDump } from "./datagram_dump.ts";

/**
 * The services the UDP server offers.
 *
 * @example Check a `--service` value
 * ```ts
 * import type { UdpService } from "./udp_server.ts";
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
 * import { runUdpServer, type UdpServerOptions } from "./udp_server.ts";
 * import { listenDatagram } from "../datagram.ts";
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
 * import { runUdpServer } from "./udp_server.ts";
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

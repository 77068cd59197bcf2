/**
 * The client program, a thin layer over {@linkcode connect}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  connect,
  ConnectError,
  type ConnectOptions,
  DEFAULT_PORT,
  describe,
  exchange,
} from "./client.ts";

// ---------------------------------------------------------------------------
// The program

const USAGE = `Usage: deno run -N jsr:@x/sock/client [options]

Connects to a TCP server and splits I/O: what you type (or pipe in) is sent,
what the server sends is printed as it arrives. At the end of input (Ctrl-D,
or a line that is just "q" at a terminal) the client half-closes
(shutdown(SHUT_WR)) and prints the rest of the answer until the server closes.

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

function parsePositive(flag: string, text: string, max = Infinity): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) {
    throw new UsageError(
      `Cannot use ${flag} as it must be an integer from 1 to ${max}: current value is "${text}"`,
    );
  }
  return value;
}

/** Reads the command line into {@linkcode ConnectOptions}, or `undefined` for --help. */
function options(args: string[]): ConnectOptions & { ca?: string } | undefined {
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
  return {
    hostname: values.host,
    port: values.port === undefined
      ? undefined
      : parsePositive("--port", values.port, 65535),
    path: values.unix,
    tls: values.tls || values.ca !== undefined,
    ca: values.ca,
    connectTimeout: values["connect-timeout"] === undefined
      ? undefined
      : parsePositive("--connect-timeout", values["connect-timeout"]),
  };
}

/** Sends what is typed, a line at a time, until "q" or Ctrl-D. */
function typedLines(): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  const reader = Deno.stdin.readable.pipeThrough(new TextDecoderStream())
    .getReader();
  let pending = "";
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      while (true) {
        const newline = pending.indexOf("\n");
        if (newline !== -1) {
          const line = pending.slice(0, newline + 1);
          pending = pending.slice(newline + 1);
          if (line.trimEnd() === "q") {
            reader.cancel().catch(() => {});
            return controller.close();
          }
          return controller.enqueue(encoder.encode(line));
        }
        const { done, value } = await reader.read();
        if (done) {
          if (pending) controller.enqueue(encoder.encode(pending));
          return controller.close();
        }
        pending += value;
      }
    },
    cancel: () => reader.cancel(),
  }, { highWaterMark: 0 });
}

/** Runs the program with `args`; returns the exit code. */
/** Runs the program with `args`; resolves to its exit code. */
export async function main(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = options(args);
  } catch (error) {
    console.error(`error: ${(error as Error).message} (see --help)`);
    return 2;
  }
  if (!parsed) {
    console.log(USAGE);
    return 0;
  }
  try {
    if (parsed.ca !== undefined) {
      parsed.caCerts = [await Deno.readTextFile(parsed.ca)];
    }
    const conn = await connect(parsed);
    const interactive = Deno.stdin.isTerminal();
    if (interactive) {
      const addr = conn.remoteAddr;
      const where = addr.transport === "tcp" || addr.transport === "udp"
        ? `${addr.hostname}:${addr.port}`
        : (addr as Deno.UnixAddr).path;
      console.error(
        `Connected to ${where}. Type lines to send; "q" or Ctrl-D ends sending.`,
      );
    }
    const input = interactive ? typedLines() : Deno.stdin.readable;
    await exchange(conn, input).pipeTo(Deno.stdout.writable, {
      preventClose: true,
    });
    await conn.closed;
    return 0;
  } catch (error) {
    const message = error instanceof ConnectError
      ? error.message
      : error instanceof Deno.errors.NotCapable
      ? `${error.message}; run with the permission it names`
      : `Connection failed: ${describe(error)}`;
    console.error(`error: ${message}`);
    return 1;
  }
}

/**
 * The client program's command line: its `--help` text and the parser that
 * checks the flags against each other.
 *
 * ```ts
 * import { parseCommandLine } from "./client_flags.ts";
 * import assert from "node:assert/strict";
 *
 * const flags = parseCommandLine(["example.com", "7", "-q", "2s"]);
 * assert.ok(typeof flags === "object");
 * assert.equal(flags.hostname, "example.com");
 * assert.equal(flags.port, 7);
 * assert.equal(flags.quitAfterEof, 2000);
 * ```
 *
 * @module
 */

import { DEFAULT_PORT } from "../client.ts";
import type { Program } from "./common.ts";
import {
  formatDuration,
  parseDuration,
  parseFlags,
  parseInteger,
  UsageError,
} from "./flags.ts";

const DEFAULT_CONNECT_TIMEOUT = 10_000;

const USAGE = `Usage: deno run -N jsr:@x/sock/client [options] [host] [port]

Connects to a TCP server and splits I/O, as netcat does: standard input is
sent as it comes, what the server sends is written to standard output as it
arrives. At the end of input (Ctrl-D at a terminal) the client half-closes
(sends FIN: shutdown(SHUT_WR)) and prints the rest of the answer until the
server closes; then it exits. When the server closes first, the client still
sends the rest of piped input (a server may read after its FIN), then exits;
at a terminal it exits at once. At a terminal a line is sent when you press
Enter, and Ctrl-D after part of a line sends that part at once.

Arguments:
  host                          host name or address (default: 127.0.0.1);
                                host:port and [::1]:port work too
  port                          port, 1 to 65535 (default: ${DEFAULT_PORT})

Options:
  --host <name>                 the host, as a flag
  -p, --port <n>                the port, as a flag
  -U, --unix <path>             connect to a Unix socket instead (needs -R -W)
  --tls                         speak TLS (the host name is checked against
                                the server's certificate)
  --ca <file>                   trust this PEM CA certificate too; implies
                                --tls (needs -R)
  -w, --connect-timeout <time>  give up connecting (TLS handshake included)
                                after this long (default: ${
  formatDuration(DEFAULT_CONNECT_TIMEOUT)
})
  -i, --idle-timeout <time>     close and exit 1 when no byte has moved either
                                way for this long (default: never)
  -q, --quit-after-eof <time>   after the end of input, wait at most this long
                                for the server to close, then quit with 0
                                (default: wait until it closes)
  --send-only                   only send: discard what the server sends, quit
                                at the end of input
  --recv-only                   only receive: read no input and send nothing,
                                not even FIN; quit when the server closes
  --no-shutdown                 at the end of input, do not half-close: wait
                                for the server to close (or -q)
  -C, --crlf                    send each line feed of the input as CR LF
  -x, --hex-dump <file>         write both directions as a hex dump to <file>
                                ("-" for stderr; needs -W): offset, hex, ASCII;
                                ">" marks what we sent, "<" what we received
  -u, --udp                     UDP instead: each line of input is a datagram;
                                answers are printed; quits 1s after the end of
                                input (-q to change)
  -v, --verbose                 say what happens on stderr; errors with stacks
  --version                     print the version and exit
  -h, --help                    show this help

A <time> is a number with a unit (500ms, 30s, 2m, 1h); a bare number is
seconds.

Exit codes:
  0    done: the server closed, or -q elapsed, or --send-only input ended
  1    runtime failure: cannot connect, the connection failed after it
       started, -i elapsed, a file named by a flag cannot be read or written
  2    bad usage: unknown flag, bad value, conflicting flags
  130  Ctrl-C (SIGINT) ended the client at once (143: SIGTERM)`;

/** The command line, checked. */
export interface ClientFlags {
  hostname: string;
  port: number;
  path?: string;
  tls: boolean;
  ca?: string;
  connectTimeout: number;
  idleTimeout: number;
  quitAfterEof?: number;
  sendOnly: boolean;
  recvOnly: boolean;
  noShutdown: boolean;
  crlf: boolean;
  hexDump?: string;
  udp: boolean;
  verbose: boolean;
}

const FLAGS = {
  host: { type: "string" },
  port: { type: "string", short: "p" },
  unix: { type: "string", short: "U" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  "connect-timeout": { type: "string", short: "w" },
  "idle-timeout": { type: "string", short: "i" },
  "quit-after-eof": { type: "string", short: "q" },
  "send-only": { type: "boolean" },
  "recv-only": { type: "boolean" },
  "no-shutdown": { type: "boolean" },
  crlf: { type: "boolean", short: "C" },
  "hex-dump": { type: "string", short: "x" },
  udp: { type: "boolean", short: "u" },
  verbose: { type: "boolean", short: "v" },
} as const;

const TO_SERVER =
  "this is the client; run the server program to listen: deno run -N jsr:@x/sock/server";

/** What to say about netcat flags the client does not take. */
const NETCAT_HINTS: Record<string, string> = {
  "-l": `${TO_SERVER} -p <port>`,
  "--listen": `${TO_SERVER} -p <port>`,
  "-k": `${TO_SERVER} (it serves many clients and keeps listening)`,
  "--keep-open": `${TO_SERVER} (it serves many clients and keeps listening)`,
  "-e": `${TO_SERVER} -e <command> (needs --allow-run)`,
  "--exec": `${TO_SERVER} -e <command> (needs --allow-run)`,
  "-c": `${TO_SERVER} -e <command> (needs --allow-run)`,
  "--sh-exec": `${TO_SERVER} -e <command> (needs --allow-run)`,
  "-N":
    "-N is already the default: the client half-closes (sends FIN) at the end of input; --no-shutdown keeps it open",
  "-d": "-d is --recv-only here: read no input, print what the server sends",
  "--ssl": "--ssl is --tls here",
  "--ssl-trustfile": "--ssl-trustfile is --ca here",
  "-4": "give an IPv4 address as the host (127.0.0.1)",
  "-6": "give an IPv6 address as the host (::1)",
  "-n": "-n is not needed: an address given as the host is used as is",
  "-t": "telnet negotiation is not supported",
  "-z": "port scanning (-z) is not supported",
};

/** Reads the command line; `"help"` / `"version"` when asked for. */
export function parseCommandLine(
  args: string[],
): ClientFlags | "help" | "version" {
  const parsed = parseFlags(args, FLAGS, NETCAT_HINTS);
  if (parsed.help) return "help";
  if (parsed.version) return "version";
  const values = parsed.values as
    & Record<string, string | undefined>
    & {
      [
        K in
          | "tls"
          | "send-only"
          | "recv-only"
          | "no-shutdown"
          | "crlf"
          | "udp"
          | "verbose"
      ]?: boolean;
    };
  let [hostArg, portArg, ...extra] = parsed.positionals;
  // "localhost:9990" or "[::1]:9990", as a URL would write it.
  const joined = hostArg?.match(/^(\[[^\]]*\]|[^:]*):(\d+)$/);
  if (joined && portArg === undefined && values.port === undefined) {
    [, hostArg, portArg] = joined;
  }
  // "[::1]": an IPv6 address in brackets, as in a URL.
  if (hostArg !== undefined && /^\[[^\]]*\]$/.test(hostArg)) {
    hostArg = hostArg.slice(1, -1);
  }
  if (extra.length > 0) {
    throw new UsageError(
      `Cannot parse arguments as the client takes at most a host and a port: current extra argument is "${
        extra[0]
      }"`,
    );
  }
  if (hostArg !== undefined && values.host !== undefined) {
    throw new UsageError(
      `Cannot parse --host as the host is also given as an argument: current values are "${values.host}" and "${hostArg}"`,
    );
  }
  if (portArg !== undefined && values.port !== undefined) {
    throw new UsageError(
      `Cannot parse --port as the port is also given as an argument: current values are "${values.port}" and "${portArg}"`,
    );
  }
  const host = hostArg ?? values.host;
  if (host !== undefined && host.trim() === "") {
    throw new UsageError(
      `Cannot parse the host as it must be a name or an address: current value is "${host}"`,
    );
  }
  const portText = portArg ?? values.port;
  const portName = portArg !== undefined ? "the port" : "--port";
  if (values.unix !== undefined) {
    if (values.unix === "") {
      throw new UsageError(
        'Cannot parse --unix as it must be a socket path: current value is ""',
      );
    }
    const clash = host !== undefined
      ? "a host"
      : portText !== undefined
      ? "a port"
      : values.tls || values.ca !== undefined
      ? "--tls"
      : values.udp
      ? "--udp"
      : undefined;
    if (clash) {
      throw new UsageError(
        `Cannot use --unix with ${clash} as a Unix socket has only a path: current value is "${values.unix}"`,
      );
    }
  }
  if (values["send-only"] && values["recv-only"]) {
    throw new UsageError(
      "Cannot use --send-only with --recv-only as together they leave nothing to do: choose one",
    );
  }
  if (values["recv-only"]) {
    const clash = values["quit-after-eof"] !== undefined
      ? "--quit-after-eof"
      : values.crlf
      ? "--crlf"
      : values["no-shutdown"]
      ? "--no-shutdown"
      : undefined;
    if (clash) {
      throw new UsageError(
        `Cannot use ${clash} with --recv-only as the client reads no input then: drop one of them`,
      );
    }
  }
  if (values["send-only"] && values["no-shutdown"]) {
    throw new UsageError(
      "Cannot use --no-shutdown with --send-only as --send-only quits at the end of input: drop one of them",
    );
  }
  if (values.udp) {
    const clash = ["tls", "ca", "connect-timeout", "no-shutdown"].find((name) =>
      values[name] !== undefined
    );
    if (clash) {
      throw new UsageError(
        `Cannot use --${clash} with --udp as it applies to TCP only: drop one of them`,
      );
    }
  }
  if (values["hex-dump"] === "") {
    throw new UsageError(
      'Cannot parse --hex-dump as it must be a file path or "-" for stderr: current value is ""',
    );
  }
  if (values.ca === "") {
    throw new UsageError(
      'Cannot parse --ca as it must be a file path: current value is ""',
    );
  }
  const duration = (name: string) =>
    values[name] === undefined
      ? undefined
      : parseDuration(`--${name}`, values[name]!);
  const connectTimeout = duration("connect-timeout");
  if (connectTimeout === 0) {
    throw new UsageError(
      'Cannot parse --connect-timeout as it must be longer than 0: current value is "' +
        values["connect-timeout"] + '"',
    );
  }
  return {
    hostname: host ?? "127.0.0.1",
    port: portText === undefined
      ? DEFAULT_PORT
      : parseInteger(portName, portText, 1, 65535),
    path: values.unix,
    tls: values.tls === true || values.ca !== undefined,
    ca: values.ca,
    connectTimeout: connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    idleTimeout: duration("idle-timeout") ?? 0,
    quitAfterEof: duration("quit-after-eof"),
    sendOnly: values["send-only"] === true,
    recvOnly: values["recv-only"] === true,
    noShutdown: values["no-shutdown"] === true,
    crlf: values.crlf === true,
    hexDump: values["hex-dump"],
    udp: values.udp === true,
    verbose: values.verbose === true,
  };
}

/**
 * The client program's name, `--help` text and parser, for
 * {@linkcode runProgram}.
 */
export const CLIENT_COMMAND_LINE: Pick<
  Program<ClientFlags>,
  "name" | "usage" | "parse"
> = {
  name: "client",
  usage: USAGE,
  parse: parseCommandLine,
};

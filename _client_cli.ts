/**
 * The client program, a thin layer over {@linkcode connect}: netcat's
 * client side with half-close done right.
 *
 * ```sh
 * deno run -N jsr:@x/sock/client example.com 9990 < request.txt
 * ```
 *
 * @module
 */

import { connect, ConnectError, DEFAULT_PORT, describe } from "./client.ts";
import type { Connection } from "./connection.ts";
import {
  CrlfStream,
  EXIT,
  Failure,
  fileError,
  formatAddr,
  formatDuration,
  parseDuration,
  parseFlags,
  parseInteger,
  permissionHint,
  runProgram,
  UsageError,
} from "./_cli.ts";
import { HexDump, type HexDumpChannel, openDumpSink } from "./_hex_dump.ts";

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
  host                          host name or address (default: 127.0.0.1)
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
interface ClientFlags {
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

/** Reads the command line; `"help"` / `"version"` when asked for. */
function parseCommandLine(args: string[]): ClientFlags | "help" | "version" {
  const parsed = parseFlags(args, FLAGS);
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
  const [hostArg, portArg, ...extra] = parsed.positionals;
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

/** Reads a file named by a flag, or fails with a message naming the flag. */
async function readFlagFile(flag: string, file: string): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    throw new Failure(fileError(`read ${flag} file "${file}"`, error), {
      cause: error,
    });
  }
}

/** Opens the hex dump file, or stderr for "-". */
async function openHexDump(
  file: string,
): Promise<{ dump: HexDump; close(): Promise<void> }> {
  let sink: WritableStream<Uint8Array>;
  try {
    sink = await openDumpSink(file);
  } catch (error) {
    throw new Failure(fileError(`write --hex-dump file "${file}"`, error), {
      cause: error,
    });
  }
  const dump = new HexDump(sink);
  return { dump, close: () => dump.close() };
}

async function writeAll(
  target: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let n = 0; n < bytes.length;) {
    n += await target.write(bytes.subarray(n));
  }
}

/** The message for a failure to connect. */
function connectMessage(error: ConnectError): string {
  const hint = permissionHint(error.cause);
  if (hint) return `Cannot connect to ${error.target} as ${hint}`;
  return error.message;
}

/** Runs the program with `args`; resolves to its exit code. */
export function main(args: string[]): Promise<number> {
  return runProgram({
    name: "client",
    usage: USAGE,
    parse: parseCommandLine,
    tcp: runTcp,
    udp: runUdp,
  }, args);
}

async function runUdp(flags: ClientFlags): Promise<number> {
  const { runUdpClient } = await import("./_udp_cli.ts");
  const controller = new AbortController();
  const stop = () => controller.abort();
  Deno.addSignalListener("SIGINT", stop);
  try {
    return await runUdpClient({
      hostname: flags.hostname,
      port: flags.port,
      quitAfterEof: flags.quitAfterEof,
      idleTimeout: flags.idleTimeout,
      crlf: flags.crlf,
      sendOnly: flags.sendOnly,
      recvOnly: flags.recvOnly,
      verbose: flags.verbose,
      hexDump: flags.hexDump,
      signal: controller.signal,
    });
  } catch (error) {
    const target = `${
      flags.hostname.includes(":") ? `[${flags.hostname}]` : flags.hostname
    }:${flags.port}/udp`;
    const hint = permissionHint(error);
    throw new Failure(
      `Cannot send to ${target} as ${
        hint ?? (error instanceof Deno.errors.NotFound
          ? `the host is not found (${error.message})`
          : describe(error))
      }`,
      { cause: error },
    );
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
  }
}

async function runTcp(flags: ClientFlags): Promise<number> {
  const log = (line: string) => console.error(line);
  const caCerts = flags.ca === undefined
    ? undefined
    : [await readFlagFile("--ca", flags.ca)];
  const hexDump = flags.hexDump === undefined
    ? undefined
    : await openHexDump(flags.hexDump);
  try {
    return await session(flags, caCerts, hexDump?.dump.channel(), log);
  } finally {
    await hexDump?.close().catch(() => {});
  }
}

async function session(
  flags: ClientFlags,
  caCerts: string[] | undefined,
  dump: HexDumpChannel | undefined,
  log: (line: string) => void,
): Promise<number> {
  const controller = new AbortController();
  // Ctrl-C quits at once, as netcat does; so does SIGTERM.
  const onSignal = (name: "SIGINT" | "SIGTERM") => () => {
    if (flags.verbose) log(`Quitting on ${name}`);
    controller.abort(new Deno.errors.Interrupted(name));
    Deno.exit(EXIT[name]);
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = onSignal(name);
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  let conn: Connection;
  try {
    conn = await connect({
      hostname: flags.hostname,
      port: flags.port,
      path: flags.path,
      tls: flags.tls,
      caCerts,
      connectTimeout: flags.connectTimeout,
      signal: controller.signal,
    });
  } catch (error) {
    if (error instanceof ConnectError) {
      throw new Failure(connectMessage(error), { cause: error.cause });
    }
    throw error;
  }
  const where = formatAddr(conn.remoteAddr);
  try {
    if (flags.verbose) {
      log(
        `Connected to ${where}${
          flags.path === undefined ? ` from ${formatAddr(conn.localAddr)}` : ""
        }${flags.tls ? " with TLS" : ""}`,
      );
    }
    const interactive = !flags.recvOnly && Deno.stdin.isTerminal();
    if (interactive) {
      log(
        `Connected to ${where}. Ctrl-D ends sending (after part of a line: sends it); Ctrl-C quits.`,
      );
    }
    const outcome = await exchangeBytes(conn, flags, dump, interactive);
    if (flags.verbose) {
      log(
        `Closed ${where}: ${conn.bytesWritten} bytes sent, ${conn.bytesRead} bytes received (${outcome})`,
      );
    }
    return EXIT.ok;
  } catch (error) {
    if (error instanceof Failure) throw error;
    throw new Failure(
      `Lost the connection to ${where} after ${conn.bytesWritten} bytes sent and ${conn.bytesRead} received: ${
        describe(error)
      }`,
      { cause: error },
    );
  } finally {
    conn.close();
    for (const [name, handler] of handlers) {
      Deno.removeSignalListener(name, handler);
    }
  }
}

/** Settles a pipe's promise as "done" or the error. */
type Ending = "peer closed" | "input ended" | "quit after EOF";

/**
 * Runs both directions. Resolves with how it ended; rejects on a network
 * error, an idle timeout (as a Failure) or a failure to write stdout.
 */
async function exchangeBytes(
  conn: Connection,
  flags: ClientFlags,
  dump: HexDumpChannel | undefined,
  interactive: boolean,
): Promise<Ending> {
  const done = Promise.withResolvers<Ending>();
  let lastActivity = performance.now();
  const activity = () =>
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        lastActivity = performance.now();
        controller.enqueue(chunk);
      },
    });
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const later = (ms: number, fn: () => void) => {
    const id = setTimeout(() => {
      timers.delete(id);
      fn();
    }, ms);
    timers.add(id);
  };
  if (flags.idleTimeout > 0) {
    const check = () => {
      const quiet = performance.now() - lastActivity;
      if (quiet >= flags.idleTimeout) {
        done.reject(
          new Failure(
            `Closed the connection to ${
              formatAddr(conn.remoteAddr)
            } as no byte moved for ${
              formatDuration(flags.idleTimeout)
            } (--idle-timeout)`,
          ),
        );
      } else later(flags.idleTimeout - quiet, check);
    };
    later(flags.idleTimeout, check);
  }

  // Receiving: to stdout (or nowhere with --send-only), through the dump.
  let received = conn.readable.pipeThrough(activity());
  if (dump) received = received.pipeThrough(dump.tap("<"));
  const stdoutFailed = (error: unknown) =>
    new Failure(
      `Cannot write to standard output as ${
        error instanceof Deno.errors.BrokenPipe
          ? "it was closed"
          : `it failed: ${describe(error)}`
      }`,
      { cause: error },
    );
  let stdoutError: unknown;
  const receiving = received.pipeTo(
    flags.sendOnly ? new WritableStream() : new WritableStream({
      write: (chunk) =>
        writeAll(Deno.stdout, chunk).catch((error) => {
          stdoutError = error;
          throw error;
        }),
    }),
  );
  let inputEnded = flags.recvOnly;
  let peerClosed = false;
  receiving.then(
    () => {
      peerClosed = true;
      // A pipe still sending goes on: the server may read after its FIN.
      // At a terminal nobody waits for that: quit, as netcat does.
      if (inputEnded || interactive) done.resolve("peer closed");
    },
    (error) => done.reject(stdoutError ? stdoutFailed(stdoutError) : error),
  );

  // Sending: stdin, with --crlf, through the dump; FIN at its end unless
  // --no-shutdown.
  if (!flags.recvOnly) {
    let input: ReadableStream<Uint8Array> = Deno.stdin.readable;
    if (flags.crlf) input = input.pipeThrough(new CrlfStream());
    input = input.pipeThrough(activity());
    if (dump) input = input.pipeThrough(dump.tap(">"));
    input.pipeTo(conn.writable, { preventClose: flags.noShutdown }).then(
      () => {
        inputEnded = true;
        if (peerClosed) {
          done.resolve("peer closed");
        } else if (flags.sendOnly && flags.quitAfterEof === undefined) {
          done.resolve("input ended");
        } else if (flags.quitAfterEof !== undefined) {
          later(flags.quitAfterEof, () => done.resolve("quit after EOF"));
        }
      },
      // After the server's FIN, a refused write only means it wanted no
      // more: its answer is complete. The kernel says which it was: a reset
      // after the peer's FIN fails our write with EPIPE (BrokenPipe), a
      // reset with no FIN before it with ECONNRESET. In that case the end of
      // input we read was no FIN either: once the write has taken the
      // socket's error, a read returns 0.
      (error) =>
        peerClosed && !(error instanceof Deno.errors.ConnectionReset)
          ? done.resolve("peer closed")
          : done.reject(error),
    );
  }
  try {
    return await done.promise;
  } finally {
    for (const id of timers) clearTimeout(id);
  }
}

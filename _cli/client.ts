/**
 * The client program, a thin layer over {@linkcode connect}: netcat's
 * client side with half-close done right. Its flags are in
 * `client_flags.ts`.
 *
 * ```sh
 * deno run -N jsr:@x/sock/client example.com 9990 < request.txt
 * ```
 *
 * @module
 */

import { connect, ConnectError, describeError } from "../client.ts";
import type { Connection } from "../connection.ts";
import { CLIENT_COMMAND_LINE, type ClientFlags } from "./client_flags.ts";
import {
  EXIT,
  formatAddr,
  openHexDumpFile,
  permissionHint,
  ProgramError,
  readFlagFile,
  runProgram,
} from "./common.ts";
import { CrlfStream } from "./crlf_stream.ts";
import { formatDuration } from "./flags.ts";
import type { HexDumpChannel } from "./hex_dump.ts";

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
  return runProgram(
    { ...CLIENT_COMMAND_LINE, tcp: runTcp, udp: runUdp },
    args,
  );
}

async function runTcp(flags: ClientFlags): Promise<number> {
  const log = (line: string) => console.error(line);
  const caCerts = flags.ca === undefined
    ? undefined
    : [await readFlagFile("--ca", flags.ca)];
  const hexDump = flags.hexDump === undefined
    ? undefined
    : await openHexDumpFile(flags.hexDump);
  try {
    return await session(flags, caCerts, hexDump?.channel(), log);
  } finally {
    await hexDump?.close().catch(() => {});
  }
}

async function runUdp(flags: ClientFlags): Promise<number> {
  const { runUdpClient } = await import("./udp.ts");
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
      formatAddr({
        transport: "udp",
        hostname: flags.hostname,
        port: flags.port,
      })
    }/udp`;
    const hint = permissionHint(error);
    throw new ProgramError(
      `Cannot send to ${target} as ${
        hint ?? (error instanceof Deno.errors.NotFound
          ? `the host is not found (${error.message})`
          : describeError(error))
      }`,
      { cause: error },
    );
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
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
      throw new ProgramError(connectMessage(error), { cause: error.cause });
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
    if (error instanceof ProgramError) throw error;
    throw new ProgramError(
      `Lost the connection to ${where} after ${conn.bytesWritten} bytes sent and ${conn.bytesRead} received: ${
        describeError(error)
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
type Ending =
  | "peer closed"
  | "input ended"
  | "quit after EOF"
  | "output closed";

/**
 * Runs both directions. Resolves with how it ended; rejects on a network
 * error, an idle timeout (as a ProgramError) or a failure to write stdout.
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
          new ProgramError(
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
    new ProgramError(
      `Cannot write to standard output as ${
        error instanceof Deno.errors.BrokenPipe
          ? "it was closed"
          : `it failed: ${describeError(error)}`
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
    (error) =>
      // The reader of our output left (\`client ... | head -3\`): that ends
      // the client quietly with 0, as it ends nc.
      stdoutError instanceof Deno.errors.BrokenPipe
        ? done.resolve("output closed")
        : done.reject(stdoutError ? stdoutFailed(stdoutError) : error),
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

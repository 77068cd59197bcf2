/**
 * The server program, a thin layer over {@linkcode serve} and the services:
 * netcat's listening side for many clients at once. Its flags are in
 * `server_flags.ts`.
 *
 * ```sh
 * deno run -N jsr:@x/sock/server -p 9990 -s echo
 * ```
 *
 * @module
 */

import type { Connection } from "../connection.ts";
import {
  DEFAULT_GRACE_PERIOD,
  type Handler,
  serve,
  type Server,
  type ServerStats,
} from "../server.ts";
import {
  chargen,
  daytime,
  DiscardStream,
  EchoStream,
  execHandler,
  UpperCaseStream,
} from "../services.ts";
import { ChatRoom } from "../chat.ts";
import type { HexDumpChannel } from "./hex_dump.ts";
import {
  errorText,
  EXIT,
  formatAddr,
  onSignals,
  openHexDumpFile,
  permissionHint,
  ProgramError,
  readFlagFile,
  runProgram,
} from "./common.ts";
import { formatDuration } from "./flags.ts";
import {
  DEFAULT_EXEC_MAX_CONNECTIONS,
  SERVER_COMMAND_LINE,
  type ServerFlags,
  type UDP_SERVICES,
} from "./server_flags.ts";

function listenError(error: unknown, where: string, unix: boolean): string {
  if (error instanceof Deno.errors.AddrInUse) {
    return unix
      ? `Cannot listen on ${where} as the path is in use: remove the stale file or choose another --unix path`
      : `Cannot listen on ${where} as the address is in use: choose another --port, or 0 for any free one`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where} as the address is not available on this machine: choose another --host`;
  }
  if (error instanceof Deno.errors.NotFound) {
    return `Cannot listen on ${where} as the host is not found: choose another --host`;
  }
  const hint = permissionHint(error);
  if (hint) return `Cannot listen on ${where} as ${hint}`;
  if (error instanceof TypeError && /unstable-net/.test(error.message)) {
    return `Cannot listen on ${where} with --reuse-port as Deno needs its --unstable-net flag for it: run again with --unstable-net`;
  }
  return `Cannot listen on ${where}: ${
    error instanceof Error ? error.message : error
  }`;
}

function statsLine(stats: ServerStats): string {
  return `Stats: ${stats.open} open, ${stats.accepted} accepted, ${stats.refused} refused, ${stats.closed} closed, ${stats.bytesIn} bytes in, ${stats.bytesOut} bytes out`;
}

/**
 * The connection a handler sees with --hex-dump: the same object, except
 * that what it reads and writes passes through the dump.
 */
function tapped(connection: Connection, channel: HexDumpChannel): Connection {
  const readable = connection.readable.pipeThrough(channel.tap("<"));
  const out = channel.tap(">");
  out.readable.pipeTo(connection.writable).catch(() => {});
  return new Proxy(connection, {
    get(target, property) {
      if (property === "readable") return readable;
      if (property === "writable") return out.writable;
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Builds the handler the flags ask for; may fail (no --allow-run). */
function buildHandler(
  flags: ServerFlags,
  log: (line: string) => void,
): Handler {
  if (flags.exec) {
    const argv = flags.exec;
    try {
      return execHandler(argv, {
        onExit: !flags.quiet
          ? (status, connection) =>
            log(
              `Program ${JSON.stringify(argv[0])} for #${
                (connection as Connection).id
              } ended: ${
                status.signal
                  ? `killed by ${status.signal}`
                  : `exit code ${status.code}`
              }`,
            )
          : undefined,
      }) as Handler;
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        throw new ProgramError(
          `Cannot run "${
            argv[0]
          }" for --exec as run access is not allowed: run again with --allow-run or --allow-run=${
            argv[0]
          }`,
          { cause: error },
        );
      }
      if (error instanceof Deno.errors.NotFound) {
        throw new ProgramError(
          `Cannot run "${
            argv[0]
          }" for --exec as the program was not found: check its name or PATH`,
          { cause: error },
        );
      }
      throw error;
    }
  }
  switch (flags.service) {
    case "upper":
      return () => new UpperCaseStream();
    case "echo":
      return () => new EchoStream();
    case "discard":
      return () => new DiscardStream();
    case "chargen":
      return chargen as Handler;
    case "daytime":
      return daytime as Handler;
    case "chat": {
      const room = new ChatRoom();
      return (connection, context) => room.join(connection, context);
    }
  }
}

/** Runs the program with `args`; resolves to its exit code. */
export function main(args: string[]): Promise<number> {
  return runProgram(
    { ...SERVER_COMMAND_LINE, tcp: runTcp, udp: runUdp },
    args,
  );
}

async function runUdp(flags: ServerFlags): Promise<number> {
  const { runUdpServer } = await import("./udp.ts");
  const controller = new AbortController();
  const log = (line: string) => console.error(line);
  const removeSignals = onSignals((name) => {
    log(`Shutting down on ${name}`);
    controller.abort();
  }, log);
  const where = `${
    formatAddr({
      transport: "udp",
      hostname: flags.hostname,
      port: flags.port,
    })
  }/udp`;
  try {
    return await runUdpServer({
      hostname: flags.hostname,
      port: flags.port,
      service: flags.service as typeof UDP_SERVICES[number],
      quiet: flags.quiet,
      verbose: flags.verbose,
      hexDump: flags.hexDump,
      signal: controller.signal,
    });
  } catch (error) {
    throw new ProgramError(listenError(error, where, false), { cause: error });
  } finally {
    removeSignals();
  }
}

async function runTcp(flags: ServerFlags): Promise<number> {
  const { verbose, quiet } = flags;
  const log = (line: string) => console.error(line);
  const where = flags.path !== undefined ? `unix:${flags.path}` : formatAddr({
    transport: "tcp",
    hostname: flags.hostname,
    port: flags.port,
  });
  const tls = flags.certFile !== undefined
    ? {
      cert: await readFlagFile("--cert", flags.certFile),
      key: await readFlagFile("--key", flags.keyFile!),
    }
    : {};
  let handler = buildHandler(flags, log);
  const dump = flags.hexDump === undefined
    ? undefined
    : await openHexDumpFile(flags.hexDump);
  if (dump) {
    const inner = handler;
    handler = (connection, context) => {
      const view = tapped(connection, dump.channel(`#${connection.id}`));
      const result = inner(view, context);
      // A service (any { readable, writable } pair) runs over the tapped
      // view; a handler's promise is its own.
      if (result !== undefined && "writable" in result) {
        return view.readable.pipeThrough(result).pipeTo(view.writable);
      }
      return result;
    };
  }
  const serviceLabel = flags.exec
    ? `exec: ${flags.exec.join(" ")}`
    : `service: ${flags.service}`;

  let server: Server;
  try {
    server = serve({
      hostname: flags.path === undefined ? flags.hostname : undefined,
      port: flags.path === undefined ? flags.port : undefined,
      path: flags.path,
      ...tls,
      // A process per client: 100 at once unless asked, as ncat.
      maxConnections: flags.maxConnections ??
        (flags.exec ? DEFAULT_EXEC_MAX_CONNECTIONS : undefined),
      connectionPolicy: flags.connectionPolicy,
      idleTimeout: flags.idleTimeout,
      handshakeTimeout: flags.handshakeTimeout,
      gracePeriod: flags.gracePeriod,
      allow: flags.allow,
      deny: flags.deny,
      proxyProtocol: flags.proxyProtocol || undefined,
      trustedProxies: flags.trustedProxies,
      reusePort: flags.reusePort || undefined,
      onListen: (addr) =>
        log(
          `Listening on ${formatAddr(addr)}${
            flags.certFile ? " with TLS" : ""
          } (${serviceLabel})`,
        ),
      onConnect: quiet ? undefined : (info) =>
        log(
          `Connected ${formatAddr(info.remoteAddr)} (#${info.id})${
            verbose ? ` on ${formatAddr(info.localAddr)}` : ""
          }`,
        ),
      onClose: (info) => {
        // The server's own closes (idle timeout, shutdown) are not errors.
        const own = info.error instanceof Deno.errors.Interrupted ||
          info.error instanceof Deno.errors.TimedOut;
        if (quiet && (info.error === undefined || own)) return;
        log(
          `Closed ${
            formatAddr(info.remoteAddr)
          } (#${info.id}): ${info.bytesIn} bytes in, ${info.bytesOut} bytes out, ${
            Math.round(info.duration)
          } ms${
            info.error === undefined
              ? ""
              : own
              ? `, ${(info.error as Error).message.replace(/^Connection /, "")}`
              : `, error: ${errorText(info.error, verbose)}`
          }`,
        );
      },
      onError: (error, info) =>
        log(
          `error: ${
            info ? `${formatAddr(info.remoteAddr)} (#${info.id}): ` : ""
          }${errorText(error, verbose)}`,
        ),
    }, handler);
  } catch (error) {
    await dump?.close().catch(() => {});
    if (
      error instanceof RangeError || error instanceof SyntaxError ||
      (error instanceof TypeError && !/unstable-net/.test(error.message))
    ) {
      // Flags are checked before; this is a combination serve() refuses.
      throw new ProgramError(error.message, { cause: error });
    }
    throw new ProgramError(
      listenError(error, where, flags.path !== undefined),
      {
        cause: error,
      },
    );
  }

  const removeSignals = onSignals((name) => {
    log(
      `Shutting down on ${name}: idle connections close now, busy ones have ${
        formatDuration(flags.gracePeriod ?? DEFAULT_GRACE_PERIOD)
      } to finish (a second signal exits at once)`,
    );
    server.shutdown();
  }, log);
  const printStats = () => log(statsLine(server.stats));
  Deno.addSignalListener("SIGUSR1", printStats);
  const statsTimer = flags.stats === undefined
    ? undefined
    : setInterval(printStats, flags.stats);
  try {
    await server.finished;
  } finally {
    clearInterval(statsTimer);
    Deno.removeSignalListener("SIGUSR1", printStats);
    removeSignals();
    await dump?.close().catch(() => {});
  }
  if (flags.stats !== undefined) printStats();
  log("Stopped");
  return EXIT.ok;
}

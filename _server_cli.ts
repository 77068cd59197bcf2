/**
 * The server program, a thin layer over {@linkcode serve}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  DEFAULT_GRACE_PERIOD,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_PORT,
  serve,
  type Server,
} from "./server.ts";
import { EchoStream, UpperCaseStream } from "./services.ts";

// ---------------------------------------------------------------------------
// Program

const USAGE = `Usage: deno run -N jsr:@x/sock/server [options]

Serves many TCP clients at once, each through a service: upper-case or echo.
Each client is answered in full after it half-closes. Logs go to stderr.

Options:
  --host <name>           Address to listen on; ::1 for IPv6 (default: 127.0.0.1)
  -p, --port <number>     Port to listen on; 0 for any free one (default: ${DEFAULT_PORT})
  -s, --service <name>    upper or echo (default: upper)
  -u, --unix <path>       Listen on a Unix socket at <path> instead (needs -R -W)
  --cert <file>           TLS certificate chain in PEM; with --key (needs -R)
  --key <file>            TLS private key in PEM
  --max-connections <n>   Clients served at once; more are refused (default: ${DEFAULT_MAX_CONNECTIONS})
  --idle-timeout <ms>     Close a client silent for this long; 0 for never (default: 0)
  --grace-period <ms>     Time clients get to finish on shutdown (default: ${DEFAULT_GRACE_PERIOD})
  -q, --quiet             Log only where it listens, shutdown and errors
  -v, --verbose           Also log local addresses and error stacks
  -h, --help              Show this help

SIGINT or SIGTERM shuts the server down gracefully (a second one exits at once).
Exit codes: 0 after a shutdown, 1 when it cannot listen, 2 for bad usage.`;

/** An error in the command line: exit code 2. */
class UsageError extends Error {}

function formatAddr(addr: Deno.Addr): string {
  if (!("hostname" in addr)) {
    return "path" in addr && addr.path ? `unix:${addr.path}` : "unix client";
  }
  return addr.hostname.includes(":")
    ? `[${addr.hostname}]:${addr.port}`
    : `${addr.hostname}:${addr.port}`;
}

function formatError(error: unknown, verbose: boolean): string {
  if (!(error instanceof Error)) return String(error);
  if (verbose && error.stack) return error.stack;
  return `${error.name}: ${error.message}`;
}

function parseNumber(
  flag: string,
  text: string | undefined,
  max = Infinity,
): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (!/^\d+$/.test(text) || value > max) {
    throw new UsageError(
      `Cannot parse --${flag} as it must be an integer from 0${
        max < Infinity ? ` to ${max}` : ""
      }: current value is '${text}'`,
    );
  }
  return value;
}

function parseCommandLine(args: string[]) {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        host: { type: "string" },
        port: { type: "string", short: "p" },
        service: { type: "string", short: "s" },
        unix: { type: "string", short: "u" },
        cert: { type: "string" },
        key: { type: "string" },
        "max-connections": { type: "string" },
        "idle-timeout": { type: "string" },
        "grace-period": { type: "string" },
        quiet: { type: "boolean", short: "q" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (error) {
    // parseArgs explains at length; its first sentence is the useful one.
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(`Cannot parse flags: ${message.split(". ")[0]}`);
  }
  const service = values.service ?? "upper";
  if (service !== "upper" && service !== "echo") {
    throw new UsageError(
      `Cannot parse --service as it must be upper or echo: current value is '${service}'`,
    );
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError(
      `Cannot serve TLS as --cert and --key go together: --${
        values.cert === undefined ? "cert" : "key"
      } is missing`,
    );
  }
  if (values.unix !== undefined) {
    const clash = ["host", "port", "cert"].find((name) =>
      values[name as "host"] !== undefined
    );
    if (clash) {
      throw new UsageError(
        `Cannot use --${clash} with --unix: a Unix socket has only a path`,
      );
    }
  }
  if (values.quiet && values.verbose) {
    throw new UsageError("Cannot be --quiet and --verbose at once");
  }
  const maxConnections = parseNumber(
    "max-connections",
    values["max-connections"],
  );
  if (maxConnections === 0) {
    throw new UsageError(
      "Cannot parse --max-connections as it must be an integer from 1: current value is '0'",
    );
  }
  return {
    help: values.help ?? false,
    service: service as "upper" | "echo",
    hostname: values.host,
    port: parseNumber("port", values.port, 65535),
    path: values.unix,
    certFile: values.cert,
    keyFile: values.key,
    maxConnections,
    idleTimeout: parseNumber("idle-timeout", values["idle-timeout"]),
    gracePeriod: parseNumber("grace-period", values["grace-period"]),
    quiet: values.quiet ?? false,
    verbose: values.verbose ?? false,
  };
}

/** The permission flag a `NotCapable` error asks for, or a generic hint. */
function permissionFlag(error: Error): string {
  return error.message.match(/--allow-[a-z-]+/)?.[0] ??
    "the needed --allow flag";
}

function readPem(flag: string, file: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable) {
      throw new Error(
        `Cannot read --${flag} file '${file}' as read access is not allowed: run again with ${
          permissionFlag(error)
        }`,
      );
    }
    throw new Error(
      `Cannot read --${flag} file '${file}': ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
}

function listenError(error: unknown, where: string, unix: boolean): string {
  if (error instanceof Deno.errors.AddrInUse) {
    return unix
      ? `Cannot listen on ${where} as the path is in use: remove the stale file or choose another --unix path`
      : `Cannot listen on ${where} as the address is in use: choose another --port, or 0 for any free one`;
  }
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return `Cannot listen on ${where} as the address is not available on this machine: choose another --host`;
  }
  if (error instanceof Deno.errors.NotCapable) {
    return `Cannot listen on ${where} as permission is missing: run again with ${
      permissionFlag(error)
    }`;
  }
  return `Cannot listen on ${where}: ${
    error instanceof Error ? error.message : error
  }`;
}

/** Runs the program; resolves to its exit code. */
/** Runs the program with `args`; resolves to its exit code. */
export async function main(args: string[]): Promise<number> {
  let flags: ReturnType<typeof parseCommandLine>;
  try {
    flags = parseCommandLine(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`error: ${error.message} (see --help)`);
    return 2;
  }
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const { verbose, quiet } = flags;
  const log = (line: string) => console.error(line);
  const where = flags.path !== undefined ? `unix:${flags.path}` : formatAddr({
    transport: "tcp",
    hostname: flags.hostname ?? DEFAULT_HOSTNAME,
    port: flags.port ?? DEFAULT_PORT,
  });

  let server: Server;
  try {
    const tls = flags.certFile !== undefined
      ? {
        cert: readPem("cert", flags.certFile),
        key: readPem("key", flags.keyFile!),
      }
      : {};
    const service = flags.service === "upper" ? UpperCaseStream : EchoStream;
    server = serve({
      hostname: flags.hostname,
      port: flags.port,
      path: flags.path,
      ...tls,
      maxConnections: flags.maxConnections,
      idleTimeout: flags.idleTimeout,
      gracePeriod: flags.gracePeriod,
      onListen: (addr) =>
        log(
          `Listening on ${formatAddr(addr)}${
            flags.certFile ? " with TLS" : ""
          } (service: ${flags.service})`,
        ),
      onConnect: quiet ? undefined : (info) =>
        log(
          `Connected ${formatAddr(info.remoteAddr)} (#${info.id})${
            verbose ? ` on ${formatAddr(info.localAddr)}` : ""
          }`,
        ),
      onClose: (info) => {
        if (quiet && info.error === undefined) return;
        log(
          `Closed ${
            formatAddr(info.remoteAddr)
          } (#${info.id}): ${info.bytesIn} bytes in, ${info.bytesOut} bytes out, ${
            Math.round(info.duration)
          } ms${
            info.error === undefined
              ? ""
              : `, error: ${formatError(info.error, verbose)}`
          }`,
        );
      },
      onError: (error, info) =>
        log(
          `error: ${
            info ? `${formatAddr(info.remoteAddr)} (#${info.id}): ` : ""
          }${formatError(error, verbose)}`,
        ),
    }, () => new service());
  } catch (error) {
    console.error(
      `error: ${
        error instanceof Error && error.message.startsWith("Cannot read")
          ? error.message
          : listenError(error, where, flags.path !== undefined)
      }`,
    );
    return 1;
  }

  let signals = 0;
  const onSignal = (name: Deno.Signal) => () => {
    if (signals++ > 0) {
      log(`Exiting at once on a second ${name}`);
      Deno.exit(1);
    }
    log(
      `Shutting down on ${name}: open connections have ${
        flags.gracePeriod ?? DEFAULT_GRACE_PERIOD
      } ms to finish`,
    );
    server.shutdown();
  };
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = onSignal(name);
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  await server.finished;
  for (const [name, handler] of handlers) {
    Deno.removeSignalListener(name, handler);
  }
  log("Stopped");
  return 0;
}

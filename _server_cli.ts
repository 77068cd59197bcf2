/**
 * The server program, a thin layer over {@linkcode serve} and the services:
 * netcat's listening side for many clients at once.
 *
 * ```sh
 * deno run -N jsr:@x/sock/server -p 9990 -s echo
 * ```
 *
 * @module
 */

import type { Connection } from "./connection.ts";
import {
  DEFAULT_GRACE_PERIOD,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_PORT,
  type Handler,
  serve,
  type Server,
  type ServerStats,
} from "./server.ts";
import {
  chargen,
  daytime,
  DiscardStream,
  EchoStream,
  execHandler,
  UpperCaseStream,
} from "./services.ts";
import { ChatRoom } from "./chat.ts";
import { parseRange } from "./_address_list.ts";
import { HexDump, type HexDumpChannel, openDumpSink } from "./_hex_dump.ts";
import {
  errorText,
  EXIT,
  Failure,
  fileError,
  formatAddr,
  formatDuration,
  onSignals,
  parseDuration,
  parseFlags,
  parseInteger,
  permissionHint,
  runProgram,
  splitCommand,
  UsageError,
} from "./_cli.ts";

const SERVICES = [
  "upper",
  "echo",
  "discard",
  "chargen",
  "daytime",
  "chat",
] as const;
type ServiceName = typeof SERVICES[number];
const UDP_SERVICES = ["upper", "echo", "discard"] as const;

const USAGE = `Usage: deno run -N jsr:@x/sock/server [options]

Serves many TCP clients at once, each through a service, with half-close
done right: a client's FIN ends its input, and everything the service still
has to say is sent before ours. Logs go to stderr.

Services (-s):
  upper      upper-cases a-z, streaming; the rest passes unchanged (default)
  echo       sends every byte back (RFC 862)
  discard    reads and drops everything, answers nothing (RFC 863)
  chargen    sends 72-character lines of ASCII until the client closes
             (RFC 864)
  daytime    sends the date and time in one line, then closes (RFC 867)
  chat       every line a client sends goes to every other client, marked
             with its sender; a client that does not read is dropped

Options:
  --host <name>               address to listen on; ::1 for IPv6, 0.0.0.0 or
                              :: for every interface (default: ${DEFAULT_HOSTNAME})
  -p, --port <n>              port, 0 for any free one (default: ${DEFAULT_PORT})
  -s, --service <name>        one of the services above (default: upper)
  -e, --exec <command>        run <command> for each client instead of a
                              service: its stdin is what the client sends
                              (the client's FIN is its end of input), its
                              stdout goes to the client (its end is our FIN),
                              its stderr to ours; words split as a shell
                              does for simple quoting (needs --allow-run)
  -U, --unix <path>           listen on a Unix socket at <path> instead
                              (needs -R -W)
  --cert <file>               TLS certificate chain in PEM; with --key
                              (needs -R)
  --key <file>                TLS private key in PEM
  --max-connections <n>       clients served at once (default: ${DEFAULT_MAX_CONNECTIONS})
  --connection-policy <p>     at that limit: queue (newcomers wait in the
                              kernel's backlog) or refuse (they are closed at
                              once) (default: queue)
  -i, --idle-timeout <time>   close a client when no byte moved either way
                              for this long; 0 for never (default: 0)
  --grace-period <time>       on shutdown, the time busy clients get to
                              finish; idle ones are closed at once
                              (default: ${formatDuration(DEFAULT_GRACE_PERIOD)})
  --allow <addr|cidr>         serve only these clients (repeat, or separate
                              with commas), e.g. 127.0.0.1 or 10.0.0.0/8
  --deny <addr|cidr>          refuse these clients (repeat, or commas); deny
                              wins over allow
  --proxy-protocol            expect a PROXY protocol v1 or v2 header from a
                              load balancer first; logs, --allow and --deny
                              then see the real client
  --trusted-proxy <addr|cidr> with --proxy-protocol: only these peers may
                              send a header (repeat, or commas)
  --reuse-port                share the port with other processes (Linux
                              SO_REUSEPORT; needs Deno's --unstable-net)
  --stats <time>              log the server's figures this often; SIGUSR1
                              logs them at any time
  -x, --hex-dump <file>       write every connection's traffic as a hex dump
                              to <file> ("-" for stderr; needs -W); records
                              name the connection (#id), ">" marks what we
                              sent, "<" what we received
  -u, --udp                   serve UDP datagrams instead (upper, echo or
                              discard): each datagram is answered to its
                              sender
  -q, --quiet                 log only where it listens, shutdown and errors
  -v, --verbose               also log local addresses and error stacks
  --version                   print the version and exit
  -h, --help                  show this help

A <time> is a number with a unit (500ms, 30s, 2m, 1h); a bare number is
seconds.

SIGINT (Ctrl-C) or SIGTERM shuts the server down: it stops accepting, closes
idle clients at once and gives busy ones the grace period. A second signal
exits at once.

Exit codes:
  0    stopped after SIGINT or SIGTERM
  1    runtime failure: cannot listen, a file named by a flag cannot be read
       or written, --exec without --allow-run
  2    bad usage: unknown flag, bad value, conflicting flags
  130  a second Ctrl-C (SIGINT) ended the server at once (143: SIGTERM)`;

const FLAGS = {
  host: { type: "string" },
  port: { type: "string", short: "p" },
  service: { type: "string", short: "s" },
  exec: { type: "string", short: "e" },
  unix: { type: "string", short: "U" },
  cert: { type: "string" },
  key: { type: "string" },
  "max-connections": { type: "string" },
  "connection-policy": { type: "string" },
  "idle-timeout": { type: "string", short: "i" },
  "grace-period": { type: "string" },
  allow: { type: "string", multiple: true },
  deny: { type: "string", multiple: true },
  "proxy-protocol": { type: "boolean" },
  "trusted-proxy": { type: "string", multiple: true },
  "reuse-port": { type: "boolean" },
  stats: { type: "string" },
  "hex-dump": { type: "string", short: "x" },
  udp: { type: "boolean", short: "u" },
  quiet: { type: "boolean", short: "q" },
  verbose: { type: "boolean", short: "v" },
} as const;

/** The command line, checked. */
interface ServerFlags {
  service: ServiceName;
  exec?: string[];
  hostname: string;
  port: number;
  path?: string;
  certFile?: string;
  keyFile?: string;
  maxConnections?: number;
  connectionPolicy?: "queue" | "refuse";
  idleTimeout?: number;
  gracePeriod?: number;
  allow?: string[];
  deny?: string[];
  proxyProtocol: boolean;
  trustedProxies?: string[];
  reusePort: boolean;
  stats?: number;
  hexDump?: string;
  udp: boolean;
  quiet: boolean;
  verbose: boolean;
}

/** Splits repeated, comma-separated address lists and checks each entry. */
function addressList(
  flag: string,
  texts: string[] | undefined,
): string[] | undefined {
  if (texts === undefined) return undefined;
  const entries = texts.flatMap((text) => text.split(","))
    .map((entry) => entry.trim());
  for (const entry of entries) {
    try {
      parseRange(entry, flag);
    } catch (error) {
      throw new UsageError(
        error instanceof RangeError
          ? `Cannot parse ${flag} as the prefix length must be at most 32 for IPv4 and 128 for IPv6: current value is "${entry}"`
          : `Cannot parse ${flag} as it must be an IP address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32: current value is "${entry}"`,
      );
    }
  }
  return entries;
}

/** Reads the command line; `"help"` / `"version"` when asked for. */
function parseCommandLine(args: string[]): ServerFlags | "help" | "version" {
  const parsed = parseFlags(args, FLAGS);
  if (parsed.help) return "help";
  if (parsed.version) return "version";
  const values = parsed.values as Record<string, string | undefined>;
  const lists = parsed.values as Record<string, string[] | undefined>;
  const on = (name: string) => parsed.values[name] === true;
  if (parsed.positionals.length > 0) {
    throw new UsageError(
      `Cannot parse arguments as the server takes none: use --host and --port; current value is "${
        parsed.positionals[0]
      }"`,
    );
  }
  const service = values.service ?? "upper";
  if (!(SERVICES as readonly string[]).includes(service)) {
    throw new UsageError(
      `Cannot parse --service as it must be one of ${
        SERVICES.join(", ")
      }: current value is "${service}"`,
    );
  }
  if (values.exec !== undefined && values.service !== undefined) {
    throw new UsageError(
      `Cannot use --exec with --service as --exec replaces the service: current service is "${service}"`,
    );
  }
  if (values.host !== undefined && values.host.trim() === "") {
    throw new UsageError(
      'Cannot parse --host as it must be a name or an address: current value is ""',
    );
  }
  if ((values.cert === undefined) !== (values.key === undefined)) {
    throw new UsageError(
      `Cannot serve TLS as --cert and --key go together: current value of --${
        values.cert === undefined ? "cert" : "key"
      } is none`,
    );
  }
  if (values.unix !== undefined) {
    if (values.unix === "") {
      throw new UsageError(
        'Cannot parse --unix as it must be a socket path: current value is ""',
      );
    }
    const clash = [
      "host",
      "port",
      "cert",
      "allow",
      "deny",
      "proxy-protocol",
      "reuse-port",
      "udp",
    ].find((name) => parsed.values[name] !== undefined);
    if (clash) {
      throw new UsageError(
        `Cannot use --${clash} with --unix as a Unix socket has only a path: current value is "${values.unix}"`,
      );
    }
  }
  if (on("quiet") && on("verbose")) {
    throw new UsageError(
      "Cannot use --quiet with --verbose as they ask for opposite logs: choose one",
    );
  }
  if (values["trusted-proxy"] !== undefined && !on("proxy-protocol")) {
    throw new UsageError(
      "Cannot use --trusted-proxy without --proxy-protocol as only PROXY headers come from proxies: add --proxy-protocol",
    );
  }
  if (on("udp")) {
    const clash = [
      "exec",
      "cert",
      "max-connections",
      "connection-policy",
      "idle-timeout",
      "grace-period",
      "allow",
      "deny",
      "proxy-protocol",
      "reuse-port",
      "stats",
    ].find((name) => parsed.values[name] !== undefined);
    if (clash) {
      throw new UsageError(
        `Cannot use --${clash} with --udp as it applies to TCP only: drop one of them`,
      );
    }
    if (!(UDP_SERVICES as readonly string[]).includes(service)) {
      throw new UsageError(
        `Cannot parse --service as it must be one of ${
          UDP_SERVICES.join(", ")
        } with --udp: current value is "${service}"`,
      );
    }
  }
  const policy = values["connection-policy"];
  if (policy !== undefined && policy !== "queue" && policy !== "refuse") {
    throw new UsageError(
      `Cannot parse --connection-policy as it must be queue or refuse: current value is "${policy}"`,
    );
  }
  for (const name of ["hex-dump", "cert", "key"]) {
    if (values[name] === "") {
      throw new UsageError(
        `Cannot parse --${name} as it must be a file path: current value is ""`,
      );
    }
  }
  const duration = (name: string) =>
    values[name] === undefined
      ? undefined
      : parseDuration(`--${name}`, values[name]!);
  const stats = duration("stats");
  if (stats === 0) {
    throw new UsageError(
      `Cannot parse --stats as it must be longer than 0: current value is "${values.stats}"`,
    );
  }
  return {
    service: service as ServiceName,
    exec: values.exec === undefined
      ? undefined
      : splitCommand("--exec", values.exec),
    hostname: values.host ?? DEFAULT_HOSTNAME,
    port: values.port === undefined
      ? DEFAULT_PORT
      : parseInteger("--port", values.port, 0, 65535),
    path: values.unix,
    certFile: values.cert,
    keyFile: values.key,
    maxConnections: values["max-connections"] === undefined
      ? undefined
      : parseInteger("--max-connections", values["max-connections"], 1),
    connectionPolicy: policy as "queue" | "refuse" | undefined,
    idleTimeout: duration("idle-timeout"),
    gracePeriod: duration("grace-period"),
    allow: addressList("--allow", lists.allow),
    deny: addressList("--deny", lists.deny),
    proxyProtocol: on("proxy-protocol"),
    trustedProxies: addressList("--trusted-proxy", lists["trusted-proxy"]),
    reusePort: on("reuse-port"),
    stats,
    hexDump: values["hex-dump"],
    udp: on("udp"),
    quiet: on("quiet"),
    verbose: on("verbose"),
  };
}

function readPem(flag: string, file: string): string {
  try {
    return Deno.readTextFileSync(file);
  } catch (error) {
    throw new Failure(fileError(`read ${flag} file "${file}"`, error), {
      cause: error,
    });
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
        onExit: flags.verbose
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
        throw new Failure(
          `Cannot run "${
            argv[0]
          }" for --exec as run access is not allowed: run again with --allow-run or --allow-run=${
            argv[0]
          }`,
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

async function openHexDump(
  file: string,
): Promise<HexDump> {
  try {
    // Not a file's `writable`: it holds writes back until it closes, and a
    // dump is for reading (`tail -f`) while the server runs.
    return new HexDump(await openDumpSink(file));
  } catch (error) {
    throw new Failure(fileError(`write --hex-dump file "${file}"`, error), {
      cause: error,
    });
  }
}

/** Runs the program with `args`; resolves to its exit code. */
export function main(args: string[]): Promise<number> {
  return runProgram({
    name: "server",
    usage: USAGE,
    parse: parseCommandLine,
    tcp: runTcp,
    udp: runUdp,
  }, args);
}

async function runUdp(flags: ServerFlags): Promise<number> {
  const { runUdpServer } = await import("./_udp_cli.ts");
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
    throw new Failure(listenError(error, where, false), { cause: error });
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
      cert: readPem("--cert", flags.certFile),
      key: readPem("--key", flags.keyFile!),
    }
    : {};
  let handler = buildHandler(flags, log);
  const dump = flags.hexDump === undefined
    ? undefined
    : await openHexDump(flags.hexDump);
  if (dump) {
    const inner = handler;
    handler = (connection, context) => {
      const view = tapped(connection, dump.channel(`#${connection.id}`));
      const result = inner(view, context);
      if (result instanceof TransformStream) {
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
      maxConnections: flags.maxConnections,
      connectionPolicy: flags.connectionPolicy,
      idleTimeout: flags.idleTimeout,
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
        if (quiet && info.error === undefined) return;
        log(
          `Closed ${
            formatAddr(info.remoteAddr)
          } (#${info.id}): ${info.bytesIn} bytes in, ${info.bytesOut} bytes out, ${
            Math.round(info.duration)
          } ms${
            info.error === undefined
              ? ""
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
      throw new Failure(error.message, { cause: error });
    }
    throw new Failure(listenError(error, where, flags.path !== undefined), {
      cause: error,
    });
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

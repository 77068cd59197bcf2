/**
 * The server program's command line: its services, its `--help` text and
 * the parser that checks the flags against each other.
 *
 * ```ts
 * import { parseCommandLine } from "./server_flags.ts";
 * import assert from "node:assert/strict";
 *
 * const flags = parseCommandLine(["-p", "0", "-s", "echo", "--allow", "10.0.0.0/8,::1"]);
 * assert.ok(typeof flags === "object");
 * assert.equal(flags.service, "echo");
 * assert.deepEqual(flags.allow, ["10.0.0.0/8", "::1"]);
 * ```
 *
 * @module
 */

import {
  DEFAULT_GRACE_PERIOD,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_PORT,
} from "../server.ts";
import { parseRange } from "../_server/address_list.ts";
import type { Program } from "./common.ts";
import {
  formatDuration,
  parseDuration,
  parseFlags,
  parseInteger,
  splitCommand,
  UsageError,
} from "./flags.ts";

/** How many clients `--exec` serves at once unless told: ncat's default. */
export const DEFAULT_EXEC_MAX_CONNECTIONS = 100;

/** The services of `-s, --service`. */
export const SERVICES = [
  "upper",
  "echo",
  "discard",
  "chargen",
  "daytime",
  "chat",
] as const;
export type ServiceName = typeof SERVICES[number];
/** The services of `-s` with `--udp`. */
export const UDP_SERVICES = ["upper", "echo", "discard"] as const;

const USAGE = `Usage: deno run -N jsr:@x/sock/server [options] [host] [port]

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

Arguments:
  host                        as --host; a lone number is the port, as in
                              nc -l 9990
  port                        as --port

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
                              does for simple quoting (needs --allow-run);
                              each program's exit status is logged
  -U, --unix <path>           listen on a Unix socket at <path> instead
                              (needs -R -W)
  --cert <file>               TLS certificate chain in PEM; with --key
                              (needs -R)
  --key <file>                TLS private key in PEM
  --handshake-timeout <time>  with --cert: close a client that has not
                              finished its TLS handshake in this long; 0 for
                              never (default: ${
  formatDuration(DEFAULT_HANDSHAKE_TIMEOUT)
})
  --max-connections <n>       clients served at once (default: ${DEFAULT_MAX_CONNECTIONS};
                              ${DEFAULT_EXEC_MAX_CONNECTIONS} with --exec, as ncat)
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
       or written, --exec without --allow-run or with a program not found
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
  "handshake-timeout": { type: "string" },
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
export interface ServerFlags {
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
  handshakeTimeout?: number;
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

/** What to say about netcat flags the server does not take. */
const NETCAT_HINTS: Record<string, string> = {
  "-l": "-l is not needed: the server program always listens",
  "--listen": "--listen is not needed: the server program always listens",
  "-k":
    "-k is already the default: the server keeps listening and serves many clients at once",
  "--keep-open":
    "--keep-open is already the default: the server keeps listening and serves many clients at once",
  "-N":
    "-N is already the default: the server sends FIN once a client's answer is complete",
  "-c":
    "use -e <command>: its words are split as a shell does for simple quoting",
  "--sh-exec":
    "use -e <command>: its words are split as a shell does for simple quoting",
  "-m": "use --max-connections <n>",
  "--max-conns": "use --max-connections <n>",
  "--ssl": "use --cert <file> and --key <file>",
  "--ssl-cert": "use --cert <file>",
  "--ssl-key": "use --key <file>",
  "-4": "use --host 0.0.0.0 (every IPv4 interface) or an IPv4 address",
  "-6": "use --host :: (every interface) or an IPv6 address",
};

/** Reads the command line; `"help"` / `"version"` when asked for. */
export function parseCommandLine(
  args: string[],
): ServerFlags | "help" | "version" {
  const parsed = parseFlags(args, FLAGS, NETCAT_HINTS);
  if (parsed.help) return "help";
  if (parsed.version) return "version";
  const values = parsed.values as Record<string, string | undefined>;
  const lists = parsed.values as Record<string, string[] | undefined>;
  const on = (name: string) => parsed.values[name] === true;
  // [host] [port], as the client takes them; a lone number is the port.
  const positionals = [...parsed.positionals];
  if (positionals.length > 2) {
    throw new UsageError(
      `Cannot parse arguments as the server takes at most a host and a port: current extra argument is "${
        positionals[2]
      }"`,
    );
  }
  if (positionals.length === 1 && /^\d+$/.test(positionals[0])) {
    positionals.unshift(undefined as unknown as string);
  }
  const [hostArg, portArg] = positionals;
  for (
    const [name, arg] of [["host", hostArg], ["port", portArg]] as const
  ) {
    if (arg !== undefined && values[name] !== undefined) {
      throw new UsageError(
        `Cannot parse --${name} as the ${name} is also given as an argument: current values are "${
          values[name]
        }" and "${arg}"`,
      );
    }
  }
  if (hostArg !== undefined) {
    values.host = /^\[[^\]]*\]$/.test(hostArg) ? hostArg.slice(1, -1) : hostArg;
  }
  if (portArg !== undefined) values.port = portArg;
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
        `Cannot use ${
          hostArg !== undefined && clash === "host"
            ? "a host"
            : portArg !== undefined && clash === "port"
            ? "a port"
            : `--${clash}`
        } with --unix as a Unix socket has only a path: current value is "${values.unix}"`,
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
      "handshake-timeout",
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
  if (values["handshake-timeout"] !== undefined && values.cert === undefined) {
    throw new UsageError(
      "Cannot use --handshake-timeout without --cert as only TLS has a handshake: add --cert and --key",
    );
  }
  const handshakeTimeout = duration("handshake-timeout");
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
    handshakeTimeout: handshakeTimeout === 0 ? Infinity : handshakeTimeout,
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

/**
 * The server program's name, `--help` text and parser, for
 * {@linkcode runProgram}.
 */
export const SERVER_COMMAND_LINE: Pick<
  Program<ServerFlags>,
  "name" | "usage" | "parse"
> = {
  name: "server",
  usage: USAGE,
  parse: parseCommandLine,
};

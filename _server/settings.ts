/**
 * The checks of the server's options, and what they settle into: defaults
 * applied, lists parsed, every bad option refused at once with a
 * `TypeError` or `RangeError` that names it.
 *
 * @module
 */

import {
  checkBoolean,
  checkNumber,
  checkTimer,
  DEFAULT_PORT,
  MAX_TIMER_DELAY,
} from "../_defaults.ts";
import { AddressList } from "./address_list.ts";
import {
  DEFAULT_GRACE_PERIOD,
  DEFAULT_HANDSHAKE_TIMEOUT,
  DEFAULT_HOSTNAME,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_PROXY_HEADER_TIMEOUT,
} from "./defaults.ts";
import type {
  ConnectionPolicy,
  ServeConnectionOptions,
  ServeOptions,
} from "./options.ts";

/** Options with defaults applied and lists parsed. */
export interface Settings {
  idleTimeout: number;
  gracePeriod: number;
  proxyProtocol: boolean;
  trustedProxies?: AddressList;
  proxyHeaderTimeout: number;
  allow?: AddressList;
  deny?: AddressList;
  hooks: ServeConnectionOptions & { onListen?(addr: Deno.Addr): void };
}

/** What `serve()` listens on, and its limit, checked. */
export interface ListenerSettings {
  hostname: string;
  port: number;
  path?: string;
  cert?: string;
  key?: string;
  reusePort: boolean;
  maxConnections: number;
  connectionPolicy: ConnectionPolicy;
  /** With TLS: the handshake deadline in milliseconds, or `Infinity`. */
  handshakeTimeout: number;
}

function describe(value: unknown): string {
  return typeof value === "string" ? `'${value}'` : String(value);
}

/** Refuses a handler that is not a function. */
export function checkHandler(handler: unknown): void {
  if (typeof handler !== "function") {
    throw new TypeError(
      `Cannot serve as the handler must be a function: current type is ${typeof handler}`,
    );
  }
}

/** Checks the options of every connection and applies their defaults. */
export function settle(options: ServeOptions): Settings {
  if (options === null || typeof options !== "object") {
    throw new TypeError(
      `Cannot serve as options must be an object: current type is ${
        options === null ? "null" : typeof options
      }`,
    );
  }
  for (
    const name of [
      "onListen",
      "onConnect",
      "onClose",
      "onError",
    ] as const
  ) {
    const hook = options[name];
    if (hook !== undefined && typeof hook !== "function") {
      throw new TypeError(
        `Cannot serve as ${name} must be a function: current type is ${typeof hook}`,
      );
    }
  }
  if (
    options.signal !== undefined && !(options.signal instanceof AbortSignal)
  ) {
    throw new TypeError(
      `Cannot serve as signal must be an AbortSignal: current type is ${typeof options
        .signal}`,
    );
  }
  const idleTimeout = checkTimer(
    "serve",
    "idleTimeout",
    options.idleTimeout ?? 0,
    0,
    true,
  );
  const gracePeriod = checkTimer(
    "serve",
    "gracePeriod",
    options.gracePeriod ?? DEFAULT_GRACE_PERIOD,
    0,
    true,
  );
  const proxyHeaderTimeout = checkTimer(
    "serve",
    "proxyHeaderTimeout",
    options.proxyHeaderTimeout ?? DEFAULT_PROXY_HEADER_TIMEOUT,
    1,
    false,
  );
  const proxyProtocol = checkBoolean(
    "serve",
    "proxyProtocol",
    options.proxyProtocol,
  );
  if (options.trustedProxies !== undefined && !proxyProtocol) {
    throw new TypeError(
      "Cannot serve as trustedProxies needs proxyProtocol: current proxyProtocol is false",
    );
  }
  const list = (name: "trustedProxies" | "allow" | "deny") =>
    options[name] === undefined
      ? undefined
      : new AddressList(options[name]!, name);
  return {
    idleTimeout: idleTimeout === Infinity ? 0 : idleTimeout,
    gracePeriod,
    proxyProtocol,
    proxyHeaderTimeout,
    trustedProxies: list("trustedProxies"),
    allow: list("allow"),
    deny: list("deny"),
    hooks: options,
  };
}

/**
 * Checks the options only `serve()` has (address, TLS, limit), after
 * {@linkcode settle} gave `settings`, and applies their defaults.
 */
export function settleListener(
  options: ServeOptions,
  settings: Settings,
): ListenerSettings {
  const {
    hostname = DEFAULT_HOSTNAME,
    port = DEFAULT_PORT,
    path,
    cert,
    key,
    maxConnections = DEFAULT_MAX_CONNECTIONS,
    connectionPolicy = "queue",
  } = options;
  checkNumber("serve", "port", port, { min: 0, max: 65535, integer: true });
  checkNumber("serve", "maxConnections", maxConnections, {
    min: 1,
    max: MAX_TIMER_DELAY,
    integer: true,
    infinity: true,
  });
  if (typeof hostname !== "string") {
    throw new TypeError(
      `Cannot serve as hostname must be a string: current type is ${typeof hostname}`,
    );
  }
  if (connectionPolicy !== "queue" && connectionPolicy !== "refuse") {
    throw new TypeError(
      `Cannot serve as connectionPolicy must be "queue" or "refuse": current value is ${
        describe(connectionPolicy)
      }`,
    );
  }
  const reusePort = checkBoolean("serve", "reusePort", options.reusePort);
  const handshakeTimeout = checkTimer(
    "serve",
    "handshakeTimeout",
    options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
    1,
    true,
  );
  if ((cert === undefined) !== (key === undefined)) {
    throw new TypeError(
      `Cannot serve TLS as cert and key must be given together: current ${
        cert === undefined ? "cert" : "key"
      } is missing`,
    );
  }
  if (path !== undefined && cert !== undefined) {
    throw new TypeError(
      "Cannot serve TLS on a Unix socket: give either path, or cert and key",
    );
  }
  if (cert !== undefined && settings.proxyProtocol) {
    throw new TypeError(
      "Cannot serve TLS with proxyProtocol as Deno's TLS listener reads the TLS handshake before any PROXY header: end TLS at the proxy, or leave proxyProtocol off",
    );
  }
  if (path !== undefined) {
    const clash = reusePort
      ? "reusePort"
      : settings.trustedProxies
      ? "trustedProxies"
      : !settings.proxyProtocol && (settings.allow || settings.deny)
      ? settings.allow ? "allow" : "deny"
      : undefined;
    if (clash) {
      throw new TypeError(
        `Cannot serve on a Unix socket with ${clash} as its clients have no IP address: current path is '${path}'`,
      );
    }
  }
  if (
    reusePort && typeof (Deno as { listenDatagram?: unknown })
        .listenDatagram !== "function"
  ) {
    // Deno ends the process, rather than throwing, when an unstable
    // option is used without its flag: check first.
    throw new TypeError(
      'Cannot listen with reusePort as Deno needs the --unstable-net flag for it: run with --unstable-net (or "unstable": ["net"] in deno.json)',
    );
  }
  return {
    hostname,
    port,
    path,
    cert,
    key,
    reusePort,
    maxConnections,
    connectionPolicy,
    handshakeTimeout,
  };
}

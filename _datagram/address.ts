/**
 * Addresses and errors for the datagram endpoint: checking and resolving
 * host names, the net permission (checked before node:dgram can throw it
 * where nobody catches it), and the `Deno.errors` a failed bind or send
 * becomes.
 *
 * @module
 */

import { isIP } from "node:net";
import { lookup } from "node:dns/promises";
import { describeType, formatHostPort } from "../_defaults.ts";

/** The loopback address of a family. */
export function loopback(family: 4 | 6): string {
  return family === 6 ? "::1" : "127.0.0.1";
}

/** Checks a hostname option: a non-empty string, without brackets. */
export function checkHostname(action: string, hostname: unknown): void {
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(
      `Cannot ${action} as the hostname must be a non-empty string: current value is ${
        typeof hostname === "string" ? '""' : describeType(hostname)
      }`,
    );
  }
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    throw new TypeError(
      `Cannot ${action} as the hostname must be an address without brackets: current value is "${hostname}"`,
    );
  }
}

/** Checks that an address is of the endpoint's family. */
export function checkFamily(
  action: string,
  address: string,
  family: 4 | 6,
): void {
  const wanted = isIP(address);
  if (wanted !== family) {
    throw new TypeError(
      `Cannot ${action} to ${address} as the endpoint is IPv${family}: current address is IPv${wanted}; bind to ${
        wanted === 6 ? '"::1" or "::"' : '"127.0.0.1" or "0.0.0.0"'
      } instead`,
    );
  }
}

/** Resolves a host name to its first address (of `family` when given). */
export async function resolve(
  action: string,
  hostname: string,
  port: number,
  family?: 4 | 6,
): Promise<string> {
  if (isIP(hostname)) return hostname;
  try {
    const { address } = await lookup(hostname, { family: family ?? 0 });
    return address;
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === "EPERM") {
      throw new Deno.errors.NotCapable(
        notCapable(`${hostname}:${port}`),
      );
    }
    throw new Deno.errors.NotFound(
      `Cannot ${action} as the host name does not resolve${
        family ? ` to an IPv${family} address` : ""
      }: current value is "${hostname}"`,
      { cause: error },
    );
  }
}

/**
 * node:dgram throws Deno's permission error from a callback nobody can
 * catch, so the permission is checked first (prompting, as Deno does, when
 * it may).
 */
export function checkNetPermission(address: string, port: number): void {
  const descriptor = {
    name: "net",
    host: formatHostPort(address, port),
  } as const;
  let state = Deno.permissions.querySync(descriptor).state;
  if (state === "prompt") {
    state = Deno.permissions.requestSync(descriptor).state;
  }
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      notCapable(descriptor.host),
    );
  }
}

/**
 * The message of a missing net permission, worded as Deno words its own
 * (so that code reading Deno's messages reads ours too).
 */
function notCapable(host: string): string {
  return `Requires net access to "${host}", run again with the --allow-net flag`;
}

/** The error of a failed bind, as a `Deno.errors` class where one fits. */
export function bindError(error: unknown, where: string): Error {
  const code = (error as { code?: string }).code;
  const action = "bind datagram endpoint";
  if (code === "EADDRINUSE") {
    return new Deno.errors.AddrInUse(
      `Cannot ${action} as the address is in use: current address is ${where}`,
      { cause: error },
    );
  }
  if (code === "EADDRNOTAVAIL") {
    return new Deno.errors.AddrNotAvailable(
      `Cannot ${action} as the address is not on this machine: current address is ${where}`,
      { cause: error },
    );
  }
  if (code === "EACCES" || code === "EPERM") {
    return new Deno.errors.PermissionDenied(
      `Cannot ${action} as the system denies it (a port below 1024 needs privileges): current address is ${where}`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.NotCapable) return error;
  return new Error(
    `Cannot ${action} on ${where}: ${(error as Error)?.message ?? error}`,
    { cause: error },
  );
}

/** The error of a failed send, as a `Deno.errors` class where one fits. */
export function sendError(
  error: Error,
  hostname: string,
  port: number,
  broadcast: boolean,
): Error {
  const code = (error as { code?: string }).code;
  const action = "send datagram";
  const where = formatHostPort(hostname, port);
  if (code === "EBADF" || error instanceof Deno.errors.BadResource) {
    return new Deno.errors.BadResource(
      `Cannot ${action} as the endpoint is closed`,
      { cause: error },
    );
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return new Deno.errors.NotFound(
      `Cannot ${action} as the host name does not resolve: current value is "${hostname}"`,
      { cause: error },
    );
  }
  if (code === "EPERM") {
    return new Deno.errors.NotCapable(
      notCapable(`${hostname}:${port}`),
      { cause: error },
    );
  }
  if (code === "EMSGSIZE") {
    return new RangeError(
      `Cannot ${action} to ${where} as the system refuses its size (over the path's limit): current error is EMSGSIZE`,
      { cause: error },
    );
  }
  if (isIP(hostname)) {
    const host = formatHostPort(hostname, port);
    if (Deno.permissions.querySync({ name: "net", host }).state !== "granted") {
      return new Deno.errors.NotCapable(
        notCapable(host),
        { cause: error },
      );
    }
  }
  if (!broadcast && /^255\.|\.255$/.test(hostname)) {
    return new Error(
      `Cannot ${action} to ${where} as it looks like a broadcast address: set the broadcast option`,
      { cause: error },
    );
  }
  return new Error(`Cannot ${action} to ${where}: ${error.message}`, {
    cause: error,
  });
}

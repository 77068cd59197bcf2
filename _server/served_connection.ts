/**
 * The connection a handler gets from the server: a `Connection` that knows
 * the real client behind a PROXY header, notices whether the handler used
 * it, and tells it of a shutdown.
 *
 * @module
 */

import { formatHostPort } from "../_defaults.ts";
import { Connection } from "../connection.ts";
import { type ProxyHeader, readProxyHeader } from "./proxy.ts";
import type { ConnectionInfo } from "./types.ts";

/** The IP address of `addr`, if it has one. */
export function hostOf(addr: Deno.Addr): string | undefined {
  return "hostname" in addr ? addr.hostname : undefined;
}

/** An address for a message: `host:port`, or the Unix socket's path. */
export function showAddr(addr: Deno.Addr): string {
  if (!("hostname" in addr)) {
    return "path" in addr && addr.path ? `unix:${addr.path}` : "a unix client";
  }
  return formatHostPort(addr.hostname, addr.port);
}

/**
 * Why a connection is closed before its handler runs: the kind of the
 * refusal (reports are rate-limited by kind), and its error, `suffix`
 * ending the message.
 */
export interface Refusal {
  kind: string;
  make: (suffix: string) => unknown;
}

/** How the handler uses its connection, for the shutdown's idea of idle. */
export type Kind = "pending" | "service" | "own";

/**
 * The connection the handler gets: a `Connection` that knows the real
 * client behind a PROXY header and notices whether the handler used it.
 */
export class ServedConnection extends Connection {
  readonly start: number = performance.now();
  kind: Kind = "pending";
  touched = false;
  /** Activity seen by the last check, and since when it was the same. */
  #lastActivity = 0;
  #quietSince: number = this.start;
  #client?: Deno.Addr;
  #headerSize = 0;
  // One per connection, so that a handler's listeners go with it; made
  // when the handler first looks, since most never do.
  #shutdown?: AbortController;
  #shuttingDown = false;

  /** What the handler gets as `HandlerContext.shutdown`. */
  get shutdownSignal(): AbortSignal {
    if (this.#shutdown === undefined) {
      this.#shutdown = new AbortController();
      if (this.#shuttingDown) this.#abortShutdown();
    }
    return this.#shutdown.signal;
  }

  /** Tells the handler that the server is shutting down. */
  tellShutdown(): void {
    this.#shuttingDown = true;
    if (this.#shutdown) this.#abortShutdown();
  }

  #abortShutdown(): void {
    this.#shutdown!.abort(
      new Deno.errors.Interrupted("The server is shutting down"),
    );
  }

  override get remoteAddr(): Deno.Addr {
    return this.#client ?? super.remoteAddr;
  }

  /** Bytes received from the client, the PROXY header not counted. */
  override get bytesRead(): number {
    return super.bytesRead - this.#headerSize;
  }

  override get readable(): ReadableStream<Uint8Array> {
    this.touched = true;
    return super.readable;
  }

  override get writable(): WritableStream<Uint8Array> {
    this.touched = true;
    return super.writable;
  }

  override write(chunk: Uint8Array): Promise<void> {
    this.touched = true;
    return super.write(chunk);
  }

  override closeWrite(): Promise<void> {
    this.touched = true;
    return super.closeWrite();
  }

  override reader(): ReturnType<Connection["reader"]> {
    this.touched = true;
    return super.reader();
  }

  /**
   * Milliseconds since a byte last moved either way, as far as the checks
   * (this call, every so often) can tell.
   */
  quietFor(now: number): number {
    const activity = this.bytesRead + this.bytesWritten;
    if (activity !== this.#lastActivity) {
      this.#lastActivity = activity;
      this.#quietSince = now;
    }
    return now - this.#quietSince;
  }

  /** The address of the proxy, when a PROXY header named the client. */
  get proxyAddr(): Deno.Addr | undefined {
    return this.#client ? super.remoteAddr : undefined;
  }

  /** Reads the PROXY header; the bytes after it stay for the handler. */
  async readHeader(): Promise<void> {
    const reader = super.reader();
    let parsed: { header: ProxyHeader; size: number };
    try {
      parsed = await readProxyHeader(reader);
    } finally {
      try {
        reader.releaseLock();
      } catch { /* the connection failed under it */ }
    }
    this.#headerSize = parsed.size;
    const { header } = parsed;
    if (header.command === "proxy" && header.source) {
      this.#client = header.source;
    }
  }

  /**
   * Reads the PROXY header within `timeout` milliseconds; returns a refusal
   * or nothing.
   */
  async readHeaderWithin(timeout: number): Promise<Refusal | undefined> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.close(
        new Deno.errors.TimedOut("PROXY header not received in time"),
      );
    }, timeout);
    try {
      await this.readHeader();
      return undefined;
    } catch (error) {
      const peer = showAddr(this.remoteAddr);
      if (timedOut) {
        return {
          kind: "proxy-timeout",
          make: (suffix) =>
            new Deno.errors.TimedOut(
              `Cannot read PROXY header as it did not arrive within proxyHeaderTimeout: current timeout is ${timeout} ms, peer is ${peer}${suffix}`,
            ),
        };
      }
      if (error instanceof SyntaxError) {
        return {
          kind: "proxy-header",
          make: (suffix) =>
            new SyntaxError(`${error.message}; peer is ${peer}${suffix}`),
        };
      }
      if (this.#shuttingDown) {
        return {
          kind: "proxy-shutdown",
          make: (suffix) =>
            new Deno.errors.Interrupted(
              `Cannot read PROXY header as the server shut down: peer is ${peer}${suffix}`,
            ),
        };
      }
      return {
        kind: "proxy-network",
        make: (suffix) =>
          new SyntaxError(
            `Cannot read PROXY header as the connection failed: ${
              error instanceof Error ? `${error.name}: ${error.message}` : error
            }; peer is ${peer}${suffix}`,
          ),
      };
    } finally {
      clearTimeout(timer);
    }
  }

  info(): ConnectionInfo {
    const proxyAddr = this.proxyAddr;
    return {
      id: this.id,
      localAddr: this.localAddr,
      remoteAddr: this.remoteAddr,
      ...(proxyAddr ? { proxyAddr } : {}),
    };
  }
}

/**
 * The supervisor of a server's connections: runs each accepted connection
 * through its refusals (trusted proxies, PROXY header, allow/deny), the
 * hooks and the handler, keeps the figures, closes idle connections and
 * drives the staged shutdown.
 *
 * @module
 */

import { isNetworkError } from "../_errors.ts";
import { Reporter } from "./reporter.ts";
import { HANDLER_DONE, runHandler } from "./run_handler.ts";
import { hostOf, ServedConnection, showAddr } from "./served_connection.ts";
import type { Settings } from "./settings.ts";
import type {
  ConnectionInfo,
  ConnectionStats,
  Handler,
  ServerStats,
} from "./types.ts";

/** Whether allow/deny refuse `host`. */
function isDenied(settings: Settings, host: string | undefined): boolean {
  return host !== undefined &&
    (settings.deny?.has(host) === true ||
      (settings.allow !== undefined && !settings.allow.has(host)));
}

/** How long a service's connection must be quiet to count as idle. */
const QUIET = 100;
/** How often the server looks for idle connections while shutting down. */
const SWEEP = 50;

/**
 * Serves connections with one handler and one set of options: hooks,
 * idle checks, staged shutdown and figures. `serve()` has one for all its
 * connections; `serveConnection()` one for its single connection.
 */
export class Supervisor {
  readonly connections: Set<ServedConnection> = new Set();
  nextId = 1;
  accepted = 0;
  refused = 0;
  closed = 0;
  /** Connections whose descriptor is open (the limit counts these). */
  held = 0;
  draining = false;
  onRelease?: () => void;
  /** Where errors go: `onError`, or the console. */
  readonly reporter: Reporter;

  #settings: Settings;
  #handler: Handler;
  #bytesIn = 0;
  #bytesOut = 0;
  #idleTimer?: ReturnType<typeof setInterval>;
  #sweepTimer?: ReturnType<typeof setInterval>;
  #graceTimer?: ReturnType<typeof setTimeout>;
  #drained?: PromiseWithResolvers<void>;

  constructor(settings: Settings, handler: Handler) {
    this.#settings = settings;
    this.#handler = handler;
    this.reporter = new Reporter(settings.hooks);
  }

  get stats(): ServerStats {
    let bytesIn = this.#bytesIn;
    let bytesOut = this.#bytesOut;
    for (const connection of this.connections) {
      bytesIn += connection.bytesRead;
      bytesOut += connection.bytesWritten;
    }
    return {
      open: this.accepted - this.refused - this.closed,
      accepted: this.accepted,
      refused: this.refused,
      closed: this.closed,
      bytesIn,
      bytesOut,
    };
  }

  #hook<T>(
    name: "onConnect" | "onClose",
    arg: T,
    info: ConnectionInfo,
  ): boolean {
    const hook = this.#settings.hooks[name] as ((arg: T) => void) | undefined;
    if (!hook) return true;
    try {
      hook.call(this.#settings.hooks, arg);
      return true;
    } catch (error) {
      this.reporter.report(error, info);
      return false;
    }
  }

  /** Closes a connection before its handler ran, and reports it. */
  refuse(
    kind: string,
    info: ConnectionInfo,
    make: (suffix: string) => unknown,
  ): void {
    this.refused++;
    this.reporter.reportLimited(kind, make, info);
  }

  /**
   * Serves one accepted connection to its end; never rejects.
   *
   * @returns What `onClose` gets, or for a refused connection its info and
   * the refusal.
   */
  async run(
    conn: Deno.Conn,
    id: number,
  ): Promise<ConnectionInfo & ConnectionStats> {
    this.accepted++;
    const settings = this.#settings;
    const start = performance.now();
    const peer = conn.remoteAddr;
    // No closure per connection unless there is a list to check.
    const denied = settings.deny || settings.allow ? isDenied : undefined;

    // Cheap refusals first, before anything is allocated for the connection.
    const untrusted = settings.trustedProxies &&
      !settings.trustedProxies.has(hostOf(peer) ?? "");
    if (
      untrusted ||
      (!settings.proxyProtocol && denied?.(settings, hostOf(peer)))
    ) {
      const info = { id, localAddr: conn.localAddr, remoteAddr: peer };
      const error = untrusted
        ? (suffix: string) =>
          new Deno.errors.PermissionDenied(
            `Cannot read PROXY header as the peer is not in trustedProxies: current peer is ${
              showAddr(peer)
            }${suffix}`,
          )
        : (suffix: string) =>
          new Deno.errors.PermissionDenied(
            `Cannot serve client as its address is ${
              settings.deny?.has(hostOf(peer)!) ? "in deny" : "not in allow"
            }: current address is ${showAddr(peer)}${suffix}`,
          );
      try {
        conn.close();
      } catch { /* closed already */ }
      this.refuse(untrusted ? "untrusted" : "denied", info, error);
      return {
        ...info,
        bytesIn: 0,
        bytesOut: 0,
        duration: 0,
        error: error(""),
      };
    }

    const connection = new ServedConnection(conn, { id });
    this.held++;
    this.connections.add(connection);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.held--;
      this.onRelease?.();
    };
    // A connection stops counting against the limit as soon as it is
    // closed, whatever its handler still does.
    connection.closed.then(release, release);
    if (settings.idleTimeout > 0) this.#startIdleChecks();
    if (this.draining) {
      connection.tellShutdown();
      this.#startSweeping();
    }

    try {
      if (settings.proxyProtocol) {
        const refusal = await connection.readHeaderWithin(
          settings.proxyHeaderTimeout,
        );
        if (refusal) {
          connection.close();
          this.connections.delete(connection);
          const info = connection.info();
          this.refuse(refusal.kind, info, refusal.make);
          return {
            ...info,
            bytesIn: 0,
            bytesOut: 0,
            duration: performance.now() - start,
            error: refusal.make(""),
          };
        }
        const host = hostOf(connection.remoteAddr);
        if (denied?.(settings, host)) {
          connection.close();
          this.connections.delete(connection);
          const info = connection.info();
          const make = (suffix: string) =>
            new Deno.errors.PermissionDenied(
              `Cannot serve client as its address is ${
                settings.deny?.has(host!) ? "in deny" : "not in allow"
              }: current address is ${showAddr(connection.remoteAddr)} behind ${
                showAddr(peer)
              }${suffix}`,
            );
          this.refuse("denied", info, make);
          return {
            ...info,
            bytesIn: 0,
            bytesOut: 0,
            duration: performance.now() - start,
            error: make(""),
          };
        }
      }
      return await this.#serve(connection);
    } finally {
      this.connections.delete(connection);
      if (this.connections.size === 0) {
        this.#stopTimers();
        this.#drained?.resolve();
      }
    }
  }
  /** Runs the hooks and the handler; never rejects. */
  async #serve(
    connection: ServedConnection,
  ): Promise<ConnectionInfo & ConnectionStats> {
    const info = connection.info();
    let fault: unknown = undefined;
    let faulted = false;
    const fail = (error: unknown) => {
      // The first failure of the connection is the one to report: an error
      // that follows the server's own close, or a reset, is its echo.
      if (connection.signal.aborted && connection.signal.reason !== error) {
        return;
      }
      if (!isNetworkError(error)) {
        faulted = true;
        fault = error;
      }
      connection.close(error);
    };

    if (this.#hook("onConnect", info, info)) {
      try {
        await runHandler(connection, this.#handler, fail);
      } catch (error) {
        fail(error);
      }
    } else {
      connection.close(new Error("Connection closed as onConnect threw"));
    }
    // Whatever the handler did, the connection is closed by now or closes
    // itself (a handler that returned nothing but works on the streams).
    const error = await connection.closed.then(
      () => undefined,
      (e) => e === HANDLER_DONE ? undefined : e,
    );
    if (faulted) this.reporter.report(fault, info);
    const summary: ConnectionInfo & ConnectionStats = {
      ...info,
      bytesIn: connection.bytesRead,
      bytesOut: connection.bytesWritten,
      duration: performance.now() - connection.start,
      ...(error !== undefined ? { error } : {}),
    };
    this.#bytesIn += summary.bytesIn;
    this.#bytesOut += summary.bytesOut;
    this.closed++;
    this.connections.delete(connection);
    this.#hook("onClose", summary, info);
    return summary;
  }
  #startIdleChecks(): void {
    if (this.#idleTimer !== undefined) return;
    const idleTimeout = this.#settings.idleTimeout;
    this.#idleTimer = setInterval(() => {
      const now = performance.now();
      for (const connection of this.connections) {
        const quiet = connection.quietFor(now);
        if (quiet >= idleTimeout) {
          connection.close(
            new Deno.errors.TimedOut(
              `Connection closed as it was idle for ${
                Math.round(quiet)
              } ms: idleTimeout is ${idleTimeout} ms`,
            ),
          );
        }
      }
    }, Math.max(1, Math.floor(idleTimeout / 4)));
  }

  /** Whether a connection may be closed at once on shutdown. */
  #isIdle(connection: ServedConnection, now: number): boolean {
    if (connection.kind === "pending") return true;
    if (connection.kind !== "service" || connection.state !== "open") {
      return false;
    }
    // Output still waiting to be sent is work in flight.
    if (connection.bufferedAmount > 0) return false;
    return connection.quietFor(now) >= QUIET;
  }

  #sweep(): void {
    const now = performance.now();
    for (const connection of this.connections) {
      if (this.#isIdle(connection, now)) {
        connection.close(
          new Deno.errors.Interrupted(
            "Connection closed as the server shut down while it was idle",
          ),
        );
      }
    }
  }

  #startSweeping(): void {
    if (this.#sweepTimer !== undefined || this.connections.size === 0) return;
    this.#sweepTimer = setInterval(() => this.#sweep(), SWEEP);
  }

  /**
   * Starts the staged shutdown of every connection (stages 2 to 4 of
   * {@linkcode Server.shutdown}). Resolves when none is left.
   */
  drain(): Promise<void> {
    if (!this.draining) {
      this.draining = true;
      for (const connection of this.connections) connection.tellShutdown();
      if (this.connections.size > 0) {
        const gracePeriod = this.#settings.gracePeriod;
        const closeAll = () => {
          const error = new Deno.errors.Interrupted(
            `Connection closed as the server shut down: grace period of ${gracePeriod} ms is over`,
          );
          for (const connection of this.connections) connection.close(error);
        };
        if (gracePeriod === 0) closeAll();
        else {
          this.#startSweeping();
          this.#sweep();
          if (gracePeriod !== Infinity) {
            this.#graceTimer = setTimeout(closeAll, gracePeriod);
          }
        }
      }
    }
    if (this.connections.size === 0) return Promise.resolve();
    this.#drained ??= Promise.withResolvers<void>();
    return this.#drained.promise;
  }

  #stopTimers(): void {
    clearInterval(this.#idleTimer);
    clearInterval(this.#sweepTimer);
    clearTimeout(this.#graceTimer);
    this.#idleTimer = this.#sweepTimer = this.#graceTimer = undefined;
  }

  /** Flushes held-back reports and clears every timer. */
  stop(): void {
    this.#stopTimers();
    this.reporter.flush();
  }
}

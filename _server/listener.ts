/**
 * The listener behind {@linkcode serve}: accepts clients within
 * `maxConnections` (queueing them in the backlog or refusing them), backs
 * off when accepting fails, and starts the staged shutdown.
 *
 * @module
 */

import { formatHostPort } from "../_defaults.ts";
import { checkHandler, settle, settleListener } from "./settings.ts";
import { Supervisor } from "./supervisor.ts";
import { TlsFront } from "./tls_front.ts";
import type { ConnectionPolicy, ServeOptions } from "./options.ts";
import type { Handler, Server, ServerStats } from "./types.ts";

/** The least time between two reports of reaching maxConnections. */
const LIMIT_REPORT_INTERVAL = 60_000;

/**
 * The soft open-file limit and the descriptors in use, when the process may
 * read them: Deno grants `/proc/self` to `--allow-all` only.
 */
export function fileLimit(): { limit: number; used: number } | undefined {
  try {
    const readable = (path: string) =>
      Deno.permissions.querySync({ name: "read", path }).state === "granted";
    if (!readable("/proc/self/limits") || !readable("/proc/self/fd")) {
      return undefined;
    }
    const line = Deno.readTextFileSync("/proc/self/limits").split("\n")
      .find((line) => line.startsWith("Max open files"));
    const limit = Number(line?.split(/\s+/)[3]);
    if (!Number.isInteger(limit)) return undefined;
    let used = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) used++;
    return { limit, used };
  } catch {
    // Not Linux, or no /proc: nothing to say.
    return undefined;
  }
}

/**
 * Listens as `listen` does, or throws the error of Deno with a message
 * that names the address, as {@linkcode serve} documents.
 */
function listenOn<T>(where: string, listen: () => T): T {
  try {
    return listen();
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    const options = { cause: error };
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(
        `Cannot listen on ${where} as the address is in use: current owner is another socket; choose another port, or 0 for any free one`,
        options,
      );
    }
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new Deno.errors.AddrNotAvailable(
        `Cannot listen on ${where} as the address is not one of this machine's: ${error.message}`,
        options,
      );
    }
    if (
      error.constructor === Error || error instanceof URIError
    ) {
      // Deno throws a bare Error when the name does not resolve, and a
      // URIError when it is not a host name at all ("localhost:9990").
      throw new Deno.errors.NotFound(
        `Cannot listen on ${where} as the host name cannot be resolved: ${error.message}`,
        options,
      );
    }
    throw error;
  }
}

export class SocketServer<A extends Deno.Addr = Deno.Addr>
  implements Server<A> {
  readonly addr: A;
  readonly finished: Promise<void>;

  #listener: Deno.Listener;
  /** With a TLS handshake deadline: the relay to the TLS listener. */
  #front?: TlsFront;
  /** Clients accepted by the front whose handshake is under way. */
  #handshaking = 0;
  /** The handshakes under way, which shutdown waits for. */
  #handshakes = new Set<Promise<void>>();
  /** Whether reaching maxConnections has been reported, and when. */
  #atLimit = false;
  #limitReported = 0;
  #supervisor: Supervisor;
  #maxConnections: number;
  #policy: ConnectionPolicy;
  #closing = false;
  #wake?: () => void;
  #options: ServeOptions;
  #signal?: AbortSignal;
  #onAbort = () => void this.shutdown();

  constructor(options: ServeOptions, handler: Handler) {
    checkHandler(handler);
    const settings = settle(options);
    this.#options = options;
    const listen = settleListener(options, settings);
    const { hostname, port, reusePort, maxConnections } = listen;
    const { path, cert, key, handshakeTimeout } = listen;
    this.#maxConnections = maxConnections;
    this.#policy = listen.connectionPolicy;
    this.#supervisor = new Supervisor(settings, handler);
    this.#supervisor.onRelease = () => {
      if (this.#held < this.#maxConnections) this.#wake?.();
      if (this.#atLimit) this.#checkLimit();
    };

    const tcp = { hostname, port, ...(reusePort ? { reusePort } : {}) };
    const where = path !== undefined
      ? `unix:${path}`
      : formatHostPort(hostname, port);
    this.#listener = listenOn(
      where,
      () =>
        path !== undefined
          ? Deno.listen({ transport: "unix", path })
          : cert !== undefined && handshakeTimeout === Infinity
          ? Deno.listenTls({ ...tcp, cert, key: key! })
          : Deno.listen(tcp),
    );
    if (cert !== undefined && handshakeTimeout !== Infinity) {
      try {
        this.#front = new TlsFront(cert, key!, handshakeTimeout);
      } catch (error) {
        this.#listener.close();
        throw error;
      }
    }
    this.addr = this.#listener.addr as A;

    if (maxConnections !== Infinity) {
      const files = fileLimit();
      // A relayed TLS client takes three descriptors: its own and the hop's.
      const each = this.#front ? 3 : 1;
      if (files && files.limit - files.used < maxConnections * each) {
        this.#supervisor.reporter.report(
          new RangeError(
            `Cannot serve maxConnections clients at once as the open-file limit is too low: current limit is ${files.limit} files with ${files.used} in use, maxConnections is ${maxConnections}${
              each > 1
                ? ` at ${each} files each (TLS with handshakeTimeout)`
                : ""
            }; raise the limit (ulimit -n ${
              maxConnections * each + files.used + 64
            }) or lower maxConnections`,
          ),
        );
      }
    }

    const accepting = this.#accept();
    this.finished = accepting
      .then(() => Promise.allSettled(this.#handshakes))
      .then(() => this.#supervisor.drain())
      .then(() => {
        this.#supervisor.stop();
        this.#signal?.removeEventListener("abort", this.#onAbort);
      });

    if (options.signal) {
      this.#signal = options.signal;
      if (options.signal.aborted) this.shutdown();
      else options.signal.addEventListener("abort", this.#onAbort);
    }
  }

  get stats(): ServerStats {
    return this.#supervisor.stats;
  }

  shutdown(): Promise<void> {
    if (this.#closing) return this.finished;
    this.#closing = true;
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    this.#front?.close();
    this.#wake?.();
    this.#supervisor.drain();
    return this.finished;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.shutdown();
  }

  /** Waits for `ms`, or less if the server is woken (a slot, shutdown). */
  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = ms === Infinity ? undefined : setTimeout(done, ms);
      const wake = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.#wake = wake;
    }).finally(() => this.#wake = undefined);
  }

  /** Connections that hold a slot: served, or handshaking TLS. */
  get #held(): number {
    return this.#supervisor.held + this.#handshaking;
  }

  /** Reports reaching maxConnections, once until the count falls back. */
  #checkLimit(): void {
    const held = this.#held;
    if (held < this.#maxConnections) {
      // Re-armed at half the limit and a minute after the last report, so
      // that a server hovering at its limit says so once.
      if (
        held <= Math.floor(this.#maxConnections / 2) &&
        performance.now() - this.#limitReported >= LIMIT_REPORT_INTERVAL
      ) {
        this.#atLimit = false;
      }
      return;
    }
    if (this.#atLimit) return;
    this.#atLimit = true;
    this.#limitReported = performance.now();
    const then = this.#policy === "queue"
      ? 'newcomers wait in the listen backlog until a client closes (connectionPolicy "queue")'
      : 'newcomers are refused until a client closes (connectionPolicy "refuse")';
    this.#supervisor.reporter.report(
      new RangeError(
        `Cannot serve more clients at once as maxConnections is reached: current count is ${held}, limit is ${this.#maxConnections}; ${then}; an idleTimeout frees the slots of silent clients`,
      ),
    );
  }

  async #accept(): Promise<void> {
    const supervisor = this.#supervisor;
    this.#listened();
    let delay = 0;
    while (!this.#closing) {
      if (
        this.#policy === "queue" &&
        this.#held >= this.#maxConnections
      ) {
        // Leave newcomers in the kernel's backlog until a slot frees.
        await this.#sleep(Infinity);
        this.#checkLimit();
        continue;
      }
      let conn: Deno.Conn;
      try {
        conn = await this.#listener.accept();
      } catch (error) {
        if (this.#closing) break;
        if (error instanceof Deno.errors.BadResource) {
          // The listener is gone for good.
          supervisor.reporter.report(error);
          this.shutdown();
          break;
        }
        // Such as EMFILE: wait for connections to close, doubling the wait.
        const held = this.#held;
        supervisor.reporter.reportLimited("accept", (suffix) => {
          if (!(error instanceof Error)) return error;
          const message = /os error 24\b|too many open files/i.test(
              error.message,
            )
            ? `Cannot accept connection as the process has reached its open-file limit: current open connections are ${held}, maxConnections is ${this.#maxConnections}; raise the limit (ulimit -n) or lower maxConnections; clients wait in the listen backlog meanwhile (${error.message})`
            : `Cannot accept connection: ${error.message}`;
          return new (error.constructor as ErrorConstructor)(
            `${message}${suffix}`,
          );
        });
        delay = Math.min(delay ? delay * 2 : 5, 1000);
        await this.#sleep(delay);
        continue;
      }
      delay = 0;
      const id = supervisor.nextId++;
      if (this.#closing) {
        conn.close();
        break;
      }
      if (this.#held >= this.#maxConnections) {
        supervisor.accepted++;
        const info = {
          id,
          localAddr: conn.localAddr,
          remoteAddr: conn.remoteAddr,
        };
        conn.close();
        const held = this.#held;
        supervisor.refuse("limit", info, (suffix) =>
          new RangeError(
            `Cannot accept connection as maxConnections is reached: current count is ${held}, limit is ${this.#maxConnections}${suffix}`,
          ));
        continue;
      }
      if (this.#front) this.#handshake(conn as Deno.TcpConn, id);
      else {
        // run() settles every failure itself; this is a last resort.
        supervisor.run(conn, id).catch((error) =>
          supervisor.reporter.report(error)
        );
      }
      this.#checkLimit();
    }
  }

  /** Serves a TLS client once the front has its handshake done. */
  #handshake(conn: Deno.TcpConn, id: number): void {
    const supervisor = this.#supervisor;
    const info = { id, localAddr: conn.localAddr, remoteAddr: conn.remoteAddr };
    this.#handshaking++;
    const done = this.#front!.handshake(conn).then((tls) => {
      this.#handshaking--;
      if (this.#closing) {
        // Never served: shutdown came first.
        supervisor.accepted++;
        supervisor.refused++;
        tls.close();
        return;
      }
      supervisor.run(tls, id).catch((error) =>
        supervisor.reporter.report(error)
      );
    }, (error) => {
      this.#handshaking--;
      supervisor.accepted++;
      if (this.#closing) supervisor.refused++;
      else {
        supervisor.refuse(
          "handshake",
          info,
          (suffix) =>
            error instanceof Error
              ? new (error.constructor as ErrorConstructor)(
                `${error.message}${suffix}`,
                { cause: error.cause },
              )
              : error,
        );
      }
      if (this.#held < this.#maxConnections) this.#wake?.();
      this.#checkLimit();
    });
    this.#handshakes.add(done);
    done.finally(() => this.#handshakes.delete(done));
  }

  #listened(): void {
    const onListen = this.#options.onListen;
    if (!onListen) return;
    try {
      onListen.call(this.#options, this.addr);
    } catch (error) {
      this.#supervisor.reporter.report(error);
    }
  }
}

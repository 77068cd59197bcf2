/**
 * The listener behind {@linkcode serve}: accepts clients within
 * `maxConnections` (queueing them in the backlog or refusing them), backs
 * off when accepting fails, and starts the staged shutdown.
 *
 * @module
 */

import { checkHandler, settle, settleListener } from "./settings.ts";
import { Supervisor } from "./supervisor.ts";
import type { ConnectionPolicy, ServeOptions } from "./options.ts";
import type { Handler, Server, ServerStats } from "./types.ts";

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

export class SocketServer implements Server {
  readonly addr: Deno.Addr;
  readonly finished: Promise<void>;

  #listener: Deno.Listener;
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
    const { path, cert, key } = listen;
    this.#maxConnections = maxConnections;
    this.#policy = listen.connectionPolicy;
    this.#supervisor = new Supervisor(settings, handler);
    this.#supervisor.onRelease = () => {
      if (this.#supervisor.held < this.#maxConnections) this.#wake?.();
    };

    const tcp = { hostname, port, ...(reusePort ? { reusePort } : {}) };
    this.#listener = path !== undefined
      ? Deno.listen({ transport: "unix", path })
      : cert !== undefined
      ? Deno.listenTls({ ...tcp, cert, key: key! })
      : Deno.listen(tcp);
    this.addr = this.#listener.addr;

    if (maxConnections !== Infinity) {
      const files = fileLimit();
      if (files && files.limit - files.used < maxConnections) {
        this.#supervisor.reporter.report(
          new RangeError(
            `Cannot serve maxConnections clients at once as the open-file limit is too low: current limit is ${files.limit} files with ${files.used} in use, maxConnections is ${maxConnections}; raise the limit (ulimit -n ${
              maxConnections + files.used + 64
            }) or lower maxConnections`,
          ),
        );
      }
    }

    const accepting = this.#accept();
    this.finished = accepting
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

  async #accept(): Promise<void> {
    const supervisor = this.#supervisor;
    this.#listened();
    let delay = 0;
    while (!this.#closing) {
      if (
        this.#policy === "queue" &&
        supervisor.held >= this.#maxConnections
      ) {
        // Leave newcomers in the kernel's backlog until a slot frees.
        await this.#sleep(Infinity);
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
        const held = supervisor.held;
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
      if (supervisor.held >= this.#maxConnections) {
        supervisor.accepted++;
        const info = {
          id,
          localAddr: conn.localAddr,
          remoteAddr: conn.remoteAddr,
        };
        conn.close();
        const held = supervisor.held;
        supervisor.refuse("limit", info, (suffix) =>
          new RangeError(
            `Cannot accept connection as maxConnections is reached: current count is ${held}, limit is ${this.#maxConnections}${suffix}`,
          ));
        continue;
      }
      // run() settles every failure itself; this is a last resort.
      supervisor.run(conn, id).catch((error) =>
        supervisor.reporter.report(error)
      );
    }
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

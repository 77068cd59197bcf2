/**
 * The TLS handshake deadline of {@linkcode serve}, and why it needs a relay.
 *
 * Deno's TLS listener hands each accepted socket to a handshake task in the
 * runtime (rustls-tokio-stream) that owns the socket until the handshake
 * ends: closing the `Deno.TlsConn` from JavaScript (as `idleTimeout` does)
 * drops our handle, but the task keeps the descriptor open, waiting for a
 * ClientHello, until the peer speaks or leaves. A client that connects and
 * says nothing holds a descriptor for good (the same goes for `node:tls`,
 * whose `handshakeTimeout` fires but frees nothing).
 *
 * Only the peer can end that task, so the server makes itself the peer:
 * it accepts the client on a plain TCP listener, relays its bytes over
 * loopback to a private TLS listener, and hands the server the TLS end once
 * its handshake is done. When the handshake has not finished by the
 * deadline, it closes both TCP ends it owns: the client's socket is freed
 * at once, and the handshake task reads end-of-file, fails and frees its
 * own. The price is two more descriptors per TLS connection and a loopback
 * hop for every byte; `handshakeTimeout: Infinity` serves TLS straight from
 * Deno's listener, without the relay and without a deadline.
 *
 * @module
 */

import { formatHostPort } from "../_defaults.ts";

/** Bytes a relay reads at once, in each direction. */
const RELAY_CHUNK = 16 * 1024;
/**
 * How long a relay waits, once the server closed its TLS end, for the
 * runtime to send the TLS close and its FIN through, before it closes the
 * client's socket anyway.
 */
const CLOSE_GRACE = 2000;

/** Copies bytes from `from` to `to` until end-of-file, then half-closes. */
async function pump(
  from: Deno.Conn,
  to: Deno.Conn,
  buffer: Uint8Array,
): Promise<void> {
  for (let n; (n = await from.read(buffer)) !== null;) {
    let written = 0;
    while (written < n) {
      written += await to.write(buffer.subarray(written, n));
    }
  }
  await to.closeWrite();
}

/**
 * One client's bytes between its socket (`outer`) and our end of the
 * loopback hop (`inner`), whose other end is the TLS listener's.
 */
class Relay {
  readonly ended: Promise<void>;
  #outer: Deno.TcpConn;
  #inner: Deno.TcpConn;
  #closed = false;
  #graceTimer?: ReturnType<typeof setTimeout>;

  constructor(outer: Deno.TcpConn, inner: Deno.TcpConn) {
    this.#outer = outer;
    this.#inner = inner;
    for (const conn of [outer, inner]) {
      try {
        conn.setNoDelay(true);
      } catch { /* closed already: the pumps will see it */ }
    }
    // Either direction failing (a reset, our close) ends both; each ending
    // cleanly only half-closes the other side, as TCP would.
    const up = pump(outer, inner, new Uint8Array(RELAY_CHUNK));
    const down = pump(inner, outer, new Uint8Array(RELAY_CHUNK));
    const fail = () => this.close();
    up.catch(fail);
    down.then(() => {
      // The TLS end sent its FIN: once the server has closed it for good,
      // nothing more can come back, so the client's socket goes too.
      this.#downDone = true;
      if (this.#closing) this.close();
    }, fail);
    this.ended = Promise.allSettled([up, down]).then(() => this.close());
  }

  #closing = false;
  #downDone = false;

  /** The server closed the TLS end: finish sending, then close. */
  finish(): void {
    if (this.#closing || this.#closed) return;
    this.#closing = true;
    if (this.#downDone) return this.close();
    this.#graceTimer = setTimeout(() => this.close(), CLOSE_GRACE);
  }

  /** Closes both ends now. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#graceTimer);
    for (const conn of [this.#outer, this.#inner]) {
      try {
        conn.close();
      } catch { /* closed already */ }
    }
  }
}

/**
 * The TLS connection a relayed client gets served on: the TLS end of the
 * hop, with the client's real addresses, whose close also ends the relay.
 */
class RelayedConn implements Deno.TlsConn {
  readonly #tls: Deno.TlsConn;
  readonly #relay: Relay;
  readonly localAddr: Deno.NetAddr;
  readonly remoteAddr: Deno.NetAddr;

  constructor(tls: Deno.TlsConn, outer: Deno.TcpConn, relay: Relay) {
    this.#tls = tls;
    this.#relay = relay;
    this.localAddr = outer.localAddr;
    this.remoteAddr = outer.remoteAddr;
  }

  get readable(): ReadableStream<Uint8Array<ArrayBuffer>> {
    return this.#tls.readable;
  }

  get writable(): WritableStream<Uint8Array<ArrayBufferLike>> {
    return this.#tls.writable;
  }

  read(p: Uint8Array): Promise<number | null> {
    return this.#tls.read(p);
  }

  write(p: Uint8Array): Promise<number> {
    return this.#tls.write(p);
  }

  closeWrite(): Promise<void> {
    return this.#tls.closeWrite();
  }

  handshake(): Promise<Deno.TlsHandshakeInfo> {
    return this.#tls.handshake();
  }

  // The TLS end sits on loopback with no delay already; these reach the
  // client's socket.
  setNoDelay(): void {}

  setKeepAlive(): void {}

  ref(): void {
    this.#tls.ref();
  }

  unref(): void {
    this.#tls.unref();
  }

  close(): void {
    this.#relay.finish();
    this.#tls.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A private TLS listener on loopback that relayed clients are handed to,
 * and the handshake of each within a deadline.
 */
export class TlsFront {
  #listener: Deno.TlsListener;
  /** Hops waiting for their TLS end, by the port of our end. */
  #waiting = new Map<number, PromiseWithResolvers<Deno.TlsConn>>();
  /** The ports of the hops that handshake() waits on. */
  #claimed = new Set<number>();
  /** Timers that close TLS ends nobody claimed. */
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #relays = new Set<Relay>();
  #timeout: number;
  #closed = false;
  /** Rejects when the front closes, ending every handshake under way. */
  #stopped = Promise.withResolvers<never>();

  /**
   * @param cert The certificate chain in PEM.
   * @param key The private key in PEM.
   * @param timeout The handshake deadline in milliseconds.
   */
  constructor(cert: string, key: string, timeout: number) {
    this.#timeout = timeout;
    this.#stopped.promise.catch(() => {});
    try {
      this.#listener = Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert,
        key,
      });
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable) {
        throw new Deno.errors.NotCapable(
          `Cannot serve TLS with a handshake deadline as its relay must listen on 127.0.0.1: ${error.message}; allow 127.0.0.1 (-N) or set handshakeTimeout to Infinity`,
        );
      }
      throw error;
    }
    this.#acceptLoop();
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      let tls: Deno.TlsConn;
      try {
        tls = await this.#listener.accept();
      } catch {
        // Closed by close(); a failed accept (EMFILE) fails its hop, which
        // times out.
        if (this.#closed) return;
        await new Promise((resolve) => setTimeout(resolve, 5));
        continue;
      }
      // The TLS end may come before or after handshake() learns its port.
      const port = (tls.remoteAddr as Deno.NetAddr).port;
      const waiter = this.#waiter(port);
      waiter.resolve(tls);
      if (!this.#claimed.has(port)) {
        // Not claimed in time: not one of ours (another local process).
        const timer = setTimeout(() => {
          this.#timers.delete(timer);
          if (this.#claimed.has(port)) return;
          if (this.#waiting.get(port) === waiter) this.#waiting.delete(port);
          try {
            tls.close();
          } catch { /* closed already */ }
        }, this.#timeout);
        this.#timers.add(timer);
      }
    }
  }

  #waiter(port: number): PromiseWithResolvers<Deno.TlsConn> {
    let waiter = this.#waiting.get(port);
    if (!waiter) {
      waiter = Promise.withResolvers<Deno.TlsConn>();
      this.#waiting.set(port, waiter);
    }
    return waiter;
  }

  /**
   * Relays `outer` to the TLS listener and waits for the handshake, within
   * the deadline counted from now.
   *
   * @returns The TLS connection to serve, with `outer`'s addresses.
   * @throws A `Deno.errors.TimedOut` at the deadline, or what made the
   * handshake fail; `outer` is closed then.
   */
  async handshake(outer: Deno.TcpConn): Promise<Deno.TlsConn> {
    const client = formatHostPort(
      outer.remoteAddr.hostname,
      outer.remoteAddr.port,
    );
    let relay: Relay | undefined;
    let tls: Deno.TlsConn | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() =>
        reject(
          new Deno.errors.TimedOut(
            `Cannot serve TLS client as its handshake did not finish within handshakeTimeout: current timeout is ${this.#timeout} ms, client is ${client}`,
          ),
        ), this.#timeout);
    });
    const stop = Promise.race([deadline, this.#stopped.promise]);
    let port: number | undefined;
    try {
      const { hostname, port: listening } = this.#listener.addr;
      const connecting = Deno.connect({ hostname, port: listening });
      const inner = await Promise.race([connecting, stop]).catch((error) => {
        // The deadline won: close our end of the hop when it comes.
        connecting.then((inner) => inner.close(), () => {});
        throw error;
      });
      port = inner.localAddr.port;
      this.#claimed.add(port);
      const waiter = this.#waiter(port);
      relay = new Relay(outer, inner);
      this.#relays.add(relay);
      const ended = relay.ended.then(() => {
        throw new Deno.errors.ConnectionReset(
          `Cannot serve TLS client as it left during the handshake: client is ${client}`,
        );
      });
      ended.catch(() => {});
      tls = await Promise.race([waiter.promise, ended, stop]);
      try {
        await Promise.race([tls.handshake(), ended, stop]);
      } catch (error) {
        if (!(error instanceof Error) || error.message.startsWith("Cannot")) {
          throw error;
        }
        // Such as a client that does not speak TLS (InvalidData).
        throw new (error.constructor as ErrorConstructor)(
          `Cannot serve TLS client as its handshake failed: ${error.message}; client is ${client}`,
          { cause: error },
        );
      }
      // Served from here on: the connection's close ends the relay.
      this.#relays.delete(relay);
      return new RelayedConn(tls, outer, relay);
    } catch (error) {
      // Closing our TCP ends frees the client's socket, and ends the
      // runtime's handshake task on the TLS end with end-of-file.
      if (relay) {
        relay.close();
        this.#relays.delete(relay);
      } else {
        try {
          outer.close();
        } catch { /* closed already */ }
      }
      try {
        tls?.close();
      } catch { /* closed already */ }
      throw error;
    } finally {
      clearTimeout(timer);
      if (port !== undefined) {
        this.#waiting.delete(port);
        this.#claimed.delete(port);
      }
    }
  }

  /**
   * Closes the private listener and the relays still handshaking; the
   * relays of connections being served end with them.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopped.reject(
      new Deno.errors.Interrupted(
        "Cannot serve TLS client as the server shut down during its handshake",
      ),
    );
    try {
      this.#listener.close();
    } catch { /* closed already */ }
    for (const relay of this.#relays) relay.close();
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const waiter of this.#waiting.values()) {
      waiter.promise.then((tls) => tls.close(), () => {});
    }
    this.#waiting.clear();
    this.#relays.clear();
  }
}

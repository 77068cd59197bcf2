/**
 * The types of a connection's options and state, shared by
 * `connection.ts` and the pull reader; public through `connection.ts`.
 *
 * ```ts
 * import type { ConnectionOptions } from "@x/sock/connection";
 *
 * const options: ConnectionOptions = { keepAlive: true };
 * ```
 *
 * @module
 */

/**
 * Where a connection stands: both directions open, the peer has finished
 * sending (`"read-closed"`), we have sent our FIN (`"write-closed"`), or the
 * connection is closed.
 *
 * @example Watch a connection half-close, then close
 * ```ts
 * import { Connection, type ConnectionState } from "@x/sock/connection";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * await using server = new Connection(await listener.accept());
 * await using peer = new Connection(await client);
 * const states: ConnectionState[] = [server.state];
 * await server.closeWrite();
 * states.push(server.state);
 * await peer.closeWrite();
 * await new Response(server.readable).arrayBuffer();
 * states.push(server.state);
 * assert.deepEqual(states, ["open", "write-closed", "closed"]);
 * ```
 */
export type ConnectionState =
  | "open"
  | "read-closed"
  | "write-closed"
  | "closed";

/**
 * Options for {@linkcode Connection}.
 *
 * @example Keep-alive on, Nagle left on, small reads
 * ```ts
 * import { Connection, type ConnectionOptions } from "@x/sock/connection";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const options: ConnectionOptions = {
 *   keepAlive: true,
 *   noDelay: false,
 *   maxReadSize: 16384,
 *   writeBufferSize: 8192,
 * };
 * using connection = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 *   options,
 * );
 * (await listener.accept()).close();
 * ```
 */
export interface ConnectionOptions {
  /**
   * A number for logs; `serve()` numbers its connections from 1.
   *
   * @default {a process-wide sequence number from 1}
   */
  id?: number;
  /**
   * Sets `TCP_NODELAY`: small writes leave at once instead of waiting for
   * the peer's ACK (Nagle's algorithm). Ignored for connections that are not
   * TCP, and for `Deno.TlsConn`, which (as of Deno 2.9) cannot set it: set
   * it on the TCP connection before `Deno.startTls()`, as `connect()` does.
   *
   * @default {true}
   */
  noDelay?: boolean;
  /**
   * Sets `SO_KEEPALIVE`, so that a peer that vanished is noticed.
   * Ignored for connections that are not TCP.
   *
   * @default {false}
   */
  keepAlive?: boolean;
  /**
   * Aborting it closes the connection at once; the streams error with the
   * signal's reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * The largest read, in bytes. Reads start at 1 KiB and grow fourfold
   * while they fill their buffer, up to this. `framed()` lowers it to its
   * own `maxReadSize` (64 KiB by default) when it takes the read side.
   *
   * @default {1048576}
   */
  maxReadSize?: number;
  /**
   * The 0.1 name of {@linkcode ConnectionOptions.maxReadSize}.
   *
   * @deprecated Use `maxReadSize`.
   */
  readSize?: number;
  /**
   * The bound of the write buffer, in bytes: writes smaller than a quarter
   * of it are copied into it and resolve at once, so that writes issued back
   * to back leave in one system call; a write that does not fit waits until
   * the buffer has been sent. Larger writes are sent directly, without a
   * copy, and resolve once sent.
   *
   * @default {65536}
   */
  writeBufferSize?: number;
}

/**
 * Options for {@linkcode ConnectionReader.prototype.readUntil}.
 *
 * @example Refuse a line longer than 8 bytes
 * ```ts
 * import { Connection } from "@x/sock/connection";
 * import { FrameTooLargeError } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = Deno.connect({
 *   hostname: "127.0.0.1",
 *   port: listener.addr.port,
 * });
 * await using server = new Connection(await listener.accept());
 * await using peer = new Connection(await client);
 * await peer.write(new TextEncoder().encode("far too long a line\n"));
 * const reader = server.reader();
 * await assert.rejects(
 *   reader.readUntil("\n", { maxLength: 8 }),
 *   FrameTooLargeError,
 * );
 * ```
 */
export interface ReadUntilOptions {
  /**
   * The most bytes to read before the delimiter; beyond it the read fails
   * with a `FrameTooLargeError` and the bytes read so far stay unread.
   *
   * @default {65536}
   */
  maxLength?: number;
  /**
   * The 0.2 name of {@linkcode ReadUntilOptions.maxLength}; `maxLength`
   * wins when both are given.
   *
   * @deprecated Use maxLength; goes in 0.4.
   */
  limit?: number;
}

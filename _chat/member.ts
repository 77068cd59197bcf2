/**
 * One client of a chat room: its name, its line decoder and its queue of
 * what waits to be sent to it, with the helpers that fill and drain it.
 * Private to `_chat/room.ts`.
 *
 * ```ts ignore
 * const member = new Member("127.0.0.1:5555", connection, 65536);
 * member.queue.push(new TextEncoder().encode("hi\n"));
 * const chunk = take(member.queue); // one write's worth
 * ```
 *
 * @module
 */

import { concat } from "../_connection/bytes.ts";
import { LineDecoder } from "../framing.ts";
import { formatHostPort } from "../_defaults.ts";
import type { ChatConnection } from "./options.ts";

/** The most bytes handed to a connection in one write. */
const WRITE_SIZE = 65536;

const encoder = new TextEncoder();

/** One client in the room. */
export class Member {
  /** What marks its lines and the notices about it. */
  readonly name: string;
  /** `[name] ` as bytes, put before each of its lines. */
  readonly prefix: Uint8Array;
  /** Its connection. */
  readonly connection: ChatConnection;
  /**
   * Splits what it sends into lines; it holds the start of a line not yet
   * ended by "\n".
   */
  readonly decoder: LineDecoder;
  /** The decoder holds the start of a line: the last byte was not "\n". */
  midLine = false;
  /** Messages waiting to be written, and their bytes with the one in flight. */
  queue: Uint8Array[] = [];
  /** The bytes of `queue`, with the write in flight. */
  queued = 0;
  /** No more messages: it left or was dropped. */
  leaving = false;
  /** Dropped for not reading: nothing more is sent to it. */
  dropped = false;
  /** The server is shutting down: leave without a word to the others. */
  shuttingDown = false;
  /** Wakes its sender, waiting for a message or for its leave. */
  wake?: () => void;
  /** Senders waiting for this client's queue to drain below half. */
  drainWaiters: (() => void)[] = [];
  /** Drops this client when its queue has not drained in time. */
  drainTimer?: ReturnType<typeof setTimeout>;

  /** A client of `name` over `connection`, lines up to `maxLineLength`. */
  constructor(
    name: string,
    connection: ChatConnection,
    maxLineLength: number,
  ) {
    this.name = name;
    this.prefix = encoder.encode(`[${name}] `);
    this.connection = connection;
    this.decoder = new LineDecoder({ maxLineLength });
  }
}

/** Removes up to {@linkcode WRITE_SIZE} bytes of messages from `queue`. */
export function take(queue: Uint8Array[]): Uint8Array {
  let count = 1;
  let size = queue[0]!.length;
  while (
    count < queue.length && size + queue[count]!.length <= WRITE_SIZE
  ) {
    size += queue[count]!.length;
    count++;
  }
  return count === 1 ? queue.shift()! : concat(queue.splice(0, count), size);
}

/** A client's name by default: its address, or its id for Unix. */
export function defaultName(connection: ChatConnection): string {
  const addr = connection.remoteAddr;
  if ("hostname" in addr) return formatHostPort(addr.hostname, addr.port);
  return `unix#${connection.id}`;
}

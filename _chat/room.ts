/**
 * The chat room: {@linkcode ChatRoom} relays every line a client sends to
 * every other client, with bounded per-client queues. Re-exported by
 * `chat.ts`.
 *
 * ```ts
 * import { ChatRoom } from "@x/sock/chat";
 * import assert from "node:assert/strict";
 *
 * assert.equal(new ChatRoom().size, 0);
 * ```
 *
 * @module
 */

import { FrameTooLargeError } from "../framing.ts";
import type { ServiceContext } from "../services.ts";
import { concat } from "../_connection/bytes.ts";
import { defaultName, Member, take } from "./member.ts";
import type { ChatConnection, ChatRoomOptions } from "./options.ts";

/** Where the room's own announcements start. */
const NOTICE = "* ";
/** The largest message built from one read: bounds a queue's overshoot. */
const MESSAGE_SIZE = 16384;
const LF = 0x0a;
const NEWLINE = new Uint8Array([LF]);

const encoder = new TextEncoder();

/** A line that went past {@linkcode ChatRoomOptions.maxLineLength}. */
class LineTooLongError extends RangeError {}

/**
 * A chat room: `join()` each connection (as a `serve()` handler) and every
 * line a client sends goes to every other client as `[name] text\n`.
 *
 * - On joining, a client gets `* you are <name>`; the others get
 *   `* <name> joined`.
 * - A "\r" before "\n" is dropped, so `\r\n` clients chat with `\n` ones;
 *   other bytes pass as they are, UTF-8 or not. A last line without "\n"
 *   is sent when the client half-closes.
 * - A client's FIN means it leaves: the others get `* <name> left`, what was
 *   queued for it is sent, then our FIN.
 * - Each client has a queue of what waits to be sent to it. While one is
 *   over half of {@linkcode ChatRoomOptions.maxQueuedBytes}, the room stops
 *   reading from the senders until it drains, so a flood goes at the pace
 *   of the slowest reader. A client that does not drain within
 *   {@linkcode ChatRoomOptions.drainTimeout} (it has stopped reading), or
 *   whose queue would pass `maxQueuedBytes`, is dropped: its connection is
 *   closed (the reason a `Deno.errors.TimedOut` or a `RangeError`) and the
 *   others get `* <name> dropped: not reading`.
 *
 * Memory is bounded by the number of clients times their queue bound.
 *
 * @example A notice from the room itself
 * ```ts
 * import { ChatRoom } from "@x/sock/chat";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const room = new ChatRoom({ maxQueuedBytes: 65536 });
 * await using server = serve({ port: 0 }, (c) => room.join(c));
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const buffer = new Uint8Array(100);
 * let text = "";
 * while (!text.endsWith("\n")) { // "* you are 127.0.0.1:...\n"
 *   text += new TextDecoder().decode(buffer.subarray(0, await conn.read(buffer) ?? 0));
 * }
 * assert.equal(room.size, 1);
 * room.announce("closing at noon");
 * text = "";
 * while (!text.endsWith("\n")) {
 *   text += new TextDecoder().decode(buffer.subarray(0, await conn.read(buffer) ?? 0));
 * }
 * assert.equal(text, "* closing at noon\n");
 * ```
 */
export class ChatRoom {
  /** The bound of each client's queue, in bytes. */
  readonly maxQueuedBytes: number;
  /** The longest line a client may send, in bytes. */
  readonly maxLineLength: number;
  /** Milliseconds a client gets to drain its queue while senders wait. */
  readonly drainTimeout: number;

  #name: (connection: ChatConnection) => string;
  #members = new Set<Member>();
  #queuedBytes = 0;
  #peakQueuedBytes = 0;
  #dropped = 0;
  /** Announcements made while a message is being delivered. */
  #delivering = false;
  #pending: [Member | undefined, Uint8Array][] = [];

  /**
   * Creates an empty room.
   *
   * @param options Queue and line bounds, names.
   */
  constructor(options: ChatRoomOptions = {}) {
    const {
      maxQueuedBytes = 262144,
      maxLineLength = 65536,
      drainTimeout = 2000,
    } = options;
    if (
      typeof drainTimeout !== "number" || !(drainTimeout >= 0) ||
      drainTimeout > 2147483647
    ) {
      throw new RangeError(
        `Cannot create chat room as drainTimeout must be a number of milliseconds from 0 to 2147483647: current value is ${drainTimeout}`,
      );
    }
    this.drainTimeout = drainTimeout;
    for (
      const [name, value] of [
        ["maxQueuedBytes", maxQueuedBytes],
        ["maxLineLength", maxLineLength],
      ] as const
    ) {
      if (!Number.isSafeInteger(value) || value < 1) {
        throw new RangeError(
          `Cannot create chat room as ${name} must be an integer >= 1: current value is ${value}`,
        );
      }
    }
    this.maxQueuedBytes = maxQueuedBytes;
    this.maxLineLength = maxLineLength;
    this.#name = options.name ?? defaultName;
  }

  /** How many clients are in the room. */
  get size(): number {
    return this.#members.size;
  }

  /** Bytes waiting to be sent to all clients together, now. */
  get queuedBytes(): number {
    return this.#queuedBytes;
  }

  /**
   * The most bytes that have ever waited for one client at once: at most
   * {@linkcode ChatRoomOptions.maxQueuedBytes} plus one message.
   */
  get peakQueuedBytes(): number {
    return this.#peakQueuedBytes;
  }

  /** How many clients were dropped for not reading. */
  get dropped(): number {
    return this.#dropped;
  }

  /**
   * Sends a line from the room itself (`* text`) to every client, such as
   * a notice that the server is shutting down.
   *
   * @param text The notice, without "\n".
   *
   * @example A notice to a client in memory
   * ```ts
   * import { ChatRoom } from "@x/sock/chat";
   * import assert from "node:assert/strict";
   *
   * const room = new ChatRoom();
   * const input = new TransformStream<Uint8Array, Uint8Array>(); // the client's
   * let received = "";
   * const joined = room.join({
   *   id: 1,
   *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5555 },
   *   readable: input.readable,
   *   writable: new WritableStream({
   *     write: (chunk) => void (received += new TextDecoder().decode(chunk)),
   *   }),
   *   signal: new AbortController().signal,
   *   close() {},
   * });
   * room.announce("closing at noon");
   * await input.writable.close(); // the client's FIN: it leaves
   * await joined;
   * assert.equal(received, "* you are 127.0.0.1:5555\n* closing at noon\n");
   * ```
   */
  announce(text: string): void {
    this.#broadcast(undefined, encoder.encode(`${NOTICE}${text}\n`));
  }

  /**
   * Serves one client in the room until it leaves: the `serve()` handler.
   *
   * On shutdown (`context.shutdown` aborts) the client gets
   * `* server shutting down`, what was queued for it, and our FIN; the others
   * are not told, as they are leaving too.
   *
   * @param connection The client's connection.
   * @param context The server's context; only its `shutdown` signal is used.
   * @returns A promise that fulfils once the client has left (its FIN), was
   * dropped or its connection failed, and everything queued for it was
   * sent or given up; it does not reject for network errors, which the
   * connection itself reports.
   *
   * @example A client told of a server shutdown
   * ```ts
   * import { ChatRoom } from "@x/sock/chat";
   * import { serve } from "@x/sock/server";
   * import { TextLineDecoderStream } from "@x/sock/framing";
   * import assert from "node:assert/strict";
   *
   * const room = new ChatRoom();
   * const server = serve(
   *   { port: 0 },
   *   (connection, context) => room.join(connection, context),
   * );
   * const { port } = server.addr as Deno.NetAddr;
   * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
   * const lines = conn.readable
   *   .pipeThrough(new TextLineDecoderStream())
   *   .values();
   * assert.match((await lines.next()).value!, /^\* you are /); // in the room
   * const stopping = server.shutdown();
   * assert.equal((await lines.next()).value, "* server shutting down");
   * assert.equal((await lines.next()).done, true); // our FIN
   * await stopping;
   * assert.equal(room.size, 0);
   * ```
   */
  async join(
    connection: ChatConnection,
    context: ServiceContext = {},
  ): Promise<void> {
    const name = this.#name(connection);
    const member = new Member(
      String(name),
      connection,
      this.maxLineLength,
    );
    const writer = connection.writable.getWriter();
    const reader = connection.readable.getReader();
    this.#enqueue(member, encoder.encode(`${NOTICE}you are ${member.name}\n`));
    this.#broadcast(member, encoder.encode(`${NOTICE}${member.name} joined\n`));
    this.#members.add(member);
    const sending = this.#send(member, writer);
    const { shutdown } = context;
    const onShutdown = () => {
      member.shuttingDown = true;
      reader.cancel().catch(() => {}); // ends the pending read
    };
    if (shutdown?.aborted) onShutdown();
    else shutdown?.addEventListener("abort", onShutdown, { once: true });

    let farewell = "left";
    // The messages made of one read, sent one by one at the readers' pace.
    const messages: Uint8Array[] = [];
    try {
      while (!member.leaving) {
        const { done, value } = await reader.read();
        if (done) {
          this.#endLine(member, messages);
          await this.#deliver(member, messages);
          break;
        }
        this.#relay(member, value, messages);
        await this.#deliver(member, messages);
      }
    } catch (error) {
      if (error instanceof LineTooLongError) {
        await this.#deliver(member, messages); // the lines before it
        this.#enqueue(member, encoder.encode(`${NOTICE}${error.message}\n`));
        farewell = "left: line too long";
      }
      // Otherwise the connection failed or was dropped: it reports that.
    } finally {
      shutdown?.removeEventListener("abort", onShutdown);
      reader.releaseLock();
    }
    if (member.shuttingDown && !member.leaving) {
      this.#enqueue(member, encoder.encode(`${NOTICE}server shutting down\n`));
      this.#release(member);
    } else {
      this.#leave(member, farewell);
    }
    await sending;
  }

  /**
   * Turns the complete lines of `chunk` into messages for the others, added
   * to `messages`; the member's decoder keeps the rest of a line for later
   * (a copy: the chunk may be a view of a buffer that is reused). The
   * decoder drops a "\r" before "\n" and refuses a line over the limit,
   * holding at most the limit and one byte (the "\r" of a "\r\n").
   */
  #relay(member: Member, chunk: Uint8Array, messages: Uint8Array[]): void {
    const pieces: Uint8Array[] = [];
    let size = 0;
    const add = (line: Uint8Array) => {
      const needed = member.prefix.length + line.length + 1;
      if (size > 0 && size + needed > MESSAGE_SIZE) flush();
      pieces.push(member.prefix, line, NEWLINE);
      size += needed;
    };
    const flush = () => {
      messages.push(concat(pieces, size));
      pieces.length = 0;
      size = 0;
    };
    try {
      member.decoder.transform(chunk, add);
    } catch (error) {
      if (error instanceof FrameTooLargeError) {
        throw tooLong(this.maxLineLength, error.length);
      }
      throw error;
    } finally {
      // Lines before a bad one still go out.
      if (size > 0) flush();
    }
    if (chunk.length > 0) member.midLine = chunk[chunk.length - 1] !== LF;
  }

  /** Sends the last line of a client that half-closed without "\n". */
  #endLine(member: Member, messages: Uint8Array[]): void {
    // The "\n" it did not send ends the line the decoder holds.
    if (member.midLine) this.#relay(member, NEWLINE, messages);
  }

  /** Sends `messages` from `member` to the others, at the readers' pace. */
  async #deliver(member: Member, messages: Uint8Array[]): Promise<void> {
    for (let i = 0; i < messages.length; i++) {
      this.#broadcast(member, messages[i]!);
      await this.#pace(member);
    }
    messages.length = 0;
  }

  /** Queues `message` for every client but `from`. */
  #broadcast(from: Member | undefined, message: Uint8Array): void {
    if (this.#delivering) {
      // An announcement made while delivering (a drop): after this message.
      this.#pending.push([from, message]);
      return;
    }
    this.#delivering = true;
    try {
      for (const member of this.#members) {
        if (member !== from) this.#enqueue(member, message, true);
      }
      while (this.#pending.length > 0) {
        const [sender, notice] = this.#pending.shift()!;
        for (const member of this.#members) {
          if (member !== sender) this.#enqueue(member, notice, true);
        }
      }
    } finally {
      this.#delivering = false;
    }
  }

  /** Queues `message` for `member`, or drops it if its queue is full. */
  #enqueue(member: Member, message: Uint8Array, bounded = false): void {
    if (member.dropped) return;
    const after = member.queued + message.length;
    if (bounded && member.queued > 0 && after > this.maxQueuedBytes) {
      this.#drop(
        member,
        new RangeError(
          `Cannot queue chat message as a client's queue must stay <= ${this.maxQueuedBytes} bytes: current size would be ${after} bytes (the client is not reading)`,
        ),
      );
      return;
    }
    member.queue.push(message);
    member.queued = after;
    this.#queuedBytes += message.length;
    if (after > this.#peakQueuedBytes) this.#peakQueuedBytes = after;
    member.wake?.();
  }

  /** Drops `member` for not reading, with `reason` for its connection. */
  #drop(member: Member, reason: Error): void {
    member.dropped = true;
    this.#dropped++;
    this.#release(member);
    member.connection.close(reason);
    this.#broadcast(
      member,
      encoder.encode(`${NOTICE}${member.name} dropped: not reading\n`),
    );
  }

  #leave(member: Member, farewell: string): void {
    if (member.leaving) return;
    this.#release(member);
    this.#broadcast(
      member,
      encoder.encode(`${NOTICE}${member.name} ${farewell}\n`),
    );
  }

  /** Takes `member` out of the room; a dropped one's queue goes too. */
  #release(member: Member): void {
    member.leaving = true;
    this.#members.delete(member);
    if (member.dropped) {
      this.#queuedBytes -= member.queued;
      member.queue = [];
      member.queued = 0;
    }
    member.wake?.();
    this.#drained(member);
  }

  /**
   * Waits, after a sender's lines went out, for every client whose queue is
   * over half full to drain; one that does not within `drainTimeout` is
   * dropped. Reading from the sender pauses meanwhile, which slows it down
   * through TCP.
   */
  async #pace(sender: Member): Promise<void> {
    if (this.drainTimeout === 0) return;
    const half = this.maxQueuedBytes / 2;
    for (const member of [...this.#members]) {
      while (member !== sender && !member.leaving && member.queued > half) {
        member.drainTimer ??= setTimeout(() => {
          member.drainTimer = undefined;
          if (member.leaving) return;
          this.#drop(
            member,
            new Deno.errors.TimedOut(
              `Cannot send to chat client as its queue must drain below ${half} bytes within ${this.drainTimeout} ms: current size is ${member.queued} bytes (the client is not reading)`,
            ),
          );
        }, this.drainTimeout);
        await new Promise<void>((resolve) => member.drainWaiters.push(resolve));
      }
    }
  }

  /** Lets the senders waiting for `member` go on. */
  #drained(member: Member): void {
    clearTimeout(member.drainTimer);
    member.drainTimer = undefined;
    const waiters = member.drainWaiters;
    member.drainWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Writes `member`'s queue until it has left and the queue is empty. */
  async #send(
    member: Member,
    writer: WritableStreamDefaultWriter<Uint8Array>,
  ): Promise<void> {
    try {
      while (!member.dropped) {
        if (member.queue.length === 0) {
          if (member.leaving) {
            await writer.close(); // our FIN
            return;
          }
          await new Promise<void>((resolve) => member.wake = resolve);
          member.wake = undefined;
          continue;
        }
        const chunk = take(member.queue);
        await writer.write(chunk);
        if (!member.dropped) {
          member.queued -= chunk.length;
          this.#queuedBytes -= chunk.length;
          if (member.queued <= this.maxQueuedBytes / 2) this.#drained(member);
        }
      }
    } catch (error) {
      // The client has gone: its reads end too, and it leaves.
      if (!member.dropped) {
        this.#queuedBytes -= member.queued;
        member.queue = [];
        member.queued = 0;
        member.dropped = true; // nothing more can be sent to it
        member.connection.close(error);
      }
    } finally {
      writer.releaseLock();
    }
  }
}

function tooLong(limit: number, length: number): LineTooLongError {
  return new LineTooLongError(
    `Cannot relay line as its length must be <= ${limit} bytes: current length is at least ${length} bytes`,
  );
}

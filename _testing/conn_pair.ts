/**
 * {@linkcode connPair}: two connected in-memory connections with TCP
 * semantics, and its options.
 *
 * @module
 */

import { seededRandom } from "./seeded_random.ts";
import { Pipe } from "./pipe.ts";
import { type MemoryConn, PairConn, type ReadLimit } from "./memory_conn.ts";

/**
 * Options for {@linkcode connPair}.
 *
 * @example A small buffer and one byte per read
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import assert from "node:assert/strict";
 *
 * const [a, b] = connPair({ bufferSize: 2, maxChunkSize: 1 });
 * assert.equal(await a.write(new Uint8Array([1, 2, 3])), 2); // what fits
 * const buffer = new Uint8Array(8);
 * assert.equal(await b.read(buffer), 1); // one byte, however large the buffer
 * a.close();
 * b.close();
 * ```
 */
export interface ConnPairOptions {
  /**
   * How many bytes each end can hold unread, like a socket's receive
   * buffer. A write that finds the peer's buffer full waits until the peer
   * reads; a write larger than the free room writes what fits and returns
   * that count (a partial write, as `Deno.Conn.write` may).
   *
   * @default {65536}
   */
  bufferSize?: number;
  /**
   * The most bytes one `read()` returns, whatever the buffer it is given:
   * set it small (down to 1) to make the reader see the stream cut into
   * small pieces, as a slow network would.
   *
   * @default {Infinity}
   */
  maxChunkSize?: number;
  /**
   * When set, each `read()` returns a random number of bytes, from 1 to
   * what is available (bounded by the buffer given and
   * {@linkcode ConnPairOptions.maxChunkSize}), drawn from a generator seeded
   * with this number: the same seed and the same calls give the same cuts.
   *
   * @default {undefined}
   */
  seed?: number;
  /**
   * The address both ends report in `localAddr` and `remoteAddr`; each end
   * gets its own port.
   *
   * @default {"127.0.0.1"}
   */
  hostname?: string;
}

/** The ports handed out to pairs, from the start of the ephemeral range. */
let nextPort = 49152;

function takePort(): number {
  const port = nextPort;
  nextPort = nextPort >= 65535 ? 49152 : nextPort + 1;
  return port;
}

/**
 * Returns two connected in-memory connections with TCP semantics: what one
 * writes, the other reads, in order, in one byte stream per direction.
 *
 * Nothing touches the network and no permission is needed. Everything is
 * promises: a read nobody will ever answer leaves the test pending (Deno
 * then reports that the event loop ended early) rather than hanging.
 *
 * @param options Buffer size, read chunking, addresses.
 * @returns The two ends, conventionally `[client, server]`; each end's
 * `remoteAddr` is the other's `localAddr`.
 * @throws {RangeError} An option is out of range.
 *
 * @example Run a `Connection` and a framing codec over a pair
 * ```ts
 * import { connPair } from "@x/sock/testing";
 * import { framed, lines } from "@x/sock/framing";
 * import assert from "node:assert/strict";
 *
 * // One byte per read: the line decoder must put the lines back together.
 * const [client, server] = connPair({ maxChunkSize: 1 });
 * const served = (async () => {
 *   const { readable, writable } = framed(server, lines());
 *   const writer = writable.getWriter();
 *   for await (const line of readable) await writer.write(`${line.length}`);
 *   await writer.close(); // answers after the client's FIN still arrive
 * })();
 * const { readable, writable } = framed(client, lines({ text: true }));
 * await ReadableStream.from(["hello", "hi"]).pipeTo(writable);
 * const answers = await Array.fromAsync(readable);
 * await served;
 * assert.deepEqual(answers, ["5", "2"]);
 * ```
 */
export function connPair(
  options: ConnPairOptions = {},
): [MemoryConn, MemoryConn] {
  const {
    bufferSize = 65536,
    maxChunkSize = Infinity,
    seed,
    hostname = "127.0.0.1",
  } = options;
  if (!Number.isInteger(bufferSize) || bufferSize < 1) {
    throw new RangeError(
      `Cannot create a connection pair as bufferSize must be a positive integer: current value is ${bufferSize}`,
    );
  }
  if (
    maxChunkSize !== Infinity &&
    (!Number.isInteger(maxChunkSize) || maxChunkSize < 1)
  ) {
    throw new RangeError(
      `Cannot create a connection pair as maxChunkSize must be a positive integer or Infinity: current value is ${maxChunkSize}`,
    );
  }
  if (seed !== undefined && !Number.isInteger(seed)) {
    throw new RangeError(
      `Cannot create a connection pair as seed must be an integer: current value is ${seed}`,
    );
  }
  if (typeof hostname !== "string" || hostname === "") {
    throw new TypeError(
      `Cannot create a connection pair as hostname must be a non-empty string: current value is ${
        JSON.stringify(hostname)
      }`,
    );
  }
  const addrA: Deno.NetAddr = { transport: "tcp", hostname, port: takePort() };
  const addrB: Deno.NetAddr = { transport: "tcp", hostname, port: takePort() };
  const aToB = new Pipe(bufferSize);
  const bToA = new Pipe(bufferSize);
  const limits = (side: number): ReadLimit => ({
    maxChunkSize,
    random: seed === undefined ? undefined : seededRandom(seed * 2 + side),
  });
  const a = new PairConn(bToA, aToB, addrA, addrB, limits(0));
  const b = new PairConn(aToB, bToA, addrB, addrA, limits(1));
  return [a, b];
}

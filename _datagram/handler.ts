/**
 * What a datagram handler returns, and how {@linkcode serveDatagrams} turns
 * it into one answer datagram: bytes as they are, a `TransformStream` run
 * over the datagram (a `SyncTransformStream` by calling its transformer
 * directly), its output joined.
 *
 * @module
 */

import { concat } from "../_connection/bytes.ts";
import { describeType } from "../_defaults.ts";
import { SyncTransformStream } from "../sync_transform.ts";

/**
 * What a {@linkcode DatagramHandler} gives back for one datagram: the
 * answer's bytes; a `TransformStream` (such as `UpperCaseStream`) that the
 * datagram is put through, its whole output being the answer; or nothing,
 * for no answer.
 *
 * @example Bytes, a stream, or nothing
 * ```ts
 * import {
 *   type DatagramAnswer,
 *   listenDatagram,
 *   serveDatagrams,
 * } from "@x/sock/datagram";
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * await using server = await serveDatagrams({ port: 0 }, (data): DatagramAnswer => {
 *   if (data.length === 0) return undefined; // no answer
 *   if (data[0] === 0x21) return new Uint8Array([0x3f]); // "!" -> "?"
 *   return new UpperCaseStream();
 * });
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * const answers = client.readable.getReader();
 * const ask = async (text: string) => {
 *   await client.send(new TextEncoder().encode(text));
 *   const { value } = await answers.read();
 *   return new TextDecoder().decode(value!.data);
 * };
 * await client.send(new Uint8Array(0)); // gets no answer
 * assert.equal(await ask("!"), "?");
 * assert.equal(await ask("hi"), "HI");
 * answers.releaseLock();
 * ```
 */
export type DatagramAnswer =
  | Uint8Array
  | TransformStream<Uint8Array, Uint8Array>
  | undefined
  | void;

/**
 * Serves one datagram: given its bytes and its sender, returns the answer
 * (or a promise of it), which {@linkcode serveDatagrams} sends back to the
 * sender. Throwing (or rejecting) sends nothing and reports the error to
 * {@linkcode ServeDatagramsOptions.onError}.
 *
 * A returned `TransformStream` gets the datagram as its only chunk and is
 * then closed; what it emits, `flush()` included, is joined into one answer
 * datagram (none when it emits nothing). A `SyncTransformStream` whose
 * streams are unlocked is run by calling its transformer directly, without
 * a stream. So `() => new UpperCaseStream()`, the `serve()` handler of the
 * TCP upper-case server, is also a datagram handler.
 *
 * @example A handler that answers with a sequence number
 * ```ts
 * import {
 *   type DatagramHandler,
 *   listenDatagram,
 *   serveDatagrams,
 * } from "@x/sock/datagram";
 * import assert from "node:assert/strict";
 *
 * let count = 0;
 * const numbered: DatagramHandler = (data, remoteAddr) =>
 *   new TextEncoder().encode(
 *     `#${++count}: ${data.length} bytes from ${remoteAddr.hostname}`,
 *   );
 * await using server = await serveDatagrams({ port: 0 }, numbered);
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * const answers = client.readable.getReader();
 * const texts: string[] = [];
 * for (const size of [3, 5]) {
 *   await client.send(new Uint8Array(size));
 *   const { value } = await answers.read();
 *   texts.push(new TextDecoder().decode(value!.data));
 * }
 * answers.releaseLock();
 * assert.deepEqual(texts, [
 *   "#1: 3 bytes from 127.0.0.1",
 *   "#2: 5 bytes from 127.0.0.1",
 * ]);
 * ```
 */
export type DatagramHandler = (
  data: Uint8Array,
  remoteAddr: Deno.NetAddr,
) => DatagramAnswer | Promise<DatagramAnswer>;

/** Turns a handler's answer for `data` into bytes: see {@linkcode DatagramHandler}. */
export async function answerOf(
  answer: DatagramAnswer,
  data: Uint8Array,
): Promise<Uint8Array | undefined> {
  if (answer === undefined) return undefined;
  if (answer instanceof Uint8Array) return answer;
  if (!(answer instanceof TransformStream)) {
    throw new TypeError(
      `Cannot answer datagram as the handler must return a Uint8Array, a TransformStream or undefined: current type is ${
        describeType(answer)
      }`,
    );
  }
  const chunks: Uint8Array[] = [];
  if (
    answer instanceof SyncTransformStream && !answer.readable.locked &&
    !answer.writable.locked
  ) {
    // The documented fast path: the transformer, called directly. Emitted
    // chunks may be views of `data`, which is this datagram's own.
    const transformer = answer.transformer;
    const emit = (chunk: Uint8Array) => chunks.push(chunk);
    transformer.transform(data, emit);
    transformer.flush?.(emit);
  } else {
    const writing = (async () => {
      const writer = answer.writable.getWriter();
      await writer.write(data);
      await writer.close();
    })();
    // A failing service errors both sides: report the readable's error,
    // and do not leave the writer's rejection unhandled.
    writing.catch(() => {});
    for await (const chunk of answer.readable) chunks.push(chunk);
    await writing;
  }
  // One chunk is the answer as it is; several are joined.
  return chunks.length <= 1 ? chunks[0] : concat(chunks);
}

/**
 * How the UDP client cuts its input into datagrams: a line (or a read) at a
 * time, each at most the largest datagram, with `--crlf` applied.
 *
 * ```ts
 * import { sendInput } from "./udp_input.ts";
 * import assert from "node:assert/strict";
 *
 * const sent: string[] = [];
 * const input = ReadableStream.from([new TextEncoder().encode("a\nbc\nlast")]);
 * await sendInput(input.getReader(), async (data) => {
 *   sent.push(new TextDecoder().decode(data));
 * }, { max: 2, lines: true, crlf: false, flushEachRead: false });
 * assert.deepEqual(sent, ["a\n", "bc", "\n", "la", "st"]);
 * ```
 *
 * @module
 */

/** Sends the input a line (or a read) at a time, each at most `max` bytes. */
export async function sendInput(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  send: (data: Uint8Array) => Promise<void>,
  options: {
    max: number;
    lines: boolean;
    crlf: boolean;
    flushEachRead: boolean;
  },
): Promise<void> {
  const { max, lines, crlf, flushEachRead } = options;
  const sendSplit = async (data: Uint8Array) => {
    for (let i = 0; i < data.length; i += max) {
      await send(data.subarray(i, Math.min(i + max, data.length)));
    }
  };
  let pending: Uint8Array = new Uint8Array(0);
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    if (!lines) {
      await sendSplit(crlf ? toCrlf(value) : value);
      continue;
    }
    let chunk: Uint8Array = value;
    if (pending.length > 0) {
      chunk = new Uint8Array(pending.length + value.length);
      chunk.set(pending);
      chunk.set(value, pending.length);
    }
    let start = 0;
    for (let nl; (nl = chunk.indexOf(0x0a, start)) !== -1; start = nl + 1) {
      await sendSplit(line(chunk.subarray(start, nl + 1), crlf));
    }
    pending = chunk.slice(start);
    // A line longer than a datagram goes as it fills: no unbounded buffer.
    if (pending.length >= max) {
      const whole = pending.length - (pending.length % max);
      await sendSplit(pending.subarray(0, whole));
      pending = pending.slice(whole);
    }
    if (flushEachRead && pending.length > 0) {
      await sendSplit(pending);
      pending = new Uint8Array(0);
    }
  }
  if (pending.length > 0) await sendSplit(pending);
}

/** Each "\n" not after a "\r" as "\r\n" (a "\r" ending the previous read is not seen). */
function toCrlf(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0a && bytes[i - 1] !== 0x0d) out.push(0x0d);
    out.push(bytes[i]!);
  }
  return out.length === bytes.length ? bytes : new Uint8Array(out);
}

function line(bytes: Uint8Array, crlf: boolean): Uint8Array {
  if (!crlf || (bytes.length > 1 && bytes[bytes.length - 2] === 0x0d)) {
    return bytes;
  }
  const out = new Uint8Array(bytes.length + 1);
  out.set(bytes.subarray(0, bytes.length - 1));
  out[bytes.length - 1] = 0x0d;
  out[bytes.length] = 0x0a;
  return out;
}

/**
 * Byte helpers the codecs share: the newline bytes, the first size of a
 * buffer that spans chunks, turning a message into bytes, finding a byte
 * sequence, and the encoders' length check.
 *
 * @module
 */

import { FrameTooLargeError } from "../_errors.ts";
import { copyBytes } from "../_connection/bytes.ts";

export { view } from "../_connection/bytes.ts";

export const LF = 0x0a;
export const CR = 0x0d;
export const textEncoder = new TextEncoder();
export const NEWLINE = new Uint8Array([LF]);
export const CRLF = new Uint8Array([CR, LF]);
/** First buffer for a message or frame that spans chunks; it then doubles. */
export const INITIAL_BUFFER = 1024;

/** A message as bytes: a string UTF-8 encoded, a `Uint8Array` as it is. */
export function toBytes(
  message: Uint8Array | string,
  what: string,
): Uint8Array {
  if (typeof message === "string") return textEncoder.encode(message);
  if (message instanceof Uint8Array) return message;
  throw new TypeError(
    `Cannot encode ${what} as it must be a Uint8Array or a string: current type is ${
      message === null ? "null" : typeof message
    }`,
  );
}

/** The index of `needle` in `haystack` at or after `from`, or -1. */
export function indexOfBytes(
  haystack: Uint8Array,
  needle: Uint8Array,
  from: number,
): number {
  const first = needle[0]!;
  const last = haystack.length - needle.length;
  let i = haystack.indexOf(first, from);
  while (i !== -1 && i <= last) {
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
    i = haystack.indexOf(first, i + 1);
  }
  return -1;
}

/** Refuses a message to encode that is longer than `limit`. */
export function checkEncodeLimit(
  what: string,
  bytes: Uint8Array,
  limit: number,
): void {
  checkEncodeLength(what, bytes.length, limit);
}

/** Refuses a message to encode whose length is over `limit`. */
export function checkEncodeLength(
  what: string,
  length: number,
  limit: number,
): void {
  if (length > limit) {
    throw new FrameTooLargeError(
      `Cannot encode ${what} as its length must be <= ${limit} bytes: current length is ${length} bytes`,
      length,
      limit,
    );
  }
}

/**
 * Writes `message` (a string UTF-8 encoded, or bytes) into `buffer` at
 * `offset`, leaving `reserve` bytes free after it: the new end, or -1 when
 * it does not fit (what was written past `offset` is then garbage). A short
 * ASCII string is written char by char, with no encoder call.
 */
export function writeMessage(
  message: Uint8Array | string,
  buffer: Uint8Array,
  offset: number,
  reserve: number,
  what: string,
): number {
  const room = buffer.length - reserve;
  if (typeof message === "string") {
    const length = message.length;
    if (offset + length > room) return -1;
    if (length <= 64) {
      let i = 0;
      for (; i < length; i++) {
        const code = message.charCodeAt(i);
        if (code >= 0x80) break;
        buffer[offset + i] = code;
      }
      if (i === length) return offset + length;
    }
    const { read, written } = textEncoder.encodeInto(
      message,
      buffer.subarray(offset, room),
    );
    return read === length ? offset + written : -1;
  }
  if (!(message instanceof Uint8Array)) toBytes(message, what); // throws
  if (offset + message.length > room) return -1;
  copyBytes(message, buffer, offset);
  return offset + message.length;
}

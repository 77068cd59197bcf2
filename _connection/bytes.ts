/**
 * Byte helpers shared by the connection, its pull reader and the layers
 * above: one place each for the copy that joins chunks, the copy of a
 * message into a buffer, and a view made for every message.
 *
 * ```ts ignore
 * concat([new Uint8Array([1]), new Uint8Array([2, 3])]); // Uint8Array [1, 2, 3]
 * ```
 *
 * @module
 */

/** `parts` joined into a new array of `length` bytes (their sum if omitted). */
export function concat(parts: Uint8Array[], length?: number): Uint8Array {
  length ??= parts.reduce((sum, part) => sum + part.length, 0);
  const out = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/**
 * The bytes of `bytes` from `start` to `end`, as a new view of the same
 * memory: what `subarray()` gives, at two thirds of its cost (it skips the
 * species lookup), which counts when a view is made for every message.
 */
export function view(
  bytes: Uint8Array,
  start: number,
  end: number,
): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
}

/**
 * Copies `bytes` into `buffer` at `at`, which has room for them: a few bytes
 * by hand, which is faster than a call to `set()`, more with `set()`.
 */
export function copyBytes(
  bytes: Uint8Array,
  buffer: Uint8Array,
  at: number,
): void {
  if (bytes.length <= 16) {
    for (let i = 0; i < bytes.length; i++) buffer[at + i] = bytes[i]!;
  } else buffer.set(bytes, at);
}

/**
 * Empties `array`. A few items go one `pop()` at a time, about a tenth of
 * the cost of `array.length = 0` (which V8 runs as a call into its runtime).
 */
export function clear(array: unknown[]): void {
  if (array.length > 64) array.length = 0;
  else while (array.length > 0) array.pop();
}

/**
 * Byte helpers shared by the connection, its pull reader and the layers
 * above: one place for the copy that joins chunks.
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

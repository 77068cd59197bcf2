// Byte helpers shared by the tests: one copy instead of one per file.

/** The bytes of `parts`, one after another. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Reads a raw connection to its end. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    chunks.push(buffer.slice(0, n));
  }
  return concat(chunks);
}

/** Reads from `conn` until `want` bytes have come, or its end. */
export async function readBytes(
  conn: Deno.Conn,
  want: number,
): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  const buffer = new Uint8Array(65536);
  while (got < want) {
    const n = await conn.read(buffer.subarray(0, want - got));
    if (n === null) break;
    chunks.push(buffer.slice(0, n));
    got += n;
  }
  return concat(chunks);
}

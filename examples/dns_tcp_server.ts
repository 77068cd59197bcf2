/**
 * A tiny DNS-over-TCP responder on the `"dns"` length-prefix preset: every
 * message is a 2-byte big-endian length and then the message (RFC 1035
 * section 4.2.2, RFC 7766 section 8), so several queries may share one
 * connection. It answers every `A` query, whatever the name, with
 * 127.0.0.1, and other types with no records; it builds each response by
 * hand from the query.
 *
 * ```sh
 * deno run -N examples/dns_tcp_server.ts 5353   # 0 picks a free port
 * dig +tcp @127.0.0.1 -p 5353 example.com A
 * ```
 *
 * @module
 */
import { framed, lengthPrefixed } from "@x/sock/framing";

const TYPE_A = 1;
const TYPE_ANY = 255;
const CLASS_IN = 1;
const FORMERR = 1;
const NOTIMP = 4;

/**
 * The response to one DNS query message (without its length prefix).
 *
 * @throws {SyntaxError} When the query is too short to hold a header, which
 * leaves nothing to answer.
 */
export function answer(query: Uint8Array): Uint8Array {
  if (query.length < 12) {
    throw new SyntaxError(
      `Cannot answer DNS query as it must be at least 12 bytes: current length is ${query.length} bytes`,
    );
  }
  const view = new DataView(query.buffer, query.byteOffset, query.length);
  const flags = view.getUint16(2);
  const opcode = (flags >> 11) & 0x0f;
  // Header: same id, QR set, same opcode, authoritative, same RD bit.
  const header = (rcode: number, questions: number, answers: number) => {
    const out = new Uint8Array(12);
    const h = new DataView(out.buffer);
    h.setUint16(0, view.getUint16(0));
    h.setUint16(2, 0x8000 | (opcode << 11) | 0x0400 | (flags & 0x0100) | rcode);
    h.setUint16(4, questions);
    h.setUint16(6, answers);
    return out;
  };
  if (flags & 0x8000 || opcode !== 0) return header(NOTIMP, 0, 0);
  if (view.getUint16(4) !== 1) return header(FORMERR, 0, 0);
  // The question: a name as length-prefixed labels ending in 0, then type
  // and class.
  let at = 12;
  while (at < query.length && query[at] !== 0) {
    if (query[at]! > 63) return header(FORMERR, 0, 0); // no compression here
    at += 1 + query[at]!;
  }
  const end = at + 5;
  if (end > query.length) return header(FORMERR, 0, 0);
  const type = view.getUint16(at + 1);
  const klass = view.getUint16(at + 3);
  const question = query.subarray(12, end);
  if ((type !== TYPE_A && type !== TYPE_ANY) || klass !== CLASS_IN) {
    return concat([header(0, 1, 0), question]);
  }
  const record = new Uint8Array([
    0xc0,
    12, // the name: a pointer to the question's, at offset 12
    0,
    TYPE_A,
    0,
    CLASS_IN,
    0,
    0,
    0,
    60, // TTL: 60 seconds
    0,
    4,
    127,
    0,
    0,
    1,
  ]);
  return concat([header(0, 1, 1), question, record]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Answers the queries of one connection, in order, until the peer's FIN. */
export async function serveDns(conn: Deno.Conn): Promise<void> {
  const { readable, writable } = framed(conn, lengthPrefixed("dns"));
  const writer = writable.getWriter();
  try {
    for await (const query of readable) await writer.write(answer(query));
    await writer.close();
  } catch (error) {
    // A bad frame or query: drop the connection, as RFC 7766 allows.
    await writer.abort(error).catch(() => {});
    throw error;
  }
}

if (import.meta.main) {
  const port = Number(Deno.args[0] ?? 5353);
  using listener = Deno.listen({ hostname: "127.0.0.1", port });
  console.log(`DNS over TCP on 127.0.0.1:${listener.addr.port}`);
  for await (const conn of listener) {
    serveDns(conn).catch((error) => console.error(`dns: ${error.message}`));
  }
}

/**
 * The PROXY protocol, versions 1 (text) and 2 (binary), on the receiving
 * side: the header a load balancer such as HAProxy sends first on each
 * connection to say who the real client is. Private to the package; the
 * server uses it through `serve({ proxyProtocol: true })`.
 *
 * ```ts
 * import { parseProxyHeader } from "./proxy.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new TextEncoder().encode(
 *   "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nhello",
 * );
 * const parsed = parseProxyHeader(bytes)!;
 * assert.equal(parsed.size, 45);
 * assert.deepEqual(parsed.header.source, {
 *   transport: "tcp",
 *   hostname: "192.0.2.1",
 *   port: 51000,
 * });
 * ```
 *
 * @module
 */

import { formatIpv6, parseIpv4, parseIpv6 } from "./address_list.ts";

/** What a PROXY header says. */
export interface ProxyHeader {
  /** The protocol version the header used. */
  readonly version: 1 | 2;
  /**
   * `"proxy"`: a relayed connection, `source` is the real client (when the
   * address family is known). `"local"`: the balancer speaks for itself,
   * such as a health check (v2 LOCAL, v1 UNKNOWN); use the connection's own
   * addresses.
   */
  readonly command: "proxy" | "local";
  /** The real client, when the header gives one. */
  readonly source?: Deno.NetAddr | Deno.UnixAddr;
  /** The address the client connected to, when the header gives one. */
  readonly destination?: Deno.NetAddr | Deno.UnixAddr;
}

/** The 12 bytes a v2 header starts with. */
export const PROXY_V2_SIGNATURE: Uint8Array = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

/** The longest v1 header, CRLF included, as the specification bounds it. */
export const PROXY_V1_MAX = 107;

/** The longest v2 header: 16 bytes and a 16-bit length. */
export const PROXY_V2_MAX = 16 + 65535;

const V1_PREFIX = "PROXY ";

function invalid(detail: string): SyntaxError {
  return new SyntaxError(`Cannot read PROXY header as ${detail}`);
}

/** Printable text for an error message, at most 48 characters. */
function show(bytes: Uint8Array): string {
  let text = "";
  for (const byte of bytes.subarray(0, 48)) {
    text += byte >= 0x20 && byte < 0x7f
      ? String.fromCharCode(byte)
      : `\\x${byte.toString(16).padStart(2, "0")}`;
  }
  return bytes.length > 48 ? `${text}...` : text;
}

function parsePort(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const port = Number(text);
  return port <= 65535 ? port : undefined;
}

/**
 * Parses a v1 header line, without its CRLF.
 *
 * @throws {SyntaxError} The line is not a valid v1 header.
 */
export function parseProxyV1(line: Uint8Array): ProxyHeader {
  if (line.length > PROXY_V1_MAX - 2) {
    throw invalid(
      `a v1 header must be at most ${PROXY_V1_MAX} bytes: current header is longer`,
    );
  }
  for (const byte of line) {
    if (byte < 0x20 || byte > 0x7e) {
      throw invalid(
        `a v1 header must be printable ASCII: current header is '${
          show(line)
        }'`,
      );
    }
  }
  const text = new TextDecoder().decode(line);
  if (!text.startsWith(V1_PREFIX)) {
    throw invalid(
      `a v1 header must start with 'PROXY ': current header is '${show(line)}'`,
    );
  }
  const fields = text.slice(V1_PREFIX.length).split(" ");
  if (fields[0] === "UNKNOWN") return { version: 1, command: "local" };
  if (fields.length !== 5 || (fields[0] !== "TCP4" && fields[0] !== "TCP6")) {
    throw invalid(
      `a v1 header must be 'PROXY TCP4|TCP6 <source> <destination> <source port> <destination port>' or 'PROXY UNKNOWN': current header is '${text}'`,
    );
  }
  const [family, source, destination, sourcePort, destinationPort] = fields as [
    string,
    string,
    string,
    string,
    string,
  ];
  const parse = family === "TCP4"
    ? (address: string) => parseIpv4(address) && address
    : (address: string) => {
      const bytes = parseIpv6(address);
      return bytes && formatIpv6(bytes);
    };
  const sourceHost = parse(source);
  const destinationHost = parse(destination);
  const from = parsePort(sourcePort);
  const to = parsePort(destinationPort);
  if (
    !sourceHost || !destinationHost || from === undefined || to === undefined
  ) {
    throw invalid(
      `a v1 ${family} header must hold two ${
        family === "TCP4" ? "IPv4" : "IPv6"
      } addresses and two ports from 0 to 65535: current header is '${text}'`,
    );
  }
  return {
    version: 1,
    command: "proxy",
    source: { transport: "tcp", hostname: sourceHost, port: from },
    destination: { transport: "tcp", hostname: destinationHost, port: to },
  };
}

/** Whether `bytes` starts with the v2 signature (as far as it goes). */
function startsLikeV2(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, PROXY_V2_SIGNATURE.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== PROXY_V2_SIGNATURE[i]) return false;
  }
  return true;
}

/** Reads a NUL-terminated path of at most 108 bytes. */
function unixPath(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end === -1 ? bytes : bytes.subarray(0, end));
}

/**
 * Parses a whole v2 header: the 16 fixed bytes and the length they
 * announce (TLVs after the addresses are skipped).
 *
 * @throws {SyntaxError} The bytes are not a valid v2 header.
 */
export function parseProxyV2(bytes: Uint8Array): ProxyHeader {
  if (bytes.length < 16 || !startsLikeV2(bytes)) {
    throw invalid(
      `a v2 header must start with the 12-byte signature: current bytes are '${
        show(bytes)
      }'`,
    );
  }
  const versionCommand = bytes[12]!;
  if (versionCommand >> 4 !== 2) {
    throw invalid(
      `a v2 header must have version 2: current version is ${
        versionCommand >> 4
      }`,
    );
  }
  const command = versionCommand & 0x0f;
  if (command > 1) {
    throw invalid(
      `a v2 header must have command LOCAL (0) or PROXY (1): current command is ${command}`,
    );
  }
  const length = (bytes[14]! << 8) | bytes[15]!;
  if (bytes.length !== 16 + length) {
    throw invalid(
      `a v2 header must be 16 bytes plus the ${length} it announces: current size is ${bytes.length}`,
    );
  }
  if (command === 0) return { version: 2, command: "local" };
  const family = bytes[13]! >> 4;
  const transport = bytes[13]! & 0x0f;
  if (family > 3 || transport > 2) {
    throw invalid(
      `a v2 header must have a known address family and transport: current byte is 0x${
        bytes[13]!.toString(16).padStart(2, "0")
      }`,
    );
  }
  // UNSPEC: the balancer does not know the client; use the connection's.
  if (family === 0 || transport === 0) return { version: 2, command: "proxy" };
  const needed = [0, 12, 36, 216][family]!;
  if (length < needed) {
    throw invalid(
      `a v2 header of this address family must hold at least ${needed} address bytes: current length is ${length}`,
    );
  }
  const body = bytes.subarray(16);
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  if (family === 3) {
    return {
      version: 2,
      command: "proxy",
      source: { transport: "unix", path: unixPath(body.subarray(0, 108)) },
      destination: {
        transport: "unix",
        path: unixPath(body.subarray(108, 216)),
      },
    };
  }
  const net = transport === 1 ? "tcp" : "udp";
  const size = family === 1 ? 4 : 16;
  const host = (offset: number) =>
    family === 1
      ? body.subarray(offset, offset + 4).join(".")
      : formatIpv6(body.subarray(offset, offset + 16));
  return {
    version: 2,
    command: "proxy",
    source: {
      transport: net,
      hostname: host(0),
      port: view.getUint16(2 * size),
    },
    destination: {
      transport: net,
      hostname: host(size),
      port: view.getUint16(2 * size + 2),
    },
  };
}

/**
 * Parses the PROXY header at the start of `bytes`, v1 or v2.
 *
 * @returns The header and its size in bytes, or `null` when `bytes` is a
 * valid beginning of a header that needs more bytes.
 * @throws {SyntaxError} `bytes` cannot be the start of a header.
 */
export function parseProxyHeader(
  bytes: Uint8Array,
): { header: ProxyHeader; size: number } | null {
  if (bytes.length === 0) return null;
  if (bytes[0] === PROXY_V2_SIGNATURE[0]) {
    if (!startsLikeV2(bytes)) {
      throw invalid(
        `a v2 header must start with the 12-byte signature: current bytes are '${
          show(bytes)
        }'`,
      );
    }
    if (bytes.length < 16) return null;
    const size = 16 + ((bytes[14]! << 8) | bytes[15]!);
    if (bytes.length < size) {
      // Check what can be checked early, so garbage fails fast.
      if (bytes[12]! >> 4 !== 2) parseProxyV2(bytes.subarray(0, 16));
      return null;
    }
    return { header: parseProxyV2(bytes.subarray(0, size)), size };
  }
  const prefix = new TextEncoder().encode(V1_PREFIX);
  for (let i = 0; i < Math.min(bytes.length, prefix.length); i++) {
    if (bytes[i] !== prefix[i]) {
      throw invalid(
        `the connection must start with a v1 ('PROXY ') or v2 header: current bytes are '${
          show(bytes)
        }'`,
      );
    }
  }
  const end = bytes.indexOf(0x0a);
  if (end === -1) {
    if (bytes.length >= PROXY_V1_MAX) {
      throw invalid(
        `a v1 header must end with CRLF within ${PROXY_V1_MAX} bytes: current bytes are '${
          show(bytes)
        }'`,
      );
    }
    return null;
  }
  if (end === 0 || bytes[end - 1] !== 0x0d) {
    throw invalid(
      `a v1 header must end with CRLF: current header is '${
        show(bytes.subarray(0, end + 1))
      }'`,
    );
  }
  return { header: parseProxyV1(bytes.subarray(0, end - 1)), size: end + 1 };
}

/** What {@linkcode readProxyHeader} needs of a connection's pull reader. */
export interface HeaderReader {
  /** Up to `n` bytes without consuming them; fewer only at end of input. */
  peek(n: number): Promise<Uint8Array>;
  /** Exactly `n` bytes; rejects at an early end of input. */
  readExactly(n: number): Promise<Uint8Array>;
}

/**
 * Reads a PROXY header from a connection, consuming exactly its bytes:
 * whatever follows stays unread for the handler. Reads are bounded: at
 * most {@linkcode PROXY_V1_MAX} bytes for v1 and the announced length for
 * v2 (at most {@linkcode PROXY_V2_MAX}).
 *
 * The reader must not wait for more bytes than the client has sent when
 * the header is complete, so only the bytes known to belong to the header
 * are asked for: one byte decides the version, a v1 header is peeked a
 * byte further at a time until its LF, a v2 header is read as 16 bytes
 * and then its announced length.
 *
 * @throws {SyntaxError} The bytes are not a valid header, or the client
 * ended its input before the header was complete.
 */
export async function readProxyHeader(
  reader: HeaderReader,
): Promise<{ header: ProxyHeader; size: number }> {
  const truncated = (got: Uint8Array) =>
    invalid(
      `the client ended its input before the header was complete: current bytes are '${
        show(got)
      }'`,
    );
  let want = 1;
  while (true) {
    const bytes = await reader.peek(want);
    if (bytes.length < want) throw truncated(bytes);
    const parsed = parseProxyHeader(bytes);
    if (parsed) {
      await reader.readExactly(parsed.size);
      return parsed;
    }
    if (bytes[0] === PROXY_V2_SIGNATURE[0]) {
      // 16 fixed bytes, then the length they announce.
      want = bytes.length < 16 ? 16 : 16 + ((bytes[14]! << 8) | bytes[15]!);
    } else {
      // v1: one more byte at a time, as the client may send nothing more
      // until it is answered. peek() returns what is buffered, so this is
      // one read per arriving chunk, not per byte.
      want = bytes.length + 1;
    }
  }
}

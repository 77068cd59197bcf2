/**
 * IP addresses and CIDR ranges, IPv4 and IPv6, for the server's `allow` and
 * `deny` lists and for PROXY protocol addresses. Private to the package.
 *
 * Every address is held as 16 bytes: an IPv4 address is stored as its
 * IPv4-mapped IPv6 form (`::ffff:a.b.c.d`), so `10.0.0.0/8` and a client
 * that arrives as `::ffff:10.1.2.3` on a dual-stack listener match.
 *
 * ```ts
 * import { AddressList } from "./address_list.ts";
 * import assert from "node:assert/strict";
 *
 * const list = new AddressList(["10.0.0.0/8", "2001:db8::/32"], "allow");
 * assert.equal(list.has("10.1.2.3"), true);
 * assert.equal(list.has("::ffff:10.1.2.3"), true);
 * assert.equal(list.has("2001:db8::1"), true);
 * assert.equal(list.has("192.0.2.1"), false);
 * ```
 *
 * @module
 */

/** The 12-byte prefix of an IPv4-mapped IPv6 address. */
const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/**
 * Parses dotted-quad IPv4 text (`192.0.2.1`) into 4 bytes, or returns
 * `undefined`. Leading zeros are refused, as they read as octal elsewhere.
 */
export function parseIpv4(text: string): Uint8Array | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  const bytes = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return undefined;
    const value = Number(part);
    if (value > 255) return undefined;
    bytes[i] = value;
  }
  return bytes;
}

/**
 * Parses IPv6 text (`2001:db8::1`, `::ffff:192.0.2.1`) into 16 bytes, or
 * returns `undefined`. A zone (`%eth0`) is not accepted here.
 */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groupsOf = (half: string): number[] | undefined => {
    if (half === "") return [];
    const words: number[] = [];
    const parts = half.split(":");
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i]!;
      if (i === parts.length - 1 && part.includes(".")) {
        const v4 = parseIpv4(part);
        if (!v4) return undefined;
        words.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(part)) {
        words.push(parseInt(part, 16));
      } else {
        return undefined;
      }
    }
    return words;
  };
  const head = groupsOf(halves[0]!);
  const tail = halves.length === 2 ? groupsOf(halves[1]!) : [];
  if (!head || !tail) return undefined;
  const given = head.length + tail.length;
  // "::" stands for at least one group of zeros.
  if (halves.length === 2 ? given > 7 : given !== 8) return undefined;
  const words = [...head, ...new Array(8 - given).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  words.forEach((word, i) => {
    bytes[2 * i] = word >> 8;
    bytes[2 * i + 1] = word & 0xff;
  });
  return bytes;
}

/**
 * Parses an IPv4 or IPv6 address into its 16-byte form (IPv4 as
 * IPv4-mapped IPv6), or returns `undefined`. An IPv6 zone (`fe80::1%eth0`)
 * is ignored, as addresses reported by the operating system may carry one.
 */
export function parseIp(text: string): Uint8Array | undefined {
  const v4 = parseIpv4(text);
  if (v4) return Uint8Array.from([...MAPPED_PREFIX, ...v4]);
  const zone = text.indexOf("%");
  return parseIpv6(zone === -1 ? text : text.slice(0, zone));
}

/** Whether 16 bytes are an IPv4-mapped IPv6 address. */
export function isMapped(bytes: Uint8Array): boolean {
  return MAPPED_PREFIX.every((byte, i) => bytes[i] === byte);
}

/**
 * Formats 16 bytes as IPv6 text in the canonical form of RFC 5952: lower
 * case, zeros compressed, the longest run of zero groups (two or more)
 * replaced by `::`, an IPv4-mapped address as `::ffff:a.b.c.d`.
 */
export function formatIpv6(bytes: Uint8Array): string {
  if (isMapped(bytes)) return `::ffff:${bytes.subarray(12).join(".")}`;
  const words: number[] = [];
  for (let i = 0; i < 16; i += 2) words.push((bytes[i]! << 8) | bytes[i + 1]!);
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = words.map((word) => word.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${
    hex.slice(bestStart + bestLength).join(":")
  }`;
}

/** An address range: the first `bits` bits of `bytes` (16-byte form). */
interface Range {
  readonly bytes: Uint8Array;
  readonly bits: number;
}

/**
 * Parses `address` or `address/prefix` into a range.
 *
 * @param text The entry.
 * @param name Where it comes from, for the error message (`allow[2]`).
 * @throws {SyntaxError} The entry is not an address or a CIDR range.
 * @throws {RangeError} The prefix length is out of range for the family.
 */
export function parseRange(text: unknown, name: string): Range {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot serve as ${name} must be a string: current type is ${typeof text}`,
    );
  }
  const slash = text.indexOf("/");
  const address = slash === -1 ? text : text.slice(0, slash);
  const v4 = parseIpv4(address);
  const bytes = v4
    ? Uint8Array.from([...MAPPED_PREFIX, ...v4])
    : parseIpv6(address);
  if (!bytes) {
    throw new SyntaxError(
      `Cannot serve as ${name} must be an IP address or CIDR range such as 192.0.2.0/24 or 2001:db8::/32: current value is '${text}'`,
    );
  }
  const max = v4 ? 32 : 128;
  let bits = max;
  if (slash !== -1) {
    const prefix = text.slice(slash + 1);
    bits = /^(0|[1-9][0-9]{0,2})$/.test(prefix) ? Number(prefix) : NaN;
    if (!(bits <= max)) {
      throw new RangeError(
        `Cannot serve as the prefix length of ${name} must be an integer from 0 to ${max}: current value is '${text}'`,
      );
    }
  }
  return { bytes, bits: v4 ? bits + 96 : bits };
}

/** Whether `address` (16-byte form) lies in `range`. */
function inRange(address: Uint8Array, range: Range): boolean {
  const whole = range.bits >> 3;
  for (let i = 0; i < whole; i++) {
    if (address[i] !== range.bytes[i]) return false;
  }
  const rest = range.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (address[whole]! & mask) === (range.bytes[whole]! & mask);
}

/** A list of addresses and CIDR ranges that answers "is this one in it?". */
export class AddressList {
  readonly #ranges: Range[];

  /**
   * Parses every entry at once, so a bad one fails at start-up.
   *
   * @param entries Addresses and CIDR ranges, IPv4 or IPv6.
   * @param name The option's name, for error messages.
   */
  constructor(entries: readonly string[], name: string) {
    if (!Array.isArray(entries)) {
      throw new TypeError(
        `Cannot serve as ${name} must be an array of IP addresses and CIDR ranges: current type is ${typeof entries}`,
      );
    }
    this.#ranges = entries.map((entry, i) =>
      parseRange(entry, `${name}[${i}]`)
    );
  }

  /**
   * Whether `address` (text as in `Deno.NetAddr.hostname`) is in the list.
   * Text that is not an IP address is in no list.
   */
  has(address: string): boolean {
    const bytes = parseIp(address);
    if (!bytes) return false;
    return this.#ranges.some((range) => inRange(bytes, range));
  }
}

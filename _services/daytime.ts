/**
 * The daytime service of RFC 867: {@linkcode daytime}, a `serve()` handler,
 * and {@linkcode formatDaytime}, the line it sends.
 *
 * ```ts
 * import { formatDaytime } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.match(formatDaytime(new Date()), /-UTC\r\n$/);
 * ```
 *
 * @module
 */

import type { ServiceConnection } from "./types.ts";

/**
 * The daytime service of RFC 867, as a `serve()` handler: sends one line
 * with the current date and time in UTC, as {@linkcode formatDaytime}
 * writes it, then our FIN. Input is not read.
 *
 * @param connection The client's connection.
 * @returns A promise that fulfils once the line is sent and our FIN with it.
 *
 * @example Ask for the time
 * ```ts
 * import { daytime } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, daytime);
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * const line = await new Response(conn.readable).text(); // up to our FIN
 * assert.match(line, /^[A-Z][a-z]+day, [A-Z][a-z]+ \d{1,2}, \d{4} \d\d:\d\d:\d\d-UTC\r\n$/);
 * ```
 */
export async function daytime(connection: ServiceConnection): Promise<void> {
  const writer = connection.writable.getWriter();
  try {
    await writer.write(new TextEncoder().encode(formatDaytime(new Date())));
    await writer.close();
  } finally {
    writer.releaseLock();
  }
}

const WEEKDAYS = [
  "Sunday",
  "Monday",
  "Tuesday",
  "Wednesday",
  "Thursday",
  "Friday",
  "Saturday",
];
const MONTHS = [
  "January",
  "February",
  "March",
  "April",
  "May",
  "June",
  "July",
  "August",
  "September",
  "October",
  "November",
  "December",
];

/**
 * Formats `date` as the daytime service's line, in the style RFC 867
 * suggests ("Weekday, Month Day, Year HH:MM:SS-Zone"), always in UTC.
 *
 * @param date The moment to format.
 * @returns The line, ending in "\r\n".
 * @throws {RangeError} When `date` is an invalid date.
 *
 * @example Format a fixed date
 * ```ts
 * import { formatDaytime } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   formatDaytime(new Date("1982-02-23T01:37:43Z")),
 *   "Tuesday, February 23, 1982 01:37:43-UTC\r\n",
 * );
 * ```
 */
export function formatDaytime(date: Date): string {
  if (Number.isNaN(date.getTime())) {
    throw new RangeError(
      "Cannot format daytime as the date must be valid: current value is Invalid Date",
    );
  }
  const two = (n: number) => String(n).padStart(2, "0");
  return `${WEEKDAYS[date.getUTCDay()]}, ${
    MONTHS[date.getUTCMonth()]
  } ${date.getUTCDate()}, ${date.getUTCFullYear()} ${two(date.getUTCHours())}:${
    two(date.getUTCMinutes())
  }:${two(date.getUTCSeconds())}-UTC\r\n`;
}

/**
 * `@x/sock`: TCP sockets for Deno with web streams.
 *
 * - {@linkcode serve} runs a server that serves many clients at once, each
 *   connection its own pipeline;
 * - {@linkcode connect} and {@linkcode exchange} are the client, with split
 *   I/O and half-close;
 * - {@linkcode UpperCaseStream} and {@linkcode EchoStream} are the classic
 *   services, as plain `TransformStream`s;
 * - {@linkcode framed}, {@linkcode lines} and {@linkcode lengthPrefixed}
 *   turn bytes into messages;
 * - {@linkcode ConnStreams} gives any `Deno.Conn` web streams that keep TCP
 *   half-close, which Deno's own `conn.readable` and `conn.writable` do not.
 *
 * ```ts
 * import { connect, exchange, serve, UpperCaseStream } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
 * const input = ReadableStream.from([new TextEncoder().encode("hi")]);
 * const answer = await new Response(exchange(conn, input)).text();
 * assert.equal(answer, "HI");
 * ```
 *
 * @module
 */
export * from "./conn_streams.ts";
export * from "./services.ts";
export * from "./framing.ts";
export * from "./server.ts";
export * from "./client.ts";

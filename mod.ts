/**
 * `@x/sock`: TCP sockets for Deno with web streams.
 *
 * @module
 */
export * from "./conn_streams.ts";
export * from "./services.ts";

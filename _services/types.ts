/**
 * The shapes of connection and context the handler services use: the part
 * of a `Connection` and of `serve()`'s handler context they need, so that
 * they run over anything that has it.
 *
 * ```ts
 * import type { ServiceConnection } from "@x/sock/services";
 *
 * const connection: ServiceConnection = {
 *   readable: ReadableStream.from([]),
 *   writable: new WritableStream(),
 *   signal: new AbortController().signal,
 * };
 * ```
 *
 * @module
 */

/**
 * What the handler services ({@linkcode chargen}, {@linkcode daytime}) use of
 * a connection. Any `Connection` has all of it, such as the one `serve()`
 * hands to its handler; so does any object with half-close safe streams and
 * a signal.
 *
 * @example Any object with the three members will do
 * ```ts
 * import { daytime, type ServiceConnection } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * // The daytime line, collected in memory instead of sent to a client.
 * let text = "";
 * const connection: ServiceConnection = {
 *   readable: ReadableStream.from([]), // the client sends nothing
 *   writable: new WritableStream({
 *     write: (chunk) => void (text += new TextDecoder().decode(chunk)),
 *   }),
 *   signal: new AbortController().signal, // never aborts
 * };
 * await daytime(connection);
 * assert.match(text, /^[A-Z][a-z]+day, .* \d\d:\d\d:\d\d-UTC\r\n$/);
 * ```
 */
export interface ServiceConnection {
  /** What the client sends; ends at the client's FIN. */
  readonly readable: ReadableStream<Uint8Array>;
  /** What we send; closing it sends our FIN. */
  readonly writable: WritableStream<Uint8Array>;
  /** Aborts when the connection is closed before its end. */
  readonly signal: AbortSignal;
}

/**
 * What a handler service uses of the context `serve()` gives its handler
 * (`HandlerContext`); all of it optional.
 *
 * @example Stop chargen as a server shutdown would
 * ```ts
 * import {
 *   CHARGEN_LINE_LENGTH,
 *   chargen,
 *   type ServiceConnection,
 *   type ServiceContext,
 * } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const shutdown = new AbortController();
 * const context: ServiceContext = { shutdown: shutdown.signal };
 * let sent = 0;
 * let finished = false;
 * const connection: ServiceConnection = {
 *   readable: ReadableStream.from([]),
 *   writable: new WritableStream({
 *     write(chunk) {
 *       sent += chunk.length;
 *       shutdown.abort(); // after the first block of lines
 *     },
 *     close: () => void (finished = true), // our FIN
 *   }),
 *   signal: new AbortController().signal,
 * };
 * await chargen(connection, context);
 * assert.ok(finished);
 * assert.ok(sent > 0);
 * assert.equal(sent % (CHARGEN_LINE_LENGTH + 2), 0); // whole lines only
 * ```
 */
export interface ServiceContext {
  /**
   * Aborts when the server starts to shut down: a service that would run for
   * ever then ends at a clean boundary.
   */
  readonly shutdown?: AbortSignal;
}

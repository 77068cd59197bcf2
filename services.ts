/**
 * The classic per-connection services, in the shape that fits each:
 *
 * - services that map bytes to bytes are `TransformStream`s (built on
 *   {@linkcode SyncTransformStream}, so the connection engine can run them
 *   without streams): {@linkcode UpperCaseStream}, {@linkcode EchoStream}
 *   and {@linkcode DiscardStream} (RFC 863). A `serve()` handler returns a
 *   fresh one per connection.
 * - services whose output is not driven by input are handler functions
 *   `(connection) => Promise<void>`, passed to `serve()` as they are:
 *   {@linkcode chargen} (RFC 864) and {@linkcode daytime} (RFC 867).
 * - {@linkcode execHandler} builds a handler that runs a program per
 *   connection, wired to the client with half-close both ways.
 *
 * ```ts
 * import { UpperCaseStream } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * const text = await new Response(
 *   ReadableStream.from(["héllo, ", "wörld"])
 *     .pipeThrough(new TextEncoderStream())
 *     .pipeThrough(new UpperCaseStream()),
 * ).text();
 * assert.equal(text, "HéLLO, WöRLD");
 * ```
 *
 * @module
 */

export {
  type ServiceConnection,
  type ServiceContext,
} from "./_services/types.ts";
export { upperCase, UpperCaseStream } from "./_services/upper.ts";
export { DiscardStream, EchoStream } from "./_services/echo.ts";
export { chargen, CHARGEN_LINE_LENGTH } from "./_services/chargen.ts";
export { daytime, formatDaytime } from "./_services/daytime.ts";
export { exec, execHandler, type ExecOptions } from "./_services/exec.ts";
export { parseCommand } from "./_services/command.ts";

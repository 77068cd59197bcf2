/**
 * Why a connection failed, in words: {@linkcode ConnectError} names the
 * target and keeps Deno's error as its `cause`; {@linkcode describeError}
 * says in a few words what an error means for a person.
 *
 * @module
 */

/**
 * A failure to connect, naming the target; its `cause` is Deno's error,
 * such as `ConnectionRefused`, `TimedOut`, `NotFound` (host not found),
 * `ConnectionReset`, `NotCapable` (no permission) or `InvalidData` (a TLS
 * handshake that failed).
 *
 * @example Tell a refused connection apart
 * ```ts
 * import { ConnectError, connect } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const port = listener.addr.port;
 * listener.close(); // nobody listens there now
 * await assert.rejects(connect({ port }), (error) => {
 *   assert.ok(error instanceof ConnectError);
 *   assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
 *   assert.equal(error.target, `127.0.0.1:${port}`);
 *   return true;
 * });
 * ```
 */
export class ConnectError extends Error {
  /** `host:port` or the Unix socket path that could not be reached. */
  readonly target: string;
  /** Whether the failure came in the TLS handshake, after TCP connected. */
  readonly tlsHandshake: boolean;

  /**
   * Creates the error.
   *
   * @param target What could not be reached.
   * @param cause Why.
   * @param tlsHandshake Whether it failed in the TLS handshake.
   */
  constructor(target: string, cause: unknown, tlsHandshake = false) {
    super(
      `Cannot connect to ${target}: ${
        tlsHandshake ? describeTlsFailure(cause) : describeError(cause)
      }`,
      { cause },
    );
    this.name = "ConnectError";
    this.target = target;
    this.tlsHandshake = tlsHandshake;
  }
}

/**
 * Says in a few words why a connection failed.
 *
 * @param error The error from connecting, or from the connection later.
 * @returns A short description, such as `connection refused (is a server
 * listening there?)`.
 *
 * @example Describe an error for a person
 * ```ts
 * import { describeError } from "@x/sock/client";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   describeError(new Deno.errors.ConnectionReset("os error 104")),
 *   "connection reset by the peer",
 * );
 * ```
 */
export function describeError(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) {
    return "connection refused (is a server listening there?)";
  }
  if (error instanceof Deno.errors.TimedOut) {
    return `timed out: ${error.message}`;
  }
  if (error instanceof Deno.errors.NotFound) {
    return `not found (${error.message})`;
  }
  if (error instanceof Deno.errors.ConnectionReset) {
    return "connection reset by the peer";
  }
  if (error instanceof Deno.errors.BrokenPipe) {
    return "the peer closed the connection while we were sending";
  }
  if (error instanceof Deno.errors.NotCapable) {
    const kind = error.message.match(/Requires (\w+) access/)?.[1] ?? "net";
    return `${kind} access is not allowed (${error.message})`;
  }
  return error instanceof Error ? error.message : String(error);
}

function describeTlsFailure(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  if (/certificate|UnknownIssuer|NotValidForName|Expired/i.test(message)) {
    return `the TLS handshake failed: ${message} (is the server's CA trusted? see caCerts / --ca)`;
  }
  if (
    error instanceof Deno.errors.InvalidData ||
    error instanceof Deno.errors.UnexpectedEof ||
    error instanceof Deno.errors.ConnectionReset
  ) {
    return `the TLS handshake failed: ${message} (does the server speak TLS on that port?)`;
  }
  return `the TLS handshake failed: ${describeError(error)}`;
}

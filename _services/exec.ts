/**
 * The exec service: a program run per connection, its stdin and stdout
 * wired to the client with half-close passed through both ways. Re-exported
 * by `services.ts`; commands are parsed by `command.ts`.
 *
 * - The client's bytes go to the program's stdin; the client's FIN closes
 *   stdin, so the program reads end-of-file.
 * - The program's stdout goes to the client; its end-of-file becomes our
 *   FIN, after every byte.
 * - Both directions move at the pace of the slower end (`pipeTo`
 *   backpressure), so any volume passes in bounded memory and without
 *   deadlock, whatever order the program reads and writes in.
 *
 * ```ts
 * import { execHandler } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * await using server = serve({ port: 0 }, execHandler("tr a-z A-Z"));
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new TextEncoder().encode("hello"));
 * await conn.closeWrite(); // tr reads end-of-file, answers and exits
 * const buffer = new Uint8Array(16);
 * let text = "";
 * for (let n; (n = await conn.read(buffer)) !== null;) {
 *   text += new TextDecoder().decode(buffer.subarray(0, n));
 * }
 * assert.equal(text, "HELLO");
 * ```
 *
 * @module
 */

import {
  checkProgramFound,
  checkRunPermission,
  spawnError,
  toArgv,
} from "./command.ts";
import type { ServiceConnection } from "./types.ts";

/**
 * Options for {@linkcode execHandler} and {@linkcode exec}.
 *
 * @example A program in a clean environment, its stderr dropped
 * ```ts
 * import { execHandler, type ExecOptions } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const exited = Promise.withResolvers<number>();
 * const options: ExecOptions = {
 *   cwd: "/",
 *   env: { GREETING: "hello" },
 *   clearEnv: true, // GREETING is the only variable the program sees
 *   stderr: "null",
 *   killSignal: "SIGKILL",
 *   onExit: (status) => exited.resolve(status.code),
 * };
 * await using server = serve(
 *   { port: 0 },
 *   execHandler(
 *     ["/bin/sh", "-c", 'echo "$GREETING ${HOME:-nobody}"; pwd; echo oops >&2'],
 *     options,
 *   ),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.closeWrite();
 * assert.equal(await new Response(conn.readable).text(), "hello nobody\n/\n");
 * assert.equal(await exited.promise, 0);
 * ```
 */
export interface ExecOptions {
  /**
   * The program's working directory.
   *
   * @default {undefined} (the server's own)
   */
  cwd?: string;
  /**
   * Environment variables to set for the program, on top of the server's
   * own unless `clearEnv` is set.
   *
   * @default {undefined}
   */
  env?: Record<string, string>;
  /**
   * Whether the program starts with only the variables in `env`.
   *
   * @default {false}
   */
  clearEnv?: boolean;
  /**
   * Where the program's stderr goes: the server's own stderr, or nowhere.
   * It never goes to the client.
   *
   * @default {"inherit"}
   */
  stderr?: "inherit" | "null";
  /**
   * The signal that stops the program when the connection fails (the client
   * resets, or the server closes it).
   *
   * @default {"SIGTERM"}
   */
  killSignal?: Deno.Signal;
  /**
   * Called with the program's exit status once it has exited and the
   * connection is done with, for every connection that started a program
   * (not when the promise rejects). Only for {@linkcode execHandler}.
   *
   * @default {undefined}
   */
  onExit?(status: Deno.CommandStatus, connection: ServiceConnection): void;
}

/**
 * Builds a `serve()` handler that runs `command` for each connection, as
 * {@linkcode exec} does. The command is parsed, the run permission checked
 * and the program looked up here, at once (without running it), so a
 * server fails at its start rather than at its first client.
 *
 * Each client runs a process: bound them with `serve()`'s
 * `maxConnections` (the server program's `--exec` takes 100 at once by
 * default, as ncat does).
 *
 * @param command The program and its arguments: an array, or one string
 * split by {@linkcode parseCommand} (no shell; use `["sh", "-c", script]`
 * for one).
 * @param options Environment, stderr, exit report.
 * @returns The handler. Its promise fulfils once the program has exited and
 * both directions have ended, whatever the exit code (see
 * {@linkcode ExecOptions.onExit}), and rejects as {@linkcode exec}'s does.
 * @throws {TypeError} When the command is empty or not strings.
 * @throws {SyntaxError} When a command string has an unclosed quote.
 * @throws {Deno.errors.NotCapable} Without `--allow-run` for the program;
 * the message names the flag.
 * @throws {Deno.errors.NotFound} When the program is not found (on the
 * PATH, or at its path when reading it is allowed).
 *
 * @example Report each program's exit code
 * ```ts
 * import { execHandler } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const exited = Promise.withResolvers<number>();
 * await using server = serve(
 *   { port: 0 },
 *   execHandler(["sh", "-c", "wc -c; exit 3"], {
 *     onExit: (status) => exited.resolve(status.code),
 *   }),
 * );
 * const { port } = server.addr as Deno.NetAddr;
 * using conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new Uint8Array(5000));
 * await conn.closeWrite();
 * const answer = new Uint8Array(100);
 * let length = 0;
 * for (let n; (n = await conn.read(answer.subarray(length))) !== null;) {
 *   length += n;
 * }
 * assert.equal(new TextDecoder().decode(answer.subarray(0, length)).trim(), "5000");
 * assert.equal(await exited.promise, 3);
 * ```
 */
export function execHandler(
  command: string | readonly string[],
  options: ExecOptions = {},
): (connection: ServiceConnection) => Promise<void> {
  const argv = toArgv(command);
  checkRunPermission(argv[0]!);
  checkProgramFound(argv[0]!, options.cwd);
  return async (connection) => {
    const status = await exec(connection, argv, options);
    options.onExit?.(status, connection);
  };
}

/**
 * Runs `command` for one connection: the client's bytes to its stdin, its
 * stdout to the client, half-close passed through both ways, stderr as
 * {@linkcode ExecOptions.stderr} says.
 *
 * - At the client's FIN the program's stdin is closed: it reads
 *   end-of-file. At the program's stdout end-of-file, every byte has been
 *   sent and our FIN follows.
 * - When the program stops reading (it exited or closed its stdin), what
 *   the client still sends is read and dropped until its FIN: closing a
 *   connection with unread input would reset it, and the client could lose
 *   the end of our output.
 * - When the connection fails (the client resets, or the server closes it
 *   and `connection.signal` aborts), the program gets
 *   {@linkcode ExecOptions.killSignal}.
 * - On a server shutdown the program runs on: the connection is busy until
 *   it ends, and a program still running after the grace period is killed
 *   as the server closes the connection.
 *
 * @param connection The client's connection.
 * @param command The program and its arguments, as for
 * {@linkcode execHandler}.
 * @param options Environment, stderr, kill signal.
 * @returns A promise of the program's exit status, which fulfils once it has
 * exited and both directions have ended. It rejects with the connection's
 * error when the connection failed (the program killed), and with
 * `Deno.errors.NotFound` or `Deno.errors.NotCapable` when the program cannot
 * be started.
 *
 * @example Run `cat` over a connection
 * ```ts
 * import { exec } from "@x/sock/services";
 * import { serve } from "@x/sock/server";
 * import assert from "node:assert/strict";
 *
 * const exited = Promise.withResolvers<Deno.CommandStatus>();
 * await using server = serve({ port: 0 }, async (connection) => {
 *   exited.resolve(await exec(connection, ["cat"]));
 * });
 * const { port } = server.addr as Deno.NetAddr;
 * const conn = await Deno.connect({ hostname: "127.0.0.1", port });
 * await conn.write(new TextEncoder().encode("meow"));
 * await conn.closeWrite();
 * assert.equal(await new Response(conn.readable).text(), "meow");
 * assert.equal((await exited.promise).success, true);
 * ```
 */
export async function exec(
  connection: ServiceConnection,
  command: string | readonly string[],
  options: ExecOptions = {},
): Promise<Deno.CommandStatus> {
  const [program, ...args] = toArgv(command);
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(program!, {
      args,
      cwd: options.cwd,
      env: options.env,
      clearEnv: options.clearEnv,
      stdin: "piped",
      stdout: "piped",
      stderr: options.stderr ?? "inherit",
    }).spawn();
  } catch (error) {
    throw spawnError(program!, error);
  }

  let failed = false;
  let failure: unknown;
  const kill = () => {
    try {
      child.kill(options.killSignal ?? "SIGTERM");
    } catch { /* exited already */ }
  };
  const fail = (error: unknown) => {
    if (!failed) {
      failed = true;
      failure = error;
    }
    kill();
  };
  const { signal } = connection;
  const onAbort = () => fail(signal.reason);
  if (signal.aborted) onAbort();
  else signal.addEventListener("abort", onAbort, { once: true });

  // Client to stdin, a chunk at a time: the next read waits for the
  // program to take the last chunk.
  const input = async () => {
    const reader = connection.readable.getReader();
    const stdin = child.stdin.getWriter();
    let open = true;
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        if (!open) continue; // the program has stopped reading: drop
        try {
          await stdin.write(value);
        } catch {
          open = false;
        }
      }
    } catch (error) {
      fail(error);
      stdin.abort(error).catch(() => {});
      return;
    } finally {
      reader.releaseLock();
    }
    // The client's FIN: the program reads end-of-file.
    if (open) await stdin.close().catch(() => {});
    else stdin.releaseLock();
  };

  // Stdout to the client; its end closes `writable`, which sends our FIN.
  const output = async () => {
    try {
      await child.stdout.pipeTo(connection.writable);
    } catch (error) {
      fail(error);
    }
  };

  try {
    const [status] = await Promise.all([
      child.status,
      input().catch(fail), // (a connection whose read side is taken)
      output().catch(fail),
    ]);
    if (failed) throw failure;
    return status;
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
}

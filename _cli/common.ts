/**
 * What the client and server programs share at run time: one message
 * style, one set of exit codes, permission hints, file errors, signals and
 * `--version`, and {@linkcode runProgram}, which turns every error into one
 * line on stderr and an exit code. Flag parsing is in `flags.ts`.
 *
 * Private: the programs (`client.ts`, `server.ts`, `udp.ts` in this folder)
 * use it; the library modules never do.
 *
 * ```ts
 * import { EXIT, fileError } from "./common.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(EXIT.usage, 2);
 * assert.equal(
 *   fileError('read --ca file "ca.pem"', new Deno.errors.NotFound("os error 2")),
 *   'Cannot read --ca file "ca.pem" as it does not exist: check the path',
 * );
 * ```
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };
import { formatHostPort } from "../_defaults.ts";
import { UsageError } from "./flags.ts";
import { HexDump, openDumpSink } from "./hex_dump.ts";

/**
 * The exit codes of both programs, documented in their `--help`:
 * `0` done, `1` a runtime failure (cannot listen, cannot connect, the
 * connection failed after it started, a file named by a flag cannot be read),
 * `2` bad usage, `130` / `143` a second SIGINT / SIGTERM (128 + the signal's
 * number, as shells report a death by signal).
 */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

/** The text of the exit-code paragraph in both programs' `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0    done (the server: stopped after SIGINT or SIGTERM)
  1    runtime failure: cannot listen or connect, the connection failed
       after it started, a file named by a flag cannot be read
  2    bad usage: unknown flag, bad value, conflicting flags
  130  a second Ctrl-C (SIGINT) ended the program at once (143: SIGTERM)`;

/** Deno's flag for each kind of permission, short form first. */
const PERMISSION_FLAGS: Record<string, [string, string]> = {
  net: ["-N", "--allow-net"],
  read: ["-R", "--allow-read"],
  write: ["-W", "--allow-write"],
  env: ["-E", "--allow-env"],
  sys: ["-S", "--allow-sys"],
  run: ["", "--allow-run"],
  ffi: ["", "--allow-ffi"],
  import: ["", "--allow-import"],
};

/**
 * Says which permission a `Deno.errors.NotCapable` error is about and how to
 * grant it, from the error's own text (`Requires net access to "host:port"`).
 *
 * @param error The error.
 * @returns For example `net access to "127.0.0.1:9990" is not allowed: run
 * again with -N or --allow-net=127.0.0.1:9990`, or `undefined` when `error`
 * is not a permission error.
 *
 * @example
 * ```ts
 * import { permissionHint } from "./common.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new Deno.errors.NotCapable(
 *   'Requires run access to "tr", run again with the --allow-run flag',
 * );
 * assert.equal(
 *   permissionHint(error),
 *   'run access to "tr" is not allowed: run again with --allow-run or --allow-run=tr',
 * );
 * ```
 */
export function permissionHint(error: unknown): string | undefined {
  if (!(error instanceof Deno.errors.NotCapable)) return undefined;
  const match = error.message.match(/Requires (\w+) access(?: to "([^"]*)")?/);
  const kind = match?.[1];
  const flags = kind === undefined ? undefined : PERMISSION_FLAGS[kind];
  if (!kind || !flags) {
    return `a permission is missing: ${error.message}`;
  }
  const [short, long] = flags;
  const target = match?.[2];
  const scoped = target ? ` or ${long}=${target}` : "";
  return `${kind} access${
    target ? ` to "${target}"` : ""
  } is not allowed: run again with ${short || long}${
    scoped || (short ? ` (${long})` : "")
  }`;
}

/**
 * One line for an error: its message, or with `verbose` its stack. Errors
 * with a `cause` name it (`...: caused by ...`) only in verbose mode.
 *
 * @param error What went wrong.
 * @param verbose Whether to add the stack.
 * @returns The text to print after `error: `.
 */
export function errorText(error: unknown, verbose = false): string {
  if (!(error instanceof Error)) return String(error);
  if (!verbose) return error.message;
  let text = error.stack ?? `${error.name}: ${error.message}`;
  if (error.cause !== undefined) {
    text += `\ncaused by: ${errorText(error.cause, true)}`;
  }
  return text;
}

/**
 * Writes `error: <message>` on stderr, one line (a stack follows only with
 * `verbose`).
 *
 * @param message The message.
 */
export function printError(message: string): void {
  console.error(`error: ${message}`);
}

/** A runtime failure with its one-line message: exit code 1. */
export class ProgramError extends Error {}

/**
 * `Cannot <action> as <why>` for a file system error.
 *
 * @param action What failed, such as `read --ca file "ca.pem"`.
 * @param error The error of the file system call.
 * @returns One line naming the permission, the path or the cause.
 */
export function fileError(action: string, error: unknown): string {
  const hint = permissionHint(error);
  if (hint) return `Cannot ${action} as ${hint}`;
  if (error instanceof Deno.errors.NotFound) {
    return `Cannot ${action} as it does not exist: check the path`;
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return `Cannot ${action} as the system denies access: check its permissions`;
  }
  if (error instanceof Deno.errors.IsADirectory) {
    return `Cannot ${action} as it is a directory: name a file`;
  }
  return `Cannot ${action}: ${error instanceof Error ? error.message : error}`;
}

/** What {@linkcode runProgram} needs of a program. */
export interface Program<Flags extends { udp: boolean; verbose: boolean }> {
  /** `client` or `server`, for `--version`. */
  name: string;
  /** The `--help` text. */
  usage: string;
  /** Parses the command line; throws a {@linkcode UsageError}. */
  parse(args: string[]): Flags | "help" | "version";
  /** Runs over TCP (or TLS, or a Unix socket); resolves to the exit code. */
  tcp(flags: Flags): Promise<number>;
  /** Runs over UDP; resolves to the exit code. */
  udp(flags: Flags): Promise<number>;
}

/**
 * The part both programs share: parse, answer `--help` and `--version`,
 * run, and turn every error into one line on stderr and an exit code.
 *
 * @param program The program's parser and its two transports.
 * @param args The command line.
 * @returns The exit code.
 */
export async function runProgram<
  Flags extends { udp: boolean; verbose: boolean },
>(program: Program<Flags>, args: string[]): Promise<number> {
  let flags: Flags | "help" | "version";
  try {
    flags = program.parse(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    printError(`${error.message} (see --help)`);
    return EXIT.usage;
  }
  if (flags === "help") {
    console.log(program.usage);
    return EXIT.ok;
  }
  if (flags === "version") {
    console.log(versionLine(program.name));
    return EXIT.ok;
  }
  try {
    return flags.udp ? await program.udp(flags) : await program.tcp(flags);
  } catch (error) {
    if (error instanceof ProgramError) {
      printError(
        flags.verbose && error.cause !== undefined
          ? `${error.message}\n${errorText(error.cause, true)}`
          : error.message,
      );
    } else {
      printError(errorText(error, flags.verbose));
    }
    return EXIT.failure;
  }
}

/**
 * The `--version` line.
 *
 * @param program `client` or `server`.
 * @returns For example `client 0.2.0 (@x/sock, Deno 2.9.6)`.
 */
export function versionLine(program: string): string {
  return `${program} ${denoJson.version} (${denoJson.name}, Deno ${Deno.version.deno})`;
}

/**
 * Writes an address as people type it: `127.0.0.1:9990`, `[::1]:9990`,
 * `unix:/path`.
 *
 * @param addr The address.
 * @returns The text.
 */
export function formatAddr(addr: Deno.Addr): string {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    return formatHostPort(addr.hostname, addr.port);
  }
  const { path } = addr as Deno.UnixAddr;
  return path ? `unix:${path}` : "unix client";
}

/**
 * Handles SIGINT and SIGTERM: the first calls `first`, a second one of
 * either exits at once with 130 (SIGINT) or 143 (SIGTERM).
 *
 * @param first What the first signal does (a graceful stop).
 * @param log Where to say that the program exits at once.
 * @returns Removes the handlers.
 */
export function onSignals(
  first: (name: "SIGINT" | "SIGTERM") => void,
  log: (line: string) => void = (line) => console.error(line),
): () => void {
  let count = 0;
  const handlers = (["SIGINT", "SIGTERM"] as const).map((name) => {
    const handler = () => {
      if (count++ > 0) {
        log(`Exiting at once on a second signal (${name})`);
        Deno.exit(EXIT[name]);
      }
      first(name);
    };
    Deno.addSignalListener(name, handler);
    return [name, handler] as const;
  });
  return () => {
    for (const [name, handler] of handlers) {
      Deno.removeSignalListener(name, handler);
    }
  };
}

/**
 * Reads a file named by a flag, or fails with a message naming the flag.
 *
 * @param flag The flag, for the message (`--ca`).
 * @param file The path given.
 * @returns The text.
 * @throws {ProgramError} When the file cannot be read.
 */
export async function readFlagFile(
  flag: string,
  file: string,
): Promise<string> {
  try {
    return await Deno.readTextFile(file);
  } catch (error) {
    throw new ProgramError(fileError(`read ${flag} file "${file}"`, error), {
      cause: error,
    });
  }
}

/**
 * Opens the `--hex-dump` file, or stderr for "-".
 *
 * @param file The path given.
 * @returns The dump.
 * @throws {ProgramError} When the file cannot be opened.
 */
export async function openHexDumpFile(file: string): Promise<HexDump> {
  try {
    // Not a file's `writable`: it holds writes back until it closes, and a
    // dump is for reading (`tail -f`) while the program runs.
    return new HexDump(await openDumpSink(file));
  } catch (error) {
    throw new ProgramError(
      fileError(`write --hex-dump file "${file}"`, error),
      {
        cause: error,
      },
    );
  }
}

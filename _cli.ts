/**
 * The command-line layer shared by the client and server programs: flag
 * parsing on `node:util` `parseArgs`, one message style, one set of exit
 * codes, durations with units, permission hints and `--version`.
 *
 * Private: the programs (`_client_cli.ts`, `_server_cli.ts`, `_udp_cli.ts`)
 * use it; the library modules never do.
 *
 * ```ts
 * import { parseDuration, parseFlags } from "./_cli.ts";
 * import assert from "node:assert/strict";
 *
 * const { values, positionals } = parseFlags(["-q", "500ms", "example.com"], {
 *   "quit-after-eof": { type: "string", short: "q" },
 * });
 * assert.equal(parseDuration("--quit-after-eof", values["quit-after-eof"] as string), 500);
 * assert.deepEqual(positionals, ["example.com"]);
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import denoJson from "./deno.json" with { type: "json" };

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

/** A mistake in the command line: exit code 2, one line on stderr. */
export class UsageError extends Error {
  /**
   * Creates the error.
   *
   * @param message What is wrong, in the house style.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One flag of a program. */
export interface FlagSpec {
  /** A string flag takes a value; a boolean flag takes none. */
  type: "string" | "boolean";
  /** The one-letter form, without the dash. */
  short?: string;
  /** Whether the flag may be given more than once (values are collected). */
  multiple?: boolean;
}

/** What {@linkcode parseFlags} found. */
export interface ParsedFlags {
  /** Flag values by long name; `string[]` for `multiple` flags. */
  values: Record<string, string | boolean | string[] | undefined>;
  /** The arguments that are not flags, in order. */
  positionals: string[];
  /** `-h` / `--help` was given: print the help, whatever else is wrong. */
  help: boolean;
  /** `--version` was given. */
  version: boolean;
}

/**
 * Parses `args` against `spec` (plus `-h, --help` and `--version`), with
 * errors in the house style instead of `parseArgs`' own. A string flag takes
 * the next argument as its value even when it starts with a dash, so `-p -1`
 * is reported as a bad port rather than as an ambiguity. A flag that is not
 * `multiple` may be given once.
 *
 * @param args The command line, without the program.
 * @param spec The flags, by long name.
 * @returns The values; `help` or `version` set means nothing else was
 * checked.
 * @throws {UsageError} On an unknown flag, a missing or unexpected value, or a
 * repeated flag.
 */
export function parseFlags(
  args: string[],
  spec: Record<string, FlagSpec>,
): ParsedFlags {
  const options = {
    ...spec,
    help: { type: "boolean", short: "h" },
    version: { type: "boolean" },
  } as Record<string, FlagSpec>;
  const { tokens } = parseArgs({
    args,
    options,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const result: ParsedFlags = {
    values: {},
    positionals: [],
    help: false,
    version: false,
  };
  let firstError: UsageError | undefined;
  const fail = (message: string) => firstError ??= new UsageError(message);
  for (const token of tokens) {
    if (token.kind === "positional") {
      result.positionals.push(token.value);
      continue;
    }
    if (token.kind !== "option") continue;
    const { name, rawName } = token;
    const flag = Object.hasOwn(options, name) ? options[name] : undefined;
    if (flag === undefined) {
      fail(
        `Cannot parse ${rawName} as it is not a known flag: current value is "${
          args[token.index]
        }"`,
      );
      continue;
    }
    const long = `--${name}`;
    if (name === "help") result.help = true;
    if (name === "version") result.version = true;
    if (flag.type === "boolean") {
      if (token.value !== undefined) {
        fail(
          `Cannot parse ${long} as it takes no value: current value is "${token.value}"`,
        );
      }
      if (result.values[name] !== undefined && !flag.multiple) {
        fail(`Cannot parse ${long} as it may be given once: it is given twice`);
      }
      result.values[name] = true;
      continue;
    }
    if (token.value === undefined) {
      fail(`Cannot parse ${long} as it needs a value: current value is none`);
      continue;
    }
    if (flag.multiple) {
      const list = (result.values[name] ?? []) as string[];
      list.push(token.value);
      result.values[name] = list;
    } else if (result.values[name] !== undefined) {
      fail(
        `Cannot parse ${long} as it may be given once: current values are "${
          result.values[name]
        }" and "${token.value}"`,
      );
    } else {
      result.values[name] = token.value;
    }
  }
  if (result.help || result.version) return result;
  if (firstError) throw firstError;
  return result;
}

/**
 * Reads an integer flag value.
 *
 * @param flag The flag, for the message (`--port`).
 * @param text The value as typed.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @returns The number.
 * @throws {UsageError} When it is not a whole decimal number in range.
 */
export function parseInteger(
  flag: string,
  text: string,
  min: number,
  max: number = Number.MAX_SAFE_INTEGER,
): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER
      ? `of at least ${min}`
      : `from ${min} to ${max}`;
    throw new UsageError(
      `Cannot parse ${flag} as it must be an integer ${range}: current value is "${text}"`,
    );
  }
  return value;
}

/** The longest duration a timer can hold: 2^31 - 1 ms (about 24.8 days). */
export const MAX_DURATION = 2 ** 31 - 1;

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Reads a duration: a number with a unit (`500ms`, `30s`, `2m`, `1h`) or a
 * bare number of seconds (`0.5`), as netcat reads its timeouts.
 *
 * @param flag The flag, for the message (`--idle-timeout`).
 * @param text The value as typed.
 * @returns Milliseconds, rounded to a whole number.
 * @throws {UsageError} When it is not a duration, or above 2^31 - 1 ms.
 *
 * @example
 * ```ts
 * import { parseDuration } from "./_cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseDuration("-i", "2m"), 120_000);
 * assert.equal(parseDuration("-i", "1.5"), 1500);
 * assert.throws(() => parseDuration("-i", "soon"), /current value is "soon"/);
 * ```
 */
export function parseDuration(flag: string, text: string): number {
  const match = text.match(/^(\d+(?:\.\d+)?|\.\d+)(ms|s|m|h)?$/);
  if (!match) {
    throw new UsageError(
      `Cannot parse ${flag} as it must be a duration such as 500ms, 30s or 2m (a bare number is seconds): current value is "${text}"`,
    );
  }
  const ms = Math.round(Number(match[1]) * UNITS[match[2] ?? "s"]!);
  if (ms > MAX_DURATION) {
    throw new UsageError(
      `Cannot parse ${flag} as it must be at most 596h (2^31 - 1 ms): current value is "${text}"`,
    );
  }
  return ms;
}

/**
 * Writes a duration in milliseconds as the flags take it (`500ms`, `30s`,
 * `2m`).
 *
 * @param ms Milliseconds.
 * @returns The shortest exact form.
 */
export function formatDuration(ms: number): string {
  for (const unit of ["h", "m", "s"] as const) {
    if (ms >= UNITS[unit]! && ms % UNITS[unit]! === 0) {
      return `${ms / UNITS[unit]!}${unit}`;
    }
  }
  return `${ms}ms`;
}

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
 * import { permissionHint } from "./_cli.ts";
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
export class Failure extends Error {}

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
    if (error instanceof Failure) {
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
    return addr.hostname.includes(":")
      ? `[${addr.hostname}]:${addr.port}`
      : `${addr.hostname}:${addr.port}`;
  }
  const { path } = addr as Deno.UnixAddr;
  return path ? `unix:${path}` : "unix client";
}

/**
 * Splits a command line into words as a shell would for simple cases:
 * whitespace separates, `'...'` and `"..."` quote, `\` escapes the next
 * character (outside single quotes). No variables, globs or pipes.
 *
 * @param flag The flag, for the message (`--exec`).
 * @param text The command line.
 * @returns The program and its arguments.
 * @throws {UsageError} When it is empty or a quote is not closed.
 *
 * @example
 * ```ts
 * import { splitCommand } from "./_cli.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitCommand("-e", `tr 'a-z' "A-Z"`), ["tr", "a-z", "A-Z"]);
 * ```
 */
export function splitCommand(flag: string, text: string): string[] {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  let quote: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (quote === "'") {
      if (char === "'") quote = undefined;
      else word += char;
    } else if (char === "\\" && i + 1 < text.length) {
      word += text[++i];
      inWord = true;
    } else if (quote === '"') {
      if (char === '"') quote = undefined;
      else word += char;
    } else if (char === "'" || char === '"') {
      quote = char;
      inWord = true;
    } else if (/\s/.test(char)) {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += char;
      inWord = true;
    }
  }
  if (quote) {
    throw new UsageError(
      `Cannot parse ${flag} as its ${quote} quote is not closed: current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  if (inWord) words.push(word);
  if (words.length === 0) {
    throw new UsageError(
      `Cannot parse ${flag} as it must name a program to run: current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  return words;
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
 * Turns each line feed not already preceded by a carriage return into CR LF
 * (the client's `-C, --crlf`), across chunk boundaries.
 *
 * @example
 * ```ts
 * import { CrlfStream } from "./_cli.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = ["a\n", "b\r", "\nc\n"].map((s) => new TextEncoder().encode(s));
 * const out = ReadableStream.from(chunks).pipeThrough(new CrlfStream());
 * assert.equal(await new Response(out).text(), "a\r\nb\r\nc\r\n");
 * ```
 */
export class CrlfStream extends TransformStream<Uint8Array, Uint8Array> {
  /** Creates the stream. */
  constructor() {
    let lastWasCr = false;
    super({
      transform(chunk, controller) {
        let extra = 0;
        for (let i = 0; i < chunk.length; i++) {
          if (
            chunk[i] === 0x0a && !(i === 0 ? lastWasCr : chunk[i - 1] === 0x0d)
          ) {
            extra++;
          }
        }
        if (chunk.length === 0) return;
        if (extra === 0) {
          lastWasCr = chunk[chunk.length - 1] === 0x0d;
          controller.enqueue(chunk);
          return;
        }
        const out = new Uint8Array(chunk.length + extra);
        let j = 0;
        for (let i = 0; i < chunk.length; i++) {
          const byte = chunk[i]!;
          if (byte === 0x0a && !(i === 0 ? lastWasCr : chunk[i - 1] === 0x0d)) {
            out[j++] = 0x0d;
          }
          out[j++] = byte;
        }
        lastWasCr = chunk[chunk.length - 1] === 0x0d;
        controller.enqueue(out);
      },
    });
  }
}

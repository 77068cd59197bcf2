/**
 * Command-line flags of the programs: parsing on `node:util` `parseArgs`
 * with errors in the house style, integers, durations with units, and
 * command lines split as a shell does for simple quoting.
 *
 * ```ts
 * import { parseDuration, parseFlags } from "./flags.ts";
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
import { MAX_TIMER_DELAY } from "../_defaults.ts";

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
 * @param hints What to say about flags the program does not know but a
 * netcat user may type (`-l`, `-k`, ...), by the flag as typed.
 * @returns The values; `help` or `version` set means nothing else was
 * checked.
 * @throws {UsageError} On an unknown flag, a missing or unexpected value, or a
 * repeated flag.
 */
export function parseFlags(
  args: string[],
  spec: Record<string, FlagSpec>,
  hints: Record<string, string> = {},
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
      const hint = Object.hasOwn(hints, rawName) ? `; ${hints[rawName]}` : "";
      fail(
        `Cannot parse ${rawName} as it is not a known flag: current value is "${
          args[token.index]
        }"${hint}`,
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
 * import { parseDuration } from "./flags.ts";
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
  if (ms > MAX_TIMER_DELAY) {
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
 * import { splitCommand } from "./flags.ts";
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

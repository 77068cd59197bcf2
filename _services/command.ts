/**
 * Commands for the exec service: {@linkcode parseCommand} splits a command
 * line without a shell, and the checks and errors that say what to do when
 * a program cannot run.
 *
 * ```ts
 * import { parseCommand } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseCommand("echo 'a b'"), ["echo", "a b"]);
 * ```
 *
 * @module
 */

/**
 * Splits a command line into the program and its arguments, without a
 * shell: words are separated by blanks; `'...'` keeps everything inside as
 * it is; `"..."` keeps everything but `\"` and `\\`, which stand for `"`
 * and `\`; outside quotes, `\` makes the next character ordinary. There is
 * no expansion of variables, `~` or globs.
 *
 * @param text The command line.
 * @returns The words, at least one.
 * @throws {SyntaxError} When a quote is not closed or the text ends in `\`.
 * @throws {TypeError} When the text holds no word.
 *
 * @example Split a command line
 * ```ts
 * import { parseCommand } from "@x/sock/services";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseCommand("tr a-z A-Z"), ["tr", "a-z", "A-Z"]);
 * assert.deepEqual(
 *   parseCommand(`grep -e 'two words' "say \\"hi\\"" a\\ b ""`),
 *   ["grep", "-e", "two words", 'say "hi"', "a b", ""],
 * );
 * ```
 */
export function parseCommand(text: string): string[] {
  if (typeof text !== "string") {
    throw new TypeError(
      `Cannot parse command as it must be a string: current type is ${typeof text}`,
    );
  }
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const char = text[i]!;
    if (char === " " || char === "\t" || char === "\n" || char === "\r") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
      continue;
    }
    inWord = true;
    if (char === "'" || char === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== char) {
        if (char === '"' && text[end] === "\\" && end + 1 < text.length) {
          const next = text[end + 1];
          if (next === '"' || next === "\\") {
            word += next;
            end += 2;
            continue;
          }
        }
        word += text[end];
        end++;
      }
      if (end >= text.length) {
        throw new SyntaxError(
          `Cannot parse command as a ${char} quote is not closed: current value is ${
            JSON.stringify(text)
          }`,
        );
      }
      i = end;
    } else if (char === "\\") {
      if (i + 1 >= text.length) {
        throw new SyntaxError(
          `Cannot parse command as it ends in a backslash: current value is ${
            JSON.stringify(text)
          }`,
        );
      }
      word += text[++i];
    } else {
      word += char;
    }
  }
  if (inWord) words.push(word);
  if (words.length === 0) {
    throw new TypeError(
      `Cannot parse command as it holds no program name: current value is ${
        JSON.stringify(text)
      }`,
    );
  }
  return words;
}

/** Checks and copies a command given as a string or an array. */
export function toArgv(command: string | readonly string[]): string[] {
  if (typeof command === "string") return parseCommand(command);
  if (
    !Array.isArray(command) || command.length === 0 ||
    command.some((word) => typeof word !== "string") || command[0] === ""
  ) {
    throw new TypeError(
      `Cannot run command as it must be a program name and arguments, all strings: current value is ${
        Array.isArray(command)
          ? JSON.stringify(command)
          : Object.prototype.toString.call(command)
      }`,
    );
  }
  return [...command];
}

function permissionMessage(program: string): string {
  return `Cannot run '${program}' as run permission is missing: run again with --allow-run=${program} or --allow-run`;
}

/** Fails at once unless running `program` is allowed without a prompt. */
export function checkRunPermission(program: string): void {
  let state: Deno.PermissionState;
  try {
    state = Deno.permissions.querySync({ name: "run", command: program })
      .state;
  } catch {
    return; // cannot tell (an odd name): spawning will say
  }
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(permissionMessage(program));
  }
}

/**
 * Fails at once when `program` is not found, without running it: a name is
 * looked up on the PATH by a spawn that cannot start (its working
 * directory cannot exist, and Deno resolves the name before it looks at the
 * directory); a path is looked at when reading it is allowed. When it
 * cannot tell, it says nothing: spawning will.
 *
 * @param program The program, as given.
 * @param cwd The working directory the program will run in, if not ours.
 * @throws {Deno.errors.NotFound} When the program is not found.
 */
export function checkProgramFound(program: string, cwd?: string): void {
  if (program.includes("/")) {
    if (cwd !== undefined && !program.startsWith("/")) return;
    try {
      if (
        Deno.permissions.querySync({ name: "read", path: program }).state !==
          "granted"
      ) return;
      Deno.statSync(program);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) {
        throw spawnError(program, error);
      }
    }
    return;
  }
  try {
    // Under a file, so it can never exist: nothing is ever started.
    const child = new Deno.Command(program, {
      cwd: "/dev/null/sock-probe",
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    // Not expected; should a runtime start it anyway, stop it.
    child.kill("SIGKILL");
    child.status.catch(() => {});
  } catch (error) {
    if (
      error instanceof Deno.errors.NotFound && !/cwd/i.test(error.message)
    ) {
      throw spawnError(program, error);
    }
  }
}

/** A spawn error with a message that says what to do. */
export function spawnError(program: string, error: unknown): unknown {
  if (error instanceof Deno.errors.NotCapable) {
    return new Deno.errors.NotCapable(permissionMessage(program), {
      cause: error,
    });
  }
  if (error instanceof Deno.errors.NotFound) {
    return new Deno.errors.NotFound(
      `Cannot run '${program}' as the program was not found: check its name, its PATH or its working directory`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new Deno.errors.PermissionDenied(
      `Cannot run '${program}' as the system denied it: check that it is an executable file`,
      { cause: error },
    );
  }
  return error;
}

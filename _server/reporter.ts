/**
 * How the server reports errors to `onError`: straight, or rate-limited by
 * kind (refusals, accept failures), so that a flood of bad clients cannot
 * flood the log.
 *
 * @module
 */

import { formatHostPort } from "../_defaults.ts";
import {
  FrameTooLargeError,
  isNetworkError,
  TruncatedFrameError,
} from "../_errors.ts";
import type { ServeConnectionOptions } from "./options.ts";
import type { ConnectionInfo } from "./types.ts";

const DENO_ERRORS = Object.values(Deno.errors);

/**
 * Whether an error comes from a peer, the network or the server's own
 * checks (a reset, an oversized frame, a refusal), rather than from a bug:
 * such errors are worth one line, not a stack.
 */
function isPeerError(error: unknown): error is Error {
  return isNetworkError(error) ||
    error instanceof FrameTooLargeError ||
    error instanceof TruncatedFrameError ||
    error instanceof SyntaxError ||
    error instanceof RangeError ||
    DENO_ERRORS.some((type) => error instanceof type);
}

/**
 * The default `onError`: one line for a peer's or the network's error,
 * naming the client; the whole error, stack included, for anything else.
 */
export function defaultOnError(error: unknown, info?: ConnectionInfo): void {
  if (!isPeerError(error)) {
    console.error(error);
    return;
  }
  const addr = info?.remoteAddr;
  const client = addr === undefined
    ? ""
    : ` (client ${
      "hostname" in addr
        ? formatHostPort(addr.hostname, addr.port)
        : "a unix client"
    }, #${info!.id})`;
  console.error(`${error.name}: ${error.message}${client}`);
}

/** The window of rate-limited reports, in milliseconds. */
const REPORT_WINDOW = 1000;
/** How many reports of a kind a window shows one by one. */
const REPORT_BURST = 5;

/** A report that is held back while others of its kind are too frequent. */
interface Limiter {
  /** When the current window started, and how many it reported. */
  start: number;
  reported: number;
  skipped: number;
  timer?: ReturnType<typeof setTimeout>;
  make?: (suffix: string) => unknown;
}

/** Reports errors to the `onError` hook of `hooks`, or to the console. */
export class Reporter {
  #hooks: Pick<ServeConnectionOptions, "onError">;
  #limiters = new Map<string, Limiter>();

  constructor(hooks: Pick<ServeConnectionOptions, "onError">) {
    this.#hooks = hooks;
  }

  report(error: unknown, info?: ConnectionInfo): void {
    try {
      const onError = this.#hooks.onError;
      if (onError) onError.call(this.#hooks, error, info);
      else defaultOnError(error, info);
    } catch { /* see ServeOptions.onError */ }
  }

  /**
   * Reports at most {@linkcode REPORT_BURST} errors of a kind per window;
   * at the end of a window in which some were held back, the last of them,
   * saying how many.
   */
  reportLimited(
    kind: string,
    make: (suffix: string) => unknown,
    info?: ConnectionInfo,
  ): void {
    const now = performance.now();
    let limiter = this.#limiters.get(kind);
    if (!limiter) {
      limiter = { start: now, reported: 0, skipped: 0 };
      this.#limiters.set(kind, limiter);
    }
    if (limiter.timer === undefined && now - limiter.start >= REPORT_WINDOW) {
      limiter.start = now;
      limiter.reported = 0;
    }
    if (limiter.reported < REPORT_BURST) {
      limiter.reported++;
      this.report(make(""), info);
      return;
    }
    limiter.skipped++;
    limiter.make = make;
    limiter.timer ??= setTimeout(
      () => this.#flushLimiter(limiter!),
      Math.max(1, REPORT_WINDOW - (now - limiter.start)),
    );
  }

  #flushLimiter(limiter: Limiter): void {
    clearTimeout(limiter.timer);
    limiter.timer = undefined;
    if (limiter.skipped === 0) return;
    const skipped = limiter.skipped;
    limiter.skipped = 0;
    limiter.start = performance.now();
    limiter.reported = 1;
    this.report(
      limiter.make!(
        ` (the last of ${skipped} like it in ${REPORT_WINDOW} ms not reported one by one)`,
      ),
    );
  }

  /** Reports what each kind held back, at once. */
  flush(): void {
    for (const limiter of this.#limiters.values()) this.#flushLimiter(limiter);
  }
}

/**
 * How the server reports errors to `onError`: straight, or rate-limited by
 * kind (refusals, accept failures), so that a flood of bad clients cannot
 * flood the log.
 *
 * @module
 */

import type { ServeConnectionOptions } from "./options.ts";
import type { ConnectionInfo } from "./types.ts";

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
      else console.error(error);
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

/**
 * What the message benchmarks (`framed_bench.ts`, `redis_bench.ts`,
 * `flood_bench.ts`) share: their flag checks, their statistics, the CPU time
 * of a server process and the end of one.
 *
 * @module
 */

/** A positive integer flag, or `fallback`; a `RangeError` naming the flag. */
export function count(
  name: string,
  value: string | undefined,
  fallback: number,
): number {
  const n = Number(value ?? fallback);
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(
      `Cannot run the benchmark as --${name} must be a positive integer: current value is ${value}`,
    );
  }
  return n;
}

/** The median of `values`. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[middle]!
    : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

/** Ratios as "median× (min–max)". */
export function spread(values: number[]): string {
  return `${median(values).toFixed(2)}× (${Math.min(...values).toFixed(2)}–${
    Math.max(...values).toFixed(2)
  })`;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

/**
 * CPU seconds process `pid` has used so far, all its threads. Read through
 * `cat`: Deno wants --allow-all to read /proc/<pid> itself.
 */
export function cpuSeconds(pid: number): number {
  const stat = new TextDecoder().decode(
    new Deno.Command("cat", { args: [`/proc/${pid}/stat`] }).outputSync()
      .stdout,
  );
  // Fields 14 and 15 (utime, stime), counted after the command's ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/**
 * Waits for `child` to exit, and kills it (SIGKILL) if it has not within
 * `ms`: what every benchmark does after asking a server to end.
 */
export async function exited(
  child: Deno.ChildProcess,
  ms: number,
): Promise<void> {
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
  }, ms);
  await child.status;
  clearTimeout(timer);
}

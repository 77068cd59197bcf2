/**
 * Memory under a flood: peers that send small requests as fast as the server
 * takes them and never read the answers (`bench/_flood_load.mjs`, inline
 * `PING\r\n`, which a line server and the Redis protocol both answer). A
 * server must stop reading once its answers cannot leave; what it holds by
 * then is what each such peer costs it. Each path is measured against the
 * hand-written loop of its protocol, in the same round.
 *
 * ```sh
 * deno run -N -R --allow-run bench/flood_bench.ts [--rounds 3] [--conns 8]
 * ```
 *
 * Each round starts a fresh server process per path (`bench/_server.ts`,
 * with `--expose-gc`, pinned to CPU 1) and floods it from CPU 0 with
 * `--conns` connections until each one's writes have waited a second for
 * room (or 256 MiB went through). Then, while the peers hold their
 * connections open, the server runs a full garbage collection and reports
 * its memory: the growth of V8's used heap plus its external memory (the
 * buffers) is what the stalled connections keep alive; the growth of the
 * resident set (VmRSS) also counts what the flood left behind (heap grown
 * for garbage, freed memory the allocator keeps). A cell gives KiB per
 * connection, median and spread over the rounds, and the ratio to the
 * loop's.
 *
 * Flags: `--rounds N` (3), `--conns N` (8), `--kinds a,b` (all), `--no-pin`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { count, exited, median } from "./_harness.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    rounds: { type: "string" },
    conns: { type: "string" },
    kinds: { type: "string" },
    "no-pin": { type: "boolean", default: false },
  },
});

const rounds = count("rounds", flags.rounds, 3);
const conns = count("conns", flags.conns, 8);
const pin = !flags["no-pin"];

/** Each path, with the hand-written loop of its protocol. */
const PATHS = [
  { kind: "bare-lines", baseline: "bare-lines", label: "lines: loop" },
  {
    kind: "lines-framed",
    baseline: "bare-lines",
    label: "lines: framed(lines()), for await + m.write()",
  },
  {
    kind: "lines-framed-batch",
    baseline: "bare-lines",
    label: "lines: framed(lines(), { batch: true })",
  },
  {
    kind: "lines-chain",
    baseline: "bare-lines",
    label: "lines: serve(chain(LineDecoder, answer))",
  },
  {
    kind: "lines-stream",
    baseline: "bare-lines",
    label: "lines: serve(user TransformStream)",
  },
  { kind: "redis-loop", baseline: "redis-loop", label: "Redis: loop" },
  {
    kind: "redis",
    baseline: "redis-loop",
    label: "Redis: examples/redis_server.ts",
  },
];
const wanted = flags.kinds?.split(",");
for (const kind of wanted ?? []) {
  if (!PATHS.some((path) => path.kind === kind)) {
    throw new RangeError(
      `Cannot run the benchmark as --kinds must name known paths: current value is '${kind}' (known: ${
        PATHS.map((path) => path.kind).join(", ")
      })`,
    );
  }
}
const paths = PATHS.filter((path) =>
  wanted === undefined || wanted.includes(path.kind) ||
  wanted.some((kind) =>
    PATHS.find((other) => other.kind === kind)?.baseline === path.kind
  )
);

const pinned = (cpu: number, command: string[]) =>
  pin ? ["taskset", "-c", `${cpu}`, ...command] : command;

/** A child process talking in JSON lines: its stdin and its stdout. */
class Child implements AsyncDisposable {
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: ReadableStreamDefaultReader<string>;
  #text = "";

  constructor(command: string[]) {
    this.#child = new Deno.Command(command[0]!, {
      args: command.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
  }

  /** The next JSON line, within `ms`. */
  async next<T>(what: string, ms = 90_000): Promise<T> {
    const timer = setTimeout(() => this.#lines.cancel(), ms);
    try {
      while (!this.#text.includes("\n")) {
        const { done, value } = await this.#lines.read();
        if (done) throw new Error(`${what}: no answer (ended, or ${ms} ms)`);
        this.#text += value;
      }
    } finally {
      clearTimeout(timer);
    }
    const lf = this.#text.indexOf("\n");
    const line = this.#text.slice(0, lf);
    this.#text = this.#text.slice(lf + 1);
    return JSON.parse(line) as T;
  }

  async say(line: string): Promise<void> {
    await this.#stdin.write(new TextEncoder().encode(`${line}\n`));
  }

  /** Ends its stdin, and waits for it to exit. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#stdin.close().catch(() => {});
    await exited(this.#child, 10_000);
    await this.#lines.cancel().catch(() => {});
  }
}

/** What `_server.ts` says of its memory, in KiB. */
interface Stats {
  rss: number;
  heapUsed: number;
  external: number;
  open: number;
}

interface Result {
  /** KiB per stalled connection: live (heap + external), resident. */
  live: number;
  rss: number;
  /** MiB each peer got in before the server stopped reading. */
  sent: number;
}

async function measure(kind: string): Promise<Result> {
  await using server = new Child(pinned(1, [
    Deno.execPath(),
    "run",
    "-N",
    "--v8-flags=--expose-gc",
    new URL("./_server.ts", import.meta.url).pathname,
    "--kind",
    kind,
  ]));
  const hello = await server.next<{ port?: number; error?: string }>(
    `${kind}: start`,
  );
  if (hello.error) throw new Error(`${kind}: ${hello.error}`);
  const stats = async () => {
    await server.say("gc");
    await server.next(`${kind}: gc`);
    await server.say("stats");
    return await server.next<Stats>(`${kind}: stats`);
  };
  const before = await stats();
  await using load = new Child(pinned(0, [
    "node",
    new URL("./_flood_load.mjs", import.meta.url).pathname,
    `${hello.port}`,
    `${conns}`,
  ]));
  const flood = await load.next<{ sent: number[]; stalled: number }>(
    `${kind}: the flood`,
  );
  if (flood.stalled !== conns) {
    throw new Error(
      `${kind}: ${flood.stalled} of ${conns} connections stalled (the others sent 256 MiB or failed)`,
    );
  }
  const after = await stats();
  if (after.open !== conns) {
    throw new Error(`${kind}: ${after.open} connections open, not ${conns}`);
  }
  return {
    live: (after.heapUsed + after.external - before.heapUsed -
      before.external) / conns,
    rss: (after.rss - before.rss) / conns,
    sent: median(flood.sent) / 1048576,
  };
}

console.log(
  `flood_bench: ${rounds} round(s), ${conns} flooding connections per server${
    pin ? ", servers on CPU 1, the Node peers on CPU 0" : ", not pinned"
  }`,
);
const results = new Map<string, Result[]>();
const started = performance.now();
for (let round = 1; round <= rounds; round++) {
  const line: string[] = [];
  for (const { kind } of paths) {
    const result = await measure(kind);
    results.set(kind, [...(results.get(kind) ?? []), result]);
    line.push(
      `${kind} ${result.live.toFixed(0)} / ${result.rss.toFixed(0)} KiB`,
    );
  }
  console.log(
    `  round ${round} (live / resident per connection): ${line.join(", ")}`,
  );
}

const kib = (values: number[]) =>
  `${median(values).toFixed(0)} (${Math.min(...values).toFixed(0)}–${
    Math.max(...values).toFixed(0)
  })`;
const ratio = (values: number[], base: number[]) => {
  const ratios = values.map((v, i) => v / base[i]!);
  return `${median(ratios).toFixed(2)}×`;
};
console.log(
  "\n| path | live KiB per connection, after a full GC (min–max) | ÷ the loop's | resident KiB per connection (min–max) | ÷ the loop's | MiB each peer got in |",
);
console.log("|---|---|---|---|---|---|");
for (const { kind, baseline, label } of paths) {
  const mine = results.get(kind)!;
  const base = results.get(baseline)!;
  console.log(
    `| ${label} | ${kib(mine.map((r) => r.live))} | ${
      ratio(mine.map((r) => r.live), base.map((r) => r.live))
    } | ${kib(mine.map((r) => r.rss))} | ${
      ratio(mine.map((r) => r.rss), base.map((r) => r.rss))
    } | ${median(mine.map((r) => r.sent)).toFixed(1)} |`,
  );
}
console.log(
  `\nflood_bench: ${((performance.now() - started) / 1000).toFixed(0)} s`,
);

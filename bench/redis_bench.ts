/**
 * Messages at wire speed, measured with `redis-benchmark`: Redis-protocol
 * servers written with this module against a hand-written Deno loop
 * measured in the same run, and against the real `redis-server`.
 *
 * ```sh
 * deno run -N -R --allow-run bench/redis_bench.ts [--rounds 3] [--quick]
 * ```
 *
 * Servers, each its own process pinned with `taskset -c 1`:
 *
 * - `loop`: the baseline, `bench/_redis_loop.ts` — bare `Deno.listen`, a
 *   1 MiB read buffer, RESP parsed in place, a `Map`, one write per read;
 * - `example`: `examples/redis_server.ts`, the recommended shape
 *   (`for await (const args of messages) await messages.write(...)`);
 * - `streams`: `bench/_redis_streams.ts`, the same codec through
 *   `framed()`'s `readable` and a writer of its `writable`, as 0.2 showed;
 * - `redis-server`, started on a free loopback port with `--save ''
 *   --appendonly no` (skipped, saying why, when it is not installed).
 *
 * Load: `redis-benchmark -q -c 50 -n N -P P -t ping_inline,ping_mbulk,set,get
 * --csv`, pinned with `taskset -c 0`, for P = 1 and 16. Each round runs each
 * test on its own, the baseline first, then the others; a cell is the median of the per-round
 * ratios server / loop with their spread (min–max) and the median
 * requests per second. The next table gives each server against
 * redis-server, the same way. The last one compares the CPU time each
 * server spends per request (from `/proc/<pid>/stat`), which another
 * process busy on the same core does not change, as it changes throughput.
 *
 * Flags: `--rounds N` (3), `--requests N` (-n at -P 1: 100000),
 * `--requests-pipelined N` (-n at higher P: 1000000), `--clients N` (50),
 * `--pipelines 1,16`, `--tests ping_inline,ping_mbulk,set,get`, `--only
 * loop,example,...` (the loop always runs), `--timeout S` (120: the bound
 * on one redis-benchmark run, killed past it), `--v8-flags a,b` (for the
 * Deno servers, e.g. `--perf-basic-prof` for `perf`, or
 * `--prof,--logfile=/tmp/v8.log` for `node --prof-process`), `--no-pin`, `--quick` (tiny
 * sizes, one round: checks the harness, measures nothing).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { count, cpuSeconds, exited, median, spread } from "./_harness.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    rounds: { type: "string" },
    requests: { type: "string" },
    "requests-pipelined": { type: "string" },
    clients: { type: "string" },
    pipelines: { type: "string" },
    tests: { type: "string" },
    only: { type: "string" },
    timeout: { type: "string" },
    "v8-flags": { type: "string" },
    "no-pin": { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
  },
});

const quick = flags.quick;
const rounds = quick ? 1 : count("rounds", flags.rounds, 3);
const requests = quick ? 2000 : count("requests", flags.requests, 100_000);
const requestsPipelined = quick
  ? 20000
  : count("requests-pipelined", flags["requests-pipelined"], 1_000_000);
const clients = count("clients", flags.clients, 50);
const timeout = count("timeout", flags.timeout, 120);
const pipelines = (flags.pipelines ?? "1,16").split(",").map((p) =>
  count("pipelines", p, 1)
);
const tests = (flags.tests ?? "ping_inline,ping_mbulk,set,get").split(",");
const pin = !flags["no-pin"];
const v8Flags = flags["v8-flags"] ? [`--v8-flags=${flags["v8-flags"]}`] : [];

const root = new URL("../", import.meta.url).pathname;

interface Kind {
  name: string;
  what: string;
  /** The program and its arguments, the port last. */
  command(port: number): string[];
  /** What the process prints once it listens. */
  ready: RegExp;
}

const deno = (file: string): Kind["command"] => (port) => [
  Deno.execPath(),
  "run",
  "-N",
  ...v8Flags,
  file,
  `${port}`,
];

const KINDS: Kind[] = [
  {
    name: "loop",
    what: "hand-written Deno loop (bench/_redis_loop.ts)",
    command: deno("bench/_redis_loop.ts"),
    ready: /listening on 127\.0\.0\.1:\d+/,
  },
  {
    name: "example",
    what: "examples/redis_server.ts (for await + write)",
    command: deno("examples/redis_server.ts"),
    ready: /Redis protocol on 127\.0\.0\.1:\d+/,
  },
  {
    name: "streams",
    what: "reader/writer web-stream shape (bench/_redis_streams.ts)",
    command: deno("bench/_redis_streams.ts"),
    ready: /listening on 127\.0\.0\.1:\d+/,
  },
  {
    name: "redis-server",
    what: "redis-server --save '' --appendonly no",
    command: (port) => [
      "redis-server",
      "--port",
      `${port}`,
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--daemonize",
      "no",
    ],
    ready: /Ready to accept connections/,
  },
];

function installed(program: string): boolean {
  try {
    new Deno.Command(program, {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return true;
  } catch {
    return false;
  }
}

if (!installed("redis-benchmark")) {
  console.log(
    "redis_bench: skipped, as redis-benchmark is not installed (apt-get install redis-tools)",
  );
  Deno.exit(0);
}
if (pin && !installed("taskset")) {
  throw new Error(
    "Cannot pin the processes as taskset is missing: install util-linux or pass --no-pin",
  );
}

const only = flags.only?.split(",");
const kinds = KINDS.filter((kind) => {
  if (kind.name !== "loop" && only && !only.includes(kind.name)) return false;
  if (kind.name === "redis-server" && !installed("redis-server")) {
    console.log(
      "redis_bench: redis-server skipped, as it is not installed (apt-get install redis-server)",
    );
    return false;
  }
  return true;
});

/** A free loopback port (free a moment ago: redis-server needs a number). */
function freePort(): number {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  return listener.addr.port;
}

/** A server process, listening. */
class Server implements AsyncDisposable {
  readonly kind: Kind;
  readonly port: number;
  readonly #child: Deno.ChildProcess;

  private constructor(kind: Kind, port: number, child: Deno.ChildProcess) {
    this.kind = kind;
    this.port = port;
    this.#child = child;
  }

  static async start(kind: Kind): Promise<Server> {
    const port = freePort();
    const [program, ...args] = [
      ...(pin ? ["taskset", "-c", "1"] : []),
      ...kind.command(port),
    ];
    const child = new Deno.Command(program!, {
      args,
      cwd: root,
      stdin: "null",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const server = new Server(kind, port, child);
    const output = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let seen = "";
    const timer = setTimeout(() => output.cancel(), 15_000);
    try {
      while (!kind.ready.test(seen)) {
        const { done, value } = await output.read();
        if (done) {
          throw new Error(`${kind.name} ended before listening: ${seen}`);
        }
        seen += value;
      }
    } catch (error) {
      await server[Symbol.asyncDispose]();
      throw error;
    } finally {
      clearTimeout(timer);
    }
    // Keep reading, so that a chatty server never blocks on its stdout.
    (async () => {
      while (!(await output.read()).done) { /* drop */ }
    })().catch(() => {});
    return server;
  }

  /** CPU seconds the process has used so far (all its threads). */
  cpu(): number {
    return cpuSeconds(this.#child.pid);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      // SIGINT: a Deno server started with --cpu-prof writes its profile.
      this.#child.kill("SIGINT");
    } catch { /* already gone */ }
    await exited(this.#child, 5000);
  }
}

/** One redis-benchmark run: requests per second by test name. */
async function load(
  port: number,
  pipeline: number,
  n: number,
  only = tests.join(","),
): Promise<Map<string, number>> {
  const [program, ...args] = [
    ...(pin ? ["taskset", "-c", "0"] : []),
    "redis-benchmark",
    "-h",
    "127.0.0.1",
    "-p",
    `${port}`,
    "-q",
    "-c",
    `${clients}`,
    "-n",
    `${n}`,
    "-P",
    `${pipeline}`,
    "-t",
    only,
    "--csv",
  ];
  const child = new Deno.Command(program!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let killed = false;
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, timeout * 1000);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  if (killed) {
    throw new Error(
      `redis-benchmark ran past --timeout ${timeout} s on port ${port}`,
    );
  }
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(
      `redis-benchmark failed (${code}): ${new TextDecoder().decode(stderr)}`,
    );
  }
  const result = new Map<string, number>();
  for (const match of text.matchAll(/^"([A-Z_]+)","([\d.]+)"/gm)) {
    result.set(match[1]!, Number(match[2]));
  }
  const want = only.split(",").map((t) => t.toUpperCase());
  const missing = want.filter((t) => !result.has(t));
  if (missing.length > 0) {
    throw new Error(`redis-benchmark gave no figure for ${missing}: ${text}`);
  }
  return result;
}

const ratio = spread;
const rate = (values: number[]) => `${(median(values) / 1000).toFixed(0)}k`;

/** rps[kind][pipeline][test] = one figure per round; cpu the same, µs/request. */
const rps = new Map<string, Map<number, Map<string, number[]>>>();
const cpus = new Map<string, Map<number, Map<string, number[]>>>();
function add(
  into: typeof rps,
  kind: string,
  pipeline: number,
  test: string,
  value: number,
) {
  const byP = into.get(kind) ?? new Map<number, Map<string, number[]>>();
  into.set(kind, byP);
  const byTest = byP.get(pipeline) ?? new Map<string, number[]>();
  byP.set(pipeline, byTest);
  byTest.set(test, [...(byTest.get(test) ?? []), value]);
}
function record(
  kind: string,
  pipeline: number,
  figures: Map<string, number>,
  cpu: number,
) {
  for (const [test, value] of figures) {
    add(rps, kind, pipeline, test, value);
    add(cpus, kind, pipeline, test, cpu);
  }
}

const servers: Server[] = [];
const started = performance.now();
try {
  for (const kind of kinds) servers.push(await Server.start(kind));
  console.log(
    `redis_bench: ${rounds} round(s), -c ${clients}, -n ${requests} at -P 1 and ${requestsPipelined} above, -P ${pipelines}, ${tests}${
      pin ? ", servers on CPU 1, redis-benchmark on CPU 0" : ", not pinned"
    }`,
  );
  for (const server of servers) {
    console.log(`  ${server.kind.name}: ${server.kind.what}`);
  }
  // Warm-up: the JIT, and the keys GET reads.
  for (const server of servers) {
    await load(server.port, 16, quick ? 2000 : 200_000);
  }
  // Each test on its own, the servers one after another, so that the
  // figures compared were taken seconds apart, not minutes.
  for (let round = 1; round <= rounds; round++) {
    for (const pipeline of pipelines) {
      const n = pipeline === 1 ? requests : requestsPipelined;
      for (const test of tests) {
        const line: string[] = [];
        for (const server of servers) {
          const before = server.cpu();
          const figures = await load(server.port, pipeline, n, test);
          const cpu = (server.cpu() - before) / n * 1e6;
          record(server.kind.name, pipeline, figures, cpu);
          line.push(
            `${server.kind.name} ${
              (figures.get(test.toUpperCase())! / 1000).toFixed(0)
            }k ${cpu.toFixed(2)} µs`,
          );
        }
        console.log(
          `  round ${round} -P ${pipeline} ${test}: ${line.join(", ")}`,
        );
      }
    }
  }
} finally {
  await Promise.all(servers.map((server) => server[Symbol.asyncDispose]()));
}

/** Per-round ratios of `kind` to `base` in one cell. */
function ratios(kind: string, base: string, pipeline: number, test: string) {
  const a = rps.get(kind)!.get(pipeline)!.get(test)!;
  const b = rps.get(base)!.get(pipeline)!.get(test)!;
  return a.map((value, i) => value / b[i]!);
}

const TESTS = tests.map((t) => t.toUpperCase());
function table(base: string, title: string): void {
  console.log(`\n${title}\n`);
  console.log(`| server | -P | ${TESTS.join(" | ")} |`);
  console.log(`|---|---|${TESTS.map(() => "---|").join("")}`);
  for (const pipeline of pipelines) {
    for (const { kind } of servers) {
      const figures = rps.get(kind.name)!.get(pipeline)!;
      const cells = TESTS.map((test) =>
        kind.name === base
          ? `${rate(figures.get(test)!)} req/s`
          : `${ratio(ratios(kind.name, base, pipeline, test))} ${
            rate(figures.get(test)!)
          }`
      );
      console.log(`| ${kind.name} | ${pipeline} | ${cells.join(" | ")} |`);
    }
  }
}

table(
  "loop",
  "Against the hand-written loop (median of per-round ratios, min–max, median req/s):",
);
if (rps.has("redis-server")) {
  table("redis-server", "Against redis-server, the same way:");
}

// CPU time per request: what each server spends, whatever else the machine
// does meanwhile (throughput drops when another process takes the CPU;
// this does not). A cell: the loop's µs/request over the server's, per
// round (1.00× = as cheap as the loop), and the server's median µs/request.
console.log(
  "\nCPU per request against the loop (loop µs / server µs, per round; median µs/request):\n",
);
console.log(`| server | -P | ${TESTS.join(" | ")} |`);
console.log(`|---|---|${TESTS.map(() => "---|").join("")}`);
for (const pipeline of pipelines) {
  for (const { kind } of servers) {
    const cells = TESTS.map((test) => {
      const own = cpus.get(kind.name)!.get(pipeline)!.get(test)!;
      const base = cpus.get("loop")!.get(pipeline)!.get(test)!;
      const us = `${median(own).toFixed(2)} µs`;
      return kind.name === "loop"
        ? us
        : `${ratio(own.map((value, i) => base[i]! / value))} ${us}`;
    });
    console.log(`| ${kind.name} | ${pipeline} | ${cells.join(" | ")} |`);
  }
}

// The targets of issue #20, at the highest pipeline depth measured.
const deepest = Math.max(...pipelines);
const check = (kind: string, floor: number) => {
  if (!rps.has(kind)) return;
  const low = TESTS.map((test) =>
    [test, median(ratios(kind, "loop", deepest, test))] as const
  ).filter(([, value]) => value < floor);
  console.log(
    `target ${kind} >= ${floor}× loop at -P ${deepest}: ${
      low.length === 0
        ? "met in every cell"
        : `missed in ${
          low.map(([t, v]) => `${t} (${v.toFixed(2)}×)`).join(", ")
        }`
    }`,
  );
};
console.log();
check("example", 0.9);
check("streams", 0.5);
console.log(
  `redis_bench: ${((performance.now() - started) / 1000).toFixed(0)} s`,
);

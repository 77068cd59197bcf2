/**
 * Messages at wire speed, for length-prefixed frames: pipelined 64-byte
 * frames with a 4-byte header echoed through `framed(connection,
 * lengthPrefixed())` (the recommended shape, `bench/_length_framed.ts`)
 * against a hand-written Deno loop doing the same framing
 * (`bench/_length_loop.ts`), measured in the same run.
 *
 * ```sh
 * deno run -N -R --allow-run bench/framed_bench.ts [--rounds 5] [--quick]
 * ```
 *
 * Each server runs in its own process pinned with `taskset -c 1`; the load
 * is a Node client (`bench/_length_load.mjs`, so that it costs the same
 * whatever the server) pinned to CPU 0: `--conns` connections, each writing
 * `--depth` frames at once and waiting for their echoes, up to `--frames`
 * frames or `--seconds`. Each round measures the loop first; a cell gives
 * the median of the per-round ratios framed / loop with their spread
 * (min–max), for throughput and for the CPU time the server spends per
 * frame (from `/proc/<pid>/stat`: another process busy on the same core
 * does not change it, as it changes throughput).
 *
 * Flags: `--rounds N` (5), `--conns N` (50), `--depths 1,16` (frames in
 * flight per connection), `--size N` (64), `--frames N` (2000000 per run;
 * a tenth at depth 1), `--seconds S` (10), `--v8-flags a,b` (for the
 * servers), `--no-pin`, `--quick`, `--steps` (also the loop grown by hand
 * into each shape `framed()` offers, `bench/_length_steps.ts`: what the
 * shape itself costs, next to what `framed()` costs).
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
    conns: { type: "string" },
    depths: { type: "string" },
    size: { type: "string" },
    frames: { type: "string" },
    seconds: { type: "string" },
    "v8-flags": { type: "string" },
    "no-pin": { type: "boolean", default: false },
    steps: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
  },
});

const quick = flags.quick;
const rounds = quick ? 1 : count("rounds", flags.rounds, 5);
const conns = count("conns", flags.conns, 50);
const depths = (flags.depths ?? "1,16").split(",").map((d) =>
  count("depths", d, 16)
);
const size = count("size", flags.size, 64);
const frames = quick ? 20000 : count("frames", flags.frames, 2_000_000);
const seconds = count("seconds", flags.seconds, 10);
const pin = !flags["no-pin"];
const v8Flags = flags["v8-flags"] ? [`--v8-flags=${flags["v8-flags"]}`] : [];
const root = new URL("../", import.meta.url).pathname;

const SERVERS = [
  { name: "loop", file: "bench/_length_loop.ts", args: [] },
  { name: "framed", file: "bench/_length_framed.ts", args: [] },
  { name: "framed-batch", file: "bench/_length_framed.ts", args: ["batch"] },
  // With --steps: the loop grown by hand, a step at a time, into the
  // shapes framed() offers (see bench/_length_steps.ts), to tell what a
  // shape costs whoever writes it from what framed() adds.
  ...(flags.steps
    ? ["views", "owned", "iterator", "awaited"].map((step) => ({
      name: `steps-${step}`,
      file: "bench/_length_steps.ts",
      args: [step],
    }))
    : []),
];

const pinned = (cpu: number, command: string[]) =>
  pin ? ["taskset", "-c", `${cpu}`, ...command] : command;

/** Runs `command` to its end: its stdout, or an error with its stderr. */
async function run(command: string[], ms: number): Promise<string> {
  const child = new Deno.Command(command[0]!, {
    args: command.slice(1),
    cwd: root,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), ms);
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const text = new TextDecoder().decode(stdout);
  if (code !== 0) {
    throw new Error(
      `${command.join(" ")} failed (${code}): ${
        new TextDecoder().decode(stderr)
      }`,
    );
  }
  return text;
}

/** A server process, listening on the port it printed. */
class Server implements AsyncDisposable {
  readonly name: string;
  readonly #child: Deno.ChildProcess;
  port = 0;

  constructor(name: string, file: string, args: string[]) {
    this.name = name;
    const command = pinned(1, [
      Deno.execPath(),
      "run",
      "-N",
      ...v8Flags,
      file,
      "0",
      ...args,
    ]);
    this.#child = new Deno.Command(
      command[0]!,
      {
        args: command.slice(1),
        cwd: root,
        stdin: "null",
        stdout: "piped",
        stderr: "inherit",
      },
    ).spawn();
  }

  async listening(): Promise<void> {
    const output = this.#child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    const timer = setTimeout(() => output.cancel(), 15_000);
    let seen = "";
    try {
      while (true) {
        const { done, value } = await output.read();
        if (done) throw new Error(`${this.name} ended before listening`);
        seen += value;
        const match = seen.match(/127\.0\.0\.1:(\d+)/);
        if (match) {
          this.port = Number(match[1]);
          break;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    (async () => {
      while (!(await output.read()).done) { /* drop */ }
    })().catch(() => {});
  }

  /** CPU seconds used so far, all threads. */
  cpu(): number {
    return cpuSeconds(this.#child.pid);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.#child.kill("SIGINT");
    } catch { /* gone */ }
    await exited(this.#child, 5000);
  }
}

/** One load run: frames per second, and the server's CPU µs per frame. */
async function load(server: Server, depth: number, total: number) {
  const before = await server.cpu();
  const out = await run(
    pinned(0, [
      "node",
      "bench/_length_load.mjs",
      `${server.port}`,
      `${conns}`,
      `${depth}`,
      `${size}`,
      `${total}`,
      `${seconds}`,
    ]),
    (seconds + 20) * 1000,
  );
  const cpu = await server.cpu() - before;
  const { frames: done, seconds: took } = JSON.parse(out);
  return { rate: done / took, cpu: cpu / done * 1e6 };
}

const servers = SERVERS.map(({ name, file, args }) =>
  new Server(name, file, args)
);
const results = new Map<string, { rate: number; cpu: number }[]>();
const started = performance.now();
try {
  await Promise.all(servers.map((server) => server.listening()));
  console.log(
    `framed_bench: ${rounds} round(s), ${conns} connections, ${size}-byte frames with a 4-byte header, depths ${depths}${
      pin ? ", servers on CPU 1, the Node client on CPU 0" : ", not pinned"
    }`,
  );
  for (const server of servers) await load(server, 16, frames / 10);
  for (let round = 1; round <= rounds; round++) {
    for (const depth of depths) {
      const total = depth === 1 ? Math.ceil(frames / 10) : frames;
      const line: string[] = [];
      for (const server of servers) {
        const result = await load(server, depth, total);
        const key = `${server.name} ${depth}`;
        results.set(key, [...(results.get(key) ?? []), result]);
        line.push(
          `${server.name} ${(result.rate / 1000).toFixed(0)}k/s ${
            result.cpu.toFixed(2)
          } µs`,
        );
      }
      console.log(`  round ${round} depth ${depth}: ${line.join(", ")}`);
    }
  }
} finally {
  await Promise.all(servers.map((server) => server[Symbol.asyncDispose]()));
}

console.log(
  "\n| depth | server | loop frames/s | server / loop, frames/s | loop µs / server µs, CPU per frame |",
);
console.log("|---|---|---|---|---|");
for (const depth of depths) {
  const loop = results.get(`loop ${depth}`)!;
  for (const { name } of SERVERS.slice(1)) {
    const framed = results.get(`${name} ${depth}`)!;
    console.log(
      `| ${depth} | ${name} | ${
        (median(loop.map((r) => r.rate)) / 1000).toFixed(0)
      }k | ${spread(framed.map((r, i) => r.rate / loop[i]!.rate))} | ${
        spread(framed.map((r, i) => loop[i]!.cpu / r.cpu))
      } (${median(loop.map((r) => r.cpu)).toFixed(2)} / ${
        median(framed.map((r) => r.cpu)).toFixed(2)
      } µs) |`,
    );
  }
}
const deepest = Math.max(...depths);
const low = median(
  results.get(`framed ${deepest}`)!.map((r, i) =>
    r.rate / results.get(`loop ${deepest}`)![i]!.rate
  ),
);
console.log(
  `\ntarget framed >= 0.9× loop at depth ${deepest}: ${
    low >= 0.9 ? "met" : "missed"
  } (${low.toFixed(2)}×)`,
);
if (flags.steps) {
  // Each shape against the same shape written by hand (its floor).
  for (
    const [name, floor] of [
      ["framed", "steps-awaited"],
      ["framed-batch", "steps-owned"],
    ]
  ) {
    const ours = results.get(`${name} ${deepest}`)!;
    const hand = results.get(`${floor} ${deepest}`)!;
    console.log(
      `${name} / ${floor} (the same shape by hand) at depth ${deepest}: ${
        spread(ours.map((r, i) => r.rate / hand[i]!.rate))
      }`,
    );
  }
}
console.log(
  `framed_bench: ${((performance.now() - started) / 1000).toFixed(0)} s`,
);

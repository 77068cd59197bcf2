/**
 * The connection core benchmark: every way of serving bytes with this
 * module, against a bare `Deno.listen` read/write loop measured in the same
 * run on the same machine, plus the memory an idle connection costs.
 *
 * ```sh
 * deno run -N -R --allow-run bench/connection_bench.ts [--rounds 3] [--quick]
 * ```
 *
 * Each server variant runs in its own process (`_server.ts`, or
 * `_node_server.mjs` for the Node `net` + `Transform` columns, skipped when
 * `node` is missing), pinned with `taskset -c 1`; this process is the load
 * generator, pinned to CPU 0.
 * Every workload runs `--rounds` times (baseline first in each round); a
 * cell gives the median of the per-round ratios variant / baseline, their
 * spread (min–max), and the median figure of the variant.
 *
 * Workloads, each bounded by a count and by `--seconds`: bulk transfer over
 * 1 (and, with `--rows all`, 16) connections (MiB/s; each connection sends
 * until its share of `--mib` or the time is up, half-closes and reads its
 * echo to the end); 64 B round trips over 64 connections (and over 1, and
 * 100 kB round trips over 1, with `--rows all`) (round trips per second);
 * connection churn (16 workers, so 16 connections at once, that connect,
 * send a line, read the answer and close; connections per second);
 * pipelined "PING\n" lines answered "+PONG\r\n" over one connection
 * (requests per second). Every answer is checked.
 *
 * Idle memory: for each path, a fresh server process takes a warm-up, then
 * `--idle` connections that each send one line, read the answer and stay
 * open; the server's VmRSS (from `/proc/<pid>/status`) before and after
 * gives KiB per connection. The figure is taken after a memory-reducing full
 * garbage collection, which also shrinks V8's young generation back, as
 * V8's memory reducer does by itself once a server has gone idle
 * (`--settle 40` waits for that and shows it); the table also gives it after
 * an ordinary full collection and with none.
 *
 * Flags: `--rounds N` (3), `--seconds S` (2: the time bound of every
 * throughput cell), `--mib N` (1024), `--churn N` (20000 connections),
 * `--pipeline N` (20000000 lines), `--idle N` (3000), `--settle S` (0:
 * seconds to leave the idle connections alone before the GCs), `--only
 * throughput|memory`, `--rows a,b` (or `all`; default
 * `bulk1,rt64x64,churn,pipeline`), `--columns a,b`, `--no-pin`, `--quick`
 * (tiny sizes, one round: checks the harness, measures nothing). To look
 * inside a server: `--wrap "<command>"` runs each server under a command
 * (`{kind}` is replaced by its kind, e.g.
 * `--wrap "strace -f -c -o /tmp/strace-{kind}.txt"`) and `--v8-flags a,b`
 * adds V8 flags to the servers
 * (e.g. `--perf-basic-prof` for `perf`).
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  type Answer,
  bulk,
  churn,
  openIdle,
  pipeline,
  roundTrips,
  warmUp,
} from "./_load.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  strict: true,
  options: {
    rounds: { type: "string" },
    mib: { type: "string" },
    seconds: { type: "string" },
    churn: { type: "string" },
    pipeline: { type: "string" },
    idle: { type: "string" },
    settle: { type: "string" },
    only: { type: "string" },
    rows: { type: "string" },
    columns: { type: "string" },
    "no-pin": { type: "boolean", default: false },
    wrap: { type: "string" },
    "v8-flags": { type: "string" },
    quick: { type: "boolean", default: false },
  },
});

function numberFlag(
  name: string,
  value: string | undefined,
  normal: number,
  quick: number,
  integer = true,
): number {
  if (value === undefined) return flags.quick ? quick : normal;
  const n = Number(value);
  if (!(n > 0) || (integer && !Number.isInteger(n))) {
    throw new RangeError(
      `Cannot run benchmark as --${name} must be a positive ${
        integer ? "integer" : "number"
      }: current value is '${value}'`,
    );
  }
  return n;
}

const ROUNDS = numberFlag("rounds", flags.rounds, 3, 1);
const MIB = numberFlag("mib", flags.mib, 1024, 4);
const SECONDS = numberFlag("seconds", flags.seconds, 2, 0.2, false);
const CHURN = numberFlag("churn", flags.churn, 20_000, 100);
const PIPELINE = numberFlag("pipeline", flags.pipeline, 20_000_000, 20_000);
const IDLE = numberFlag("idle", flags.idle, 3000, 200);
/** Seconds to leave the idle connections alone before the GCs; 0: none. */
const SETTLE = flags.settle === undefined
  ? 0
  : numberFlag("settle", flags.settle, 0, 0, false);
const ONLY = flags.only;
if (ONLY !== undefined && ONLY !== "throughput" && ONLY !== "memory") {
  throw new TypeError(
    `Cannot run benchmark as --only must be 'throughput' or 'memory': current value is '${ONLY}'`,
  );
}
/** The bound of any one measurement, whatever it measures. */
const MEASURE_TIMEOUT_MS = 60_000;
/** The bound of a server's answer to a control line. */
const CONTROL_TIMEOUT_MS = 60_000;

// ---------------------------------------------------------------------------
// Server processes

interface Hello {
  kind: string;
  port: number;
  pid: number;
  note?: string;
  error?: string;
}

/** A server process of `_server.ts`, with its control lines. */
class ServerProcess {
  readonly kind: string;
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #lines: AsyncIterator<string>;
  hello!: Hello;

  constructor(kind: string, pin: boolean) {
    this.kind = kind;
    const v8 = ["--expose-gc", ...(flags["v8-flags"]?.split(",") ?? [])];
    const argv = [
      ...(flags.wrap?.split(" ").filter(Boolean).map((word) =>
        word.replaceAll("{kind}", kind)
      ) ?? []),
      Deno.execPath(),
      "run",
      "-N",
      `--v8-flags=${v8.join(",")}`,
      new URL("./_server.ts", import.meta.url).pathname,
      "--kind",
      kind,
    ];
    if (kind.startsWith("node")) {
      // The Node column: the same control lines, from Node's own server.
      argv.splice(
        argv.indexOf(Deno.execPath()),
        5,
        "node",
        "--expose-gc",
        new URL("./_node_server.mjs", import.meta.url).pathname,
      );
    }
    if (pin) argv.unshift("taskset", "-c", "1");
    this.#child = new Deno.Command(argv[0]!, {
      args: argv.slice(1),
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#stdin = this.#child.stdin.getWriter();
    this.#lines = splitLines(
      this.#child.stdout.pipeThrough(new TextDecoderStream()),
    );
  }

  get port(): number {
    return this.hello.port;
  }

  async #next(what: string): Promise<unknown> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `Server '${this.kind}' did not answer ${what} within ${CONTROL_TIMEOUT_MS} ms`,
            ),
          ),
        CONTROL_TIMEOUT_MS,
      );
    });
    try {
      const { value, done } = await Promise.race([this.#lines.next(), timeout]);
      if (done) throw new Error(`Server '${this.kind}' exited`);
      return JSON.parse(value);
    } finally {
      clearTimeout(timer);
    }
  }

  async start(): Promise<this> {
    this.hello = await this.#next("its start") as Hello;
    if (this.hello.error) throw new Error(this.hello.error);
    return this;
  }

  /** Sends one control line and returns the server's answer. */
  async request<T>(line: string): Promise<T> {
    await this.#stdin.write(new TextEncoder().encode(line + "\n"));
    return await this.#next(`'${line}'`) as T;
  }

  /** VmRSS of the server process, in KiB, from `/proc/<pid>/status`. */
  async rss(): Promise<number> {
    // The pid the server itself reported: right even under `--wrap`.
    const pid = this.hello.pid;
    const status = await readProc(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
    if (!match) throw new Error(`No VmRSS in /proc/${pid}/status`);
    return Number(match[1]);
  }

  /**
   * Ends the process: stdin closed (the server exits by itself, so a
   * `--wrap` tool can write its report), then SIGTERM to its pid if it has
   * not exited within 5 s.
   */
  async stop(): Promise<void> {
    await this.#stdin.close().catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const exited = await Promise.race([
      this.#child.status.then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), 5000);
      }),
    ]);
    clearTimeout(timer);
    if (!exited) {
      try {
        this.#child.kill("SIGTERM");
      } catch { /* gone meanwhile */ }
      await this.#child.status;
    }
    await this.#lines.return?.();
  }
}

/**
 * Reads a file of `/proc` through `cat`: Deno wants `--allow-all` to read
 * `/proc/<pid>` files itself, while `--allow-run` is granted anyway.
 */
async function readProc(path: string): Promise<string> {
  const out = await new Deno.Command("cat", {
    args: [path],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `Cannot read ${path}: ${new TextDecoder().decode(out.stderr).trim()}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

async function* splitLines(
  stream: ReadableStream<string>,
): AsyncGenerator<string> {
  let text = "";
  for await (const part of stream) {
    text += part;
    for (let lf; (lf = text.indexOf("\n")) !== -1;) {
      yield text.slice(0, lf);
      text = text.slice(lf + 1);
    }
  }
}

async function canPin(): Promise<string | undefined> {
  if (flags["no-pin"]) return "pinning off (--no-pin)";
  try {
    const out = await new Deno.Command("taskset", {
      args: ["-a", "-p", "-c", "0", String(Deno.pid)],
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) {
      return `pinning off: taskset failed: ${
        new TextDecoder().decode(out.stderr).trim()
      }`;
    }
    return undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return "pinning off: taskset is missing (util-linux)";
    }
    throw error;
  }
}

// ---------------------------------------------------------------------------
// What is measured

interface Row {
  id: string;
  label: string;
  unit: string;
  family: "echo" | "lines";
  run(port: number, answer: Answer): Promise<number>;
}

const T = MEASURE_TIMEOUT_MS;
const ROWS: Row[] = [
  {
    id: "bulk1",
    label: `bulk (≤ ${MIB} MiB or ${SECONDS} s), 1 conn`,
    unit: "MiB/s",
    family: "echo",
    run: (port, answer) => bulk(port, answer, MIB, 1, SECONDS, T),
  },
  {
    id: "bulk16",
    label: `bulk (≤ ${MIB} MiB or ${SECONDS} s), 16 conns`,
    unit: "MiB/s",
    family: "echo",
    run: (port, answer) => bulk(port, answer, MIB, 16, SECONDS, T),
  },
  {
    id: "rt64",
    label: "64 B round trips, 1 conn",
    unit: "rt/s",
    family: "echo",
    run: (port, answer) => roundTrips(port, answer, 64, 1, SECONDS, T),
  },
  {
    id: "rt64x64",
    label: "64 B round trips, 64 conns",
    unit: "rt/s",
    family: "echo",
    run: (port, answer) => roundTrips(port, answer, 64, 64, SECONDS, T),
  },
  {
    id: "rt100k",
    label: "100 kB round trips, 1 conn",
    unit: "rt/s",
    family: "echo",
    run: (port, answer) => roundTrips(port, answer, 100_000, 1, SECONDS, T),
  },
  {
    id: "churn",
    label: `churn (≤ ${CHURN} conns or ${SECONDS} s), 16 at once`,
    unit: "conn/s",
    family: "echo",
    run: (port, answer) => churn(port, answer, CHURN, 16, SECONDS, T),
  },
  {
    id: "pipeline",
    label: `pipelined PING lines (≤ ${
      PIPELINE / 1e6
    } M or ${SECONDS} s), 1 conn`,
    unit: "req/s",
    family: "lines",
    run: (port) => pipeline(port, PIPELINE, SECONDS, T),
  },
];

interface Column {
  id: string;
  label: string;
  /** The server kind per family; a family without one has no cell. */
  kinds: Partial<Record<Row["family"], string>>;
  /** Its baseline in the echo family, when not the bare echo loop. */
  baseline?: string;
}

/** The rows measured unless `--rows` says otherwise: the issue's cells. */
const DEFAULT_ROWS = "bulk1,rt64x64,churn,pipeline";

/** The baseline kind of a family, and of the upper-case column. */
const BASELINE: Record<Row["family"], string> = {
  echo: "bare",
  lines: "bare-lines",
};

const COLUMNS: Column[] = [
  { id: "echo", label: "serve(EchoStream)", kinds: { echo: "echo" } },
  {
    id: "upper",
    label: "serve(UpperCaseStream) ÷ bare upper-casing in place",
    kinds: { echo: "upper" },
    baseline: "bare-upper",
  },
  {
    id: "stream",
    label: "serve(user TransformStream)",
    kinds: { echo: "stream", lines: "lines-stream" },
  },
  {
    id: "stream-upper",
    label: "serve(user TransformStream of upperCase()) ÷ bare upper",
    kinds: { echo: "stream-upper" },
    baseline: "bare-upper",
  },
  {
    id: "floor",
    label: "floor: bare loop through the user TransformStream, no Connection",
    kinds: { echo: "bare-stream", lines: "bare-lines-stream" },
  },
  {
    id: "handler",
    label: "serve(handler reading streams)",
    kinds: { echo: "handler" },
  },
  {
    id: "conn-pipe",
    label: "Connection + pipeThrough(user)",
    kinds: { echo: "conn-pipe", lines: "lines-conn-pipe" },
  },
  {
    id: "conn-pipe-upper",
    label: "Connection + pipeThrough(user upper) ÷ bare upper",
    kinds: { echo: "conn-pipe-upper" },
    baseline: "bare-upper",
  },
  {
    id: "node",
    label: "Node net + Transform",
    kinds: { echo: "node", lines: "node-lines" },
  },
  {
    id: "node-upper",
    label: "Node net + upper-casing Transform ÷ bare upper",
    kinds: { echo: "node-upper" },
    baseline: "bare-upper",
  },
  {
    id: "framed",
    label: "serve(framed(lines()): for await + m.write())",
    kinds: { lines: "lines-framed" },
  },
  {
    id: "framed-rw",
    label: "serve(framed(lines()): readable + writer, 0.2 shape)",
    kinds: { lines: "lines-framed-rw" },
  },
  {
    id: "framed-batch",
    label: "serve(framed(lines(), { batch: true }) + loop)",
    kinds: { lines: "lines-framed-batch" },
  },
  {
    id: "sync",
    label: "serve(user SyncTransformStream)",
    kinds: { lines: "lines-sync" },
  },
  {
    id: "chain",
    label: "serve(chain(line decoder, answer))",
    kinds: { lines: "lines-chain" },
  },
];

function answerOf(kind: string): Answer {
  if (
    kind.startsWith("lines") || kind.startsWith("bare-lines") ||
    kind === "node-lines"
  ) {
    return "lines";
  }
  return kind.endsWith("upper") ? "upper" : "echo";
}

function baselineOf(row: Row, column: string): string {
  const found = COLUMNS.find((c) => c.id === column);
  return (row.family === "echo" ? found?.baseline : undefined) ??
    BASELINE[row.family];
}

function pick<T extends { id: string }>(
  all: T[],
  list: string | undefined,
  what: string,
): T[] {
  if (list === undefined) return all;
  return list.split(",").map((id) => {
    const found = all.find((item) => item.id === id);
    if (!found) {
      throw new TypeError(
        `Cannot run benchmark as --${what} must name known ${what} (${
          all.map((item) => item.id).join(", ")
        }): current value is '${id}'`,
      );
    }
    return found;
  });
}

// ---------------------------------------------------------------------------
// Statistics and formatting

function median(values: number[]): number {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2
    ? sorted[mid]!
    : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function spread(values: number[]): [number, number] {
  const finite = values.filter(Number.isFinite);
  return [Math.min(...finite), Math.max(...finite)];
}

function fmt(value: number): string {
  if (!Number.isFinite(value)) return "-";
  if (value >= 100) {
    // Three significant digits, with separators.
    const digits = Math.floor(Math.log10(value)) + 1;
    const unit = 10 ** Math.max(0, digits - 3);
    return (Math.round(value / unit) * unit).toLocaleString("en-US");
  }
  return value.toPrecision(3);
}

function fmtRatio(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : "-";
}

function log(message: string): void {
  console.error(message);
}

// ---------------------------------------------------------------------------
// Throughput

/** Figures per row, per kind, one per round (NaN where it failed). */
type Results = Map<string, Map<string, number[]>>;
/** CPU use per "row/kind", one [server, client] pair per round. */
type Cpu = Map<string, [number, number][]>;

/** One measurement: the figure, and how busy each side's CPU was. */
interface Measurement {
  value: number;
  /** CPU time over wall time of the server process (1 = one core). */
  serverCpu: number;
  /** The same for this process, the load generator. */
  clientCpu: number;
}

/** Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`). */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system, all threads) a process has used so far. */
async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readProc(`/proc/${pid}/stat`);
  // The fields after the command name, which is in parentheses: the state
  // (field 3) first, so utime (field 14) and stime (15) are at 11 and 12.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

async function measure(
  row: Row,
  server: ServerProcess,
  errors: Map<string, string>,
): Promise<Measurement> {
  const pids = [server.hello.pid, Deno.pid];
  try {
    const before = await Promise.all(pids.map(cpuSeconds));
    const start = performance.now();
    const value = await row.run(server.port, answerOf(server.kind));
    const wall = (performance.now() - start) / 1000;
    const after = await Promise.all(pids.map(cpuSeconds));
    const [serverCpu, clientCpu] = after.map((a, i) => (a - before[i]!) / wall);
    log(
      `  ${row.id} ${server.kind}: ${fmt(value)} ${row.unit} (CPU: server ${
        percent(serverCpu!)
      }, client ${percent(clientCpu!)})`,
    );
    return { value, serverCpu: serverCpu!, clientCpu: clientCpu! };
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    errors.set(`${row.id}/${server.kind}`, message);
    log(`  ${row.id} ${server.kind}: failed: ${message}`);
    return { value: NaN, serverCpu: NaN, clientCpu: NaN };
  }
}

function percent(fraction: number): string {
  return Number.isFinite(fraction) ? `${Math.round(fraction * 100)}%` : "-";
}

async function throughput(
  rows: Row[],
  columns: Column[],
  pin: boolean,
): Promise<void> {
  const kindsOf = (row: Row) => {
    const kinds = new Set([BASELINE[row.family]]);
    for (const column of columns) {
      const kind = column.kinds[row.family];
      if (kind) {
        kinds.add(baselineOf(row, column.id));
        kinds.add(kind);
      }
    }
    return [...kinds];
  };
  const needed = new Set(rows.flatMap(kindsOf));
  const servers = new Map<string, ServerProcess>();
  const unavailable = new Map<string, string>();
  const errors = new Map<string, string>();
  const notes = new Set<string>();
  try {
    for (const kind of needed) {
      const server = new ServerProcess(kind, pin);
      try {
        await server.start();
        servers.set(kind, server);
        if (server.hello.note) notes.add(`${kind}: ${server.hello.note}`);
      } catch (error) {
        await server.stop();
        unavailable.set(kind, error instanceof Error ? error.message : "");
        log(`server ${kind} unavailable`);
      }
    }
    // A warm-up for every server, so the first round is not the JIT's.
    log("warm-up");
    for (const server of servers.values()) {
      const answer = answerOf(server.kind);
      if (answer === "lines") {
        await pipeline(server.port, 20_000, 1, T).catch(() => {});
      } else {
        await bulk(server.port, answer, 4, 1, 1, T).catch(() => {});
        await roundTrips(server.port, answer, 64, 4, 0.1, T).catch(() => {});
      }
    }
    const results: Results = new Map();
    const cpu: Cpu = new Map();
    for (let round = 1; round <= ROUNDS; round++) {
      log(`round ${round} of ${ROUNDS}`);
      for (const row of rows) {
        const byKind = results.get(row.id) ?? new Map<string, number[]>();
        results.set(row.id, byKind);
        for (const kind of kindsOf(row)) {
          const server = servers.get(kind);
          if (!server) continue;
          const { value, serverCpu, clientCpu } = await measure(
            row,
            server,
            errors,
          );
          byKind.set(kind, [...(byKind.get(kind) ?? []), value]);
          const load = cpu.get(`${row.id}/${kind}`) ?? [];
          cpu.set(`${row.id}/${kind}`, [...load, [serverCpu, clientCpu]]);
        }
      }
    }
    printThroughput(rows, columns, results, cpu, unavailable, errors, notes);
  } finally {
    for (const server of servers.values()) await server.stop();
  }
}

function printThroughput(
  rows: Row[],
  columns: Column[],
  results: Results,
  cpu: Cpu,
  unavailable: Map<string, string>,
  errors: Map<string, string>,
  notes: Set<string>,
): void {
  const out: string[] = [];
  out.push(
    "Each cell: median ratio variant/baseline over the rounds (min–max of the per-round ratios) · median figure of the variant. Baseline: median figure (min–max).",
    "",
    `| workload | unit | baseline (bare loop) | ${
      columns.map((c) => c.label).join(" | ")
    } |`,
    `|---|---|---|${columns.map(() => "---|").join("")}`,
  );
  const details: string[] = [
    "| workload | server kind | baseline kind | median | min | max | ratio median | ratio min | ratio max | server CPU | client CPU |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const row of rows) {
    const byKind = results.get(row.id)!;
    const base = byKind.get(BASELINE[row.family]) ?? [];
    const [baseMin, baseMax] = spread(base);
    const cells = [
      `${fmt(median(base))} (${fmt(baseMin)}–${fmt(baseMax)})`,
    ];
    const detail = (kind: string, baseKind: string) => {
      const values = byKind.get(kind) ?? [];
      const baseline = byKind.get(baseKind) ?? [];
      const ratios = values.map((v, i) => v / baseline[i]!);
      const load = cpu.get(`${row.id}/${kind}`) ?? [];
      const [min, max] = spread(values);
      const [rMin, rMax] = spread(ratios);
      details.push(
        `| ${row.label} | ${kind} | ${baseKind} | ${fmt(median(values))} | ${
          fmt(min)
        } | ${fmt(max)} | ${fmtRatio(median(ratios))} | ${fmtRatio(rMin)} | ${
          fmtRatio(rMax)
        } | ${percent(median(load.map((l) => l[0])))} | ${
          percent(median(load.map((l) => l[1])))
        } |`,
      );
      return { values, ratios, rMin, rMax };
    };
    detail(BASELINE[row.family], BASELINE[row.family]);
    for (const column of columns) {
      const kind = column.kinds[row.family];
      if (!kind) {
        cells.push("");
        continue;
      }
      if (unavailable.has(kind)) {
        cells.push("n/a");
        continue;
      }
      const baseKind = baselineOf(row, column.id);
      if (baseKind !== BASELINE[row.family]) detail(baseKind, baseKind);
      const { values, ratios, rMin, rMax } = detail(kind, baseKind);
      if (!values.some(Number.isFinite) || !ratios.some(Number.isFinite)) {
        cells.push(errors.has(`${row.id}/${kind}`) ? "failed" : "-");
        continue;
      }
      const mark = median(ratios) < 0.9 ? " ⚠" : "";
      cells.push(
        `${fmtRatio(median(ratios))} (${fmtRatio(rMin)}–${
          fmtRatio(rMax)
        })${mark} · ${fmt(median(values))}`,
      );
    }
    out.push(`| ${row.label} | ${row.unit} | ${cells.join(" | ")} |`);
  }
  out.push(
    "",
    "⚠: median ratio below the 0.9 goal.",
    "",
    "Details. CPU: median CPU time over wall time of the server process and of the load generator during the measurement (100% = one core busy): a side near 100% is what bounds the cell.",
    "",
    ...details,
  );
  for (const [kind, message] of unavailable) {
    out.push("", `- ${kind} not measured: ${message}`);
  }
  for (const [cell, message] of errors) {
    out.push("", `- ${cell} failed: ${message}`);
  }
  for (const note of notes) out.push("", `- ${note}`);
  console.log(out.join("\n"));
}

// ---------------------------------------------------------------------------
// Idle memory

const MEMORY_PATHS: { kind: string; label: string }[] = [
  { kind: "bare", label: "bare loop (reference)" },
  { kind: "bare-1k", label: "bare loop on a 1 KiB buffer (reference)" },
  { kind: "echo", label: "built-in service (EchoStream)" },
  { kind: "stream", label: "user TransformStream via serve()" },
  { kind: "handler", label: "handler reading the streams" },
  {
    kind: "lines-framed",
    label: "framed(lines()): for await + m.write() (goal ≤ 16 KiB)",
  },
  { kind: "lines-framed-rw", label: "framed(lines()): readable + writer" },
  { kind: "conn-pipe", label: "Connection + pipeThrough(user)" },
  { kind: "node", label: "Node net + Transform (reference)" },
];

/** VmRSS readings of one server, in KiB, and what its heap says. */
interface MemoryResult {
  label: string;
  kind: string;
  /** Before and after the idle connections, each after `gc reduce`. */
  before: number;
  after: number;
  /** The same, each after an ordinary full GC (`gc`). */
  beforeFull: number;
  afterFull: number;
  /** Just after the connections opened, with no GC forced. */
  afterRaw: number;
  /** After `--settle` seconds idle with no GC forced; NaN when not asked. */
  settled: number;
  accepted: number;
  open: number;
  /** Growth of V8's used heap and of its external memory, in KiB. */
  heap: number;
  external: number;
  error?: string;
}

/** What the server says of its memory, in KiB (`Deno.memoryUsage()`). */
interface Heap {
  heapUsed: number;
  external: number;
}

async function memoryOne(
  kind: string,
  label: string,
  pin: boolean,
): Promise<MemoryResult> {
  const server = await new ServerProcess(kind, pin).start();
  try {
    const answer = answerOf(kind);
    const warm = 200;
    await warmUp(server.port, answer, warm, T);
    await server.request("until-open 0");
    await server.request("gc");
    const beforeFull = await server.rss();
    await server.request("gc reduce");
    const before = await server.rss();
    const heapBefore = await server.request<Heap>("stats");
    const scope = await openIdle(server.port, answer, IDLE, T);
    try {
      // Every connection has had its answer, so the server accepted it and
      // read from it; its own count says so too.
      await server.request(`until-accepted ${warm + IDLE}`);
      const counts = await server.request<{ accepted: number; open: number }>(
        `until-open ${IDLE}`,
      );
      const afterRaw = await server.rss();
      let settled = NaN;
      if (SETTLE > 0) {
        // V8's own memory reducer runs on a timer once allocation stops:
        // this waits for it, as a server left alone would.
        const end = performance.now() + SETTLE * 1000;
        while (performance.now() < end) {
          await new Promise((resolve) => setTimeout(resolve, 1000));
          settled = await server.rss();
        }
        log(`  ${kind}: ${afterRaw} KiB -> ${settled} KiB after ${SETTLE} s`);
      }
      await server.request("gc");
      const afterFull = await server.rss();
      await server.request("gc reduce");
      const after = await server.rss();
      const heapAfter = await server.request<Heap>("stats");
      log(
        `  ${kind}: ${before} KiB -> ${after} KiB (${afterFull} KiB after a full GC, ${afterRaw} KiB before GC)`,
      );
      return {
        label,
        kind,
        before,
        after,
        beforeFull,
        afterFull,
        afterRaw,
        settled,
        heap: heapAfter.heapUsed - heapBefore.heapUsed,
        external: heapAfter.external - heapBefore.external,
        ...counts,
      };
    } finally {
      scope.end();
    }
  } finally {
    await server.stop();
  }
}

async function memory(pin: boolean, columns: Column[]): Promise<void> {
  const wanted = new Set(
    columns.flatMap((c) => Object.values(c.kinds)).concat("bare", "bare-1k"),
  );
  const paths = MEMORY_PATHS.filter((p) => wanted.has(p.kind));
  const results = new Map<string, MemoryResult[]>();
  log(`idle memory, ${IDLE} connections per path`);
  for (let round = 1; round <= ROUNDS; round++) {
    log(`memory round ${round} of ${ROUNDS}`);
    for (const { kind, label } of paths) {
      let result: MemoryResult;
      try {
        result = await memoryOne(kind, label, pin);
      } catch (error) {
        log(`  ${kind}: failed: ${error}`);
        result = {
          label,
          kind,
          before: NaN,
          after: NaN,
          beforeFull: NaN,
          afterFull: NaN,
          afterRaw: NaN,
          settled: NaN,
          accepted: 0,
          open: 0,
          heap: NaN,
          external: NaN,
          error: error instanceof Error ? error.message : String(error),
        };
      }
      results.set(kind, [...(results.get(kind) ?? []), result]);
    }
  }
  const perConn = (kib: number) => kib / IDLE;
  const settle = SETTLE > 0;
  const out = [
    `Idle memory: server VmRSS (/proc/<pid>/status) before and after ${
      IDLE.toLocaleString("en-US")
    } idle connections that each sent one line and read its answer (the server counted every connection open before the second reading); median over ${ROUNDS} round(s), a fresh server process each. Goal ≤ 20 KiB per connection.`,
    "",
    '- idle: each reading after a memory-reducing full GC (`gc({ flavor: "last-resort" })`, what V8 does under memory pressure): all garbage collected and the young generation shrunk back, as V8\'s memory reducer does by itself once a server has gone idle.',
    "- after a full GC: each reading after an ordinary full GC (`gc()`): the young generation keeps the size the burst of connections grew it to, a cost of the process (bounded by V8's semi-space limit) rather than of each connection.",
    "- no GC: as the connections have just opened, garbage included.",
    ...(settle
      ? [
        `- settled: after ${SETTLE} s left idle, with no GC forced (V8's own memory reducer).`,
      ]
      : []),
    "",
    `| path | server kind | KiB per connection, idle (min–max) | of which V8 heap | of which external (buffers) | after a full GC | no GC |${
      settle ? " settled |" : ""
    } RSS before → after (MiB, median round) | open / accepted |`,
    `|---|---|---|---|---|---|---|${settle ? "---|" : ""}---|---|`,
  ];
  for (const { kind, label } of paths) {
    const rounds = results.get(kind) ?? [];
    const good = rounds.filter((r) => r.error === undefined);
    if (good.length === 0) {
      out.push(
        `| ${label} | ${kind} | failed: ${rounds[0]?.error ?? "-"} | | | | |${
          settle ? " |" : ""
        } | |`,
      );
      continue;
    }
    const each = good.map((r) => perConn(r.after - r.before));
    const mid = median(each);
    const [min, max] = spread(each);
    const figure = (pick: (r: MemoryResult) => number) =>
      median(good.map((r) => perConn(pick(r)))).toFixed(1);
    // The round whose figure is nearest the median, for its absolute RSS.
    const typical = good.reduce((a, b, i) =>
      Math.abs(each[i]! - mid) < Math.abs(perConn(a.after - a.before) - mid)
        ? b
        : a
    );
    const goal = kind === "lines-framed" ? 16 : 20;
    const mark = mid > goal && !kind.startsWith("bare") && kind !== "node"
      ? " ⚠"
      : "";
    out.push(
      `| ${label} | ${kind} | ${mid.toFixed(1)} (${min.toFixed(1)}–${
        max.toFixed(1)
      })${mark} | ${figure((r) => r.heap)} | ${figure((r) => r.external)} | ${
        figure((r) => r.afterFull - r.beforeFull)
      } | ${figure((r) => r.afterRaw - r.beforeFull)} |${
        settle ? ` ${figure((r) => r.settled - r.beforeFull)} |` : ""
      } ${(typical.before / 1024).toFixed(1)} → ${
        (typical.after / 1024).toFixed(1)
      } | ${typical.open} / ${typical.accepted} |`,
    );
  }
  const failures = [...results.values()].flat().filter((r) => r.error);
  for (const r of failures) out.push("", `- ${r.kind} failed: ${r.error}`);
  out.push(
    "",
    "⚠: above the goal (20 KiB; 16 KiB for framed() in the 0.3 shape). The bare loops and Node are references, not held to it.",
  );
  console.log(out.join("\n"));
}

// ---------------------------------------------------------------------------

if (import.meta.main) {
  const rows = flags.rows === "all"
    ? ROWS
    : pick(ROWS, flags.rows ?? DEFAULT_ROWS, "rows");
  const columns = pick(COLUMNS, flags.columns, "columns");
  const pinNote = await canPin();
  const pin = pinNote === undefined;
  const loadavg = (await readProc("/proc/loadavg").catch(() => ""))
    .split(" ").slice(0, 3).join(" ");
  const cpu = (await readProc("/proc/cpuinfo").catch(() => ""))
    .match(/^model name\s*:\s*(.*)$/m)?.[1] ?? "unknown CPU";
  console.log(
    [
      `## Connection benchmark${
        flags.quick ? " (--quick: harness check only)" : ""
      }`,
      "",
      `- command: \`deno run -N -R --allow-run bench/connection_bench.ts ${
        Deno.args.join(" ")
      }\``.replace(/ `$/, "`"),
      `- ${
        new Date().toISOString()
      }, Deno ${Deno.version.deno}, ${cpu}, ${navigator.hardwareConcurrency} CPUs, load average ${loadavg}`,
      `- ${
        pin
          ? "servers pinned to CPU 1 (taskset -c 1), load generator to CPU 0"
          : pinNote
      }; ${ROUNDS} round(s); ${SECONDS} s per timed cell`,
      "",
    ].join("\n"),
  );
  if (ONLY !== "memory") await throughput(rows, columns, pin);
  if (ONLY === undefined) console.log("");
  if (ONLY !== "throughput") await memory(pin, columns);
}

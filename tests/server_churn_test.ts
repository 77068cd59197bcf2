/**
 * Connection churn against the default limits: many clients connect and
 * leave at full speed, at most 200 of them at once. No one may be refused,
 * and every descriptor must be given back.
 */
import assert from "node:assert/strict";
import { type ConnectionInfo, serve, type ServeOptions } from "../server.ts";
import { EchoStream } from "../services.ts";

const TOTAL = 20_000;
const CONCURRENCY = 200;
/** The whole run must finish within this (a bound, not a measurement). */
const DEADLINE = 90_000;

/**
 * This process's open sockets, counted by `ls` (Deno lets only
 * `--allow-all` read `/proc/self`). Sockets only: running `ls` itself
 * opens pipes and a pidfd that close a moment later.
 */
async function openSockets(): Promise<number> {
  const output = await new Deno.Command("ls", {
    args: ["-l", `/proc/${Deno.pid}/fd`],
    stdout: "piped",
    // A descriptor closing while `ls` looks is "No such file": ignored.
    stderr: "null",
  }).output();
  return new TextDecoder().decode(output.stdout).split("\n")
    .filter((line) => line.includes("socket:")).length;
}

async function churn(options: ServeOptions): Promise<string> {
  const baseline = await openSockets();
  const errors: [unknown, ConnectionInfo | undefined][] = [];
  let closed = 0;
  let closedWithError = 0;
  const allClosed = Promise.withResolvers<void>();
  const server = serve({
    port: 0,
    ...options,
    onError: (error, info) => errors.push([error, info]),
    onClose: (info) => {
      closed++;
      if (info.error !== undefined) closedWithError++;
      if (closed === TOTAL) allClosed.resolve();
    },
  }, () => new EchoStream());
  const { port } = server.addr as Deno.NetAddr;
  const start = performance.now();
  let next = 0;
  let notServed = 0;
  let peak = baseline;

  async function client(): Promise<void> {
    const one = new Uint8Array(1);
    while (next < TOTAL) {
      const i = next++;
      if (performance.now() - start > DEADLINE) {
        throw new Error(`churn took over ${DEADLINE} ms at ${i}`);
      }
      if (i % 2000 === 0) peak = Math.max(peak, await openSockets());
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        if (i % 2 === 0) {
          // Connect and leave at once.
          continue;
        }
        // Prove we are served: one byte, echoed.
        await conn.write(Uint8Array.of(i & 0xff));
        const n = await conn.read(one);
        if (n !== 1 || one[0] !== (i & 0xff)) notServed++;
      } catch {
        notServed++;
      } finally {
        conn.close();
      }
    }
  }

  await Promise.all(Array.from({ length: CONCURRENCY }, client));
  const clientsDone = performance.now() - start;
  await allClosed.promise;
  const stats = server.stats;
  const whileListening = await openSockets();
  await server.shutdown();
  const after = await openSockets();
  const elapsed = performance.now() - start;

  assert.deepEqual(errors, [], "nothing reported");
  assert.equal(notServed, 0, "every echo client was served");
  assert.equal(stats.accepted, TOTAL);
  assert.equal(stats.refused, 0);
  assert.equal(stats.closed, TOTAL);
  assert.equal(stats.open, 0);
  // The listener is the one socket beyond the baseline until shutdown.
  assert.equal(whileListening, baseline + 1, "only the listener is open");
  assert.equal(after, baseline, "back to the baseline after shutdown");
  return `${TOTAL} connections (${CONCURRENCY} at once) in ${
    clientsDone.toFixed(0)
  } ms (${(TOTAL / clientsDone * 1000).toFixed(0)}/s), all closed after ${
    elapsed.toFixed(0)
  } ms: refused ${stats.refused}, not served ${notServed}, ` +
    `closed with an error ${closedWithError}; open sockets ${baseline} before, ` +
    `peak sampled ${peak}, ${whileListening} while listening, ${after} after`;
}

Deno.test(`serve() with default limits takes ${TOTAL} connect/close at full speed, refusing no one and leaking nothing`, async () => {
  console.log(`queue (default): ${await churn({})}`);
});

Deno.test(`serve() with connectionPolicy refuse also refuses no one under churn, as departed clients stop counting`, async () => {
  console.log(`refuse: ${await churn({ connectionPolicy: "refuse" })}`);
});

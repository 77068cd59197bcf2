/**
 * A test entry for `_cli/udp.ts`, independent of the programs' flag
 * parsing: `udp_entry.ts server|client '<options as JSON>'`. SIGINT and
 * SIGTERM abort the run; a setup error prints `error: <message>` and exits 1.
 *
 * @module
 */

import { runUdpClient, runUdpServer } from "../../_cli/udp.ts";

const [mode, json = "{}"] = Deno.args;
const options = JSON.parse(json);
const controller = new AbortController();
for (const name of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(name, () => {
    console.error(`Shutting down on ${name}`);
    controller.abort();
  });
}
let code: number;
try {
  code = mode === "server"
    ? await runUdpServer({ ...options, signal: controller.signal })
    : await runUdpClient({ ...options, signal: controller.signal });
} catch (error) {
  console.error(
    `error: ${error instanceof Error ? error.message : String(error)}`,
  );
  code = 1;
}
Deno.exit(code);

import assert from "node:assert/strict";
import { checkLayering, libraryFiles } from "./_layering.ts";

const root = new URL("../", import.meta.url);

Deno.test("the library has no import cycle, no upward import and no import of _cli/", async () => {
  assert.deepEqual(checkLayering(await libraryFiles(root)), []);
});

Deno.test("checkLayering() finds a planted cycle, type-only imports included", () => {
  const files = new Map([
    ["connection.ts", 'import type { Codec } from "./framing.ts";\n'],
    ["framing.ts", 'import { Connection } from "./connection.ts";\n'],
  ]);
  const violations = checkLayering(files);
  assert.ok(
    violations.includes("import cycle: connection.ts ↔ framing.ts"),
    violations.join("\n"),
  );
  assert.ok(
    violations.some((v) =>
      v.startsWith("connection.ts (connection) imports framing.ts")
    ),
    violations.join("\n"),
  );
});

Deno.test("checkLayering() finds a cycle planted in the real tree", async () => {
  const files = await libraryFiles(root);
  files.set(
    "_errors.ts",
    `import { Connection } from "./connection.ts";\n${files.get("_errors.ts")}`,
  );
  const violations = checkLayering(files);
  assert.ok(
    violations.some((v) =>
      v.startsWith("import cycle:") && v.includes("_errors.ts")
    ),
  );
  assert.ok(
    violations.some((v) =>
      v.startsWith("_errors.ts (leaves) imports connection.ts")
    ),
  );
});

Deno.test("checkLayering() refuses a static import of _cli/ and an unknown file", () => {
  const files = new Map([
    ["server.ts", 'import { main } from "./_cli/server.ts";\n'],
    ["_cli/server.ts", 'import { serve } from "../server.ts";\n'],
    ["_misc.ts", "export const x = 1;\n"],
  ]);
  const violations = checkLayering(files);
  assert.ok(
    violations.includes(
      "server.ts imports _cli/server.ts: nothing outside _cli/ imports _cli/",
    ),
  );
  assert.ok(
    violations.some((v) => v.startsWith("_misc.ts belongs to no layer")),
  );
});

Deno.test("checkLayering() lets an entry's hook reach _cli/ dynamically, and nothing else", () => {
  const hook =
    'if (import.meta.main) {\n  import("./_cli/server.ts").then(({ main }) => main(Deno.args));\n}\n';
  const files = new Map([
    ["server.ts", hook],
    ["_cli/server.ts", 'import { serve } from "../server.ts";\n'],
  ]);
  assert.deepEqual(checkLayering(files), []);
  files.set("_server/serve.ts", 'const cli = import("../_cli/server.ts");\n');
  assert.equal(checkLayering(files).length, 1);
});

Deno.test("checkLayering() ignores imports inside comments and doc examples", () => {
  const files = new Map([
    [
      "_errors.ts",
      '/**\n * ```ts\n * import { serve } from "./server.ts";\n * ```\n */\n// import "./server.ts";\nexport {};\n',
    ],
    ["server.ts", "export {};\n"],
  ]);
  assert.deepEqual(checkLayering(files), []);
});

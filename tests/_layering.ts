/**
 * The package's layering, checked: every library file has a layer, no file
 * imports one above it, there is no import cycle (type-only imports count),
 * and nothing outside `_cli/` imports `_cli/` — the public entries reach the
 * programs only through a dynamic `import()` in their `import.meta.main`
 * hook.
 *
 * Run as a script (`deno run -R tests/_layering.ts`, part of `deno task ok`)
 * it prints every violation and exits 1; `tests/layering_test.ts` checks the
 * checker on planted faults.
 *
 * @module
 */

/** The layers, lowest first; a file may import its own layer or lower. */
export const LAYERS: readonly { name: string; files: RegExp }[] = [
  {
    name: "leaves",
    files: /^(_errors|_defaults|sync_transform|_connection\/bytes)\.ts$/,
  },
  { name: "engine", files: /^_connection\/(engine|pump)[a-z_]*\.ts$/ },
  {
    name: "connection",
    files: /^(connection\.ts|conn_streams\.ts|_connection\/)/,
  },
  {
    name: "framing and services",
    files: /^(framing\.ts|_framing\/|services\.ts|_services\/)/,
  },
  {
    name: "server, client, datagram and chat",
    files:
      /^(server\.ts|_server\/|client\.ts|_client\/|datagram\.ts|_datagram\/|chat\.ts|_chat\/)/,
  },
  { name: "testing", files: /^(testing\.ts|_testing\/)/ },
  { name: "the package entry", files: /^mod\.ts$/ },
  { name: "programs", files: /^_cli\// },
];

/** One thing wrong with the layering, as a sentence. */
export type Violation = string;

/** An import of a package file by another. */
export interface Edge {
  from: string;
  to: string;
  dynamic: boolean;
}

/** The layer index of a library file, or -1 when it has none. */
export function layerOf(path: string): number {
  return LAYERS.findIndex((layer) => layer.files.test(path));
}

function stripComments(source: string): string {
  return source
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("//"))
    .join("\n");
}

function resolve(from: string, specifier: string): string {
  const parts = from.split("/").slice(0, -1);
  for (const part of specifier.split("/")) {
    if (part === "." || part === "") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return parts.join("/");
}

/** The package-relative imports of one file's source. */
export function importsOf(path: string, source: string): Edge[] {
  const code = stripComments(source);
  const edges: Edge[] = [];
  const statics =
    /(?:^|\n)\s*(?:import|export)\s+(?:type\s+)?(?:[^;"']*?\sfrom\s+)?["'](\.{1,2}\/[^"']+)["']/g;
  for (const match of code.matchAll(statics)) {
    edges.push({ from: path, to: resolve(path, match[1]), dynamic: false });
  }
  for (
    const match of code.matchAll(/import\(\s*["'](\.{1,2}\/[^"']+)["']\s*\)/g)
  ) {
    edges.push({ from: path, to: resolve(path, match[1]), dynamic: true });
  }
  return edges.filter((edge) => edge.to.endsWith(".ts"));
}

function cycles(files: Iterable<string>, edges: Edge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const edge of edges) {
    if (edge.dynamic) continue;
    next.set(edge.from, [...(next.get(edge.from) ?? []), edge.to]);
  }
  // Tarjan's strongly connected components: any with more than one file, or
  // a file importing itself, is a cycle.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let counter = 0;
  const visit = (file: string): void => {
    index.set(file, counter);
    low.set(file, counter++);
    stack.push(file);
    onStack.add(file);
    for (const to of next.get(file) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(file, Math.min(low.get(file)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(file, Math.min(low.get(file)!, index.get(to)!));
      }
    }
    if (low.get(file) === index.get(file)) {
      const component: string[] = [];
      let member: string;
      do {
        member = stack.pop()!;
        onStack.delete(member);
        component.push(member);
      } while (member !== file);
      if (component.length > 1 || (next.get(file) ?? []).includes(file)) {
        found.push(component.sort());
      }
    }
  };
  for (const file of files) if (!index.has(file)) visit(file);
  return found;
}

/**
 * Every violation of the layering among `files` (package-relative path →
 * source), in a stable order.
 */
export function checkLayering(files: ReadonlyMap<string, string>): Violation[] {
  const violations: Violation[] = [];
  const edges = [...files].flatMap(([path, source]) => importsOf(path, source));
  for (const path of files.keys()) {
    if (layerOf(path) < 0) {
      violations.push(
        `${path} belongs to no layer: add it to LAYERS in tests/_layering.ts`,
      );
    }
  }
  for (const { from, to, dynamic } of edges) {
    const [a, b] = [layerOf(from), layerOf(to)];
    if (!files.has(to)) {
      violations.push(`${from} imports ${to}, which is not a library file`);
    } else if (dynamic) {
      if (
        !/^_cli\//.test(to) || (from.includes("/") && !/^_cli\//.test(from))
      ) {
        violations.push(
          `${from} imports ${to} dynamically: only a public entry's import.meta.main hook (or a program) may, and only _cli/`,
        );
      }
    } else if (/^_cli\//.test(to) && !/^_cli\//.test(from)) {
      violations.push(
        `${from} imports ${to}: nothing outside _cli/ imports _cli/`,
      );
    } else if (a >= 0 && b > a) {
      violations.push(
        `${from} (${LAYERS[a].name}) imports ${to} (${
          LAYERS[b].name
        }), a layer above it`,
      );
    }
  }
  for (const cycle of cycles(files.keys(), edges)) {
    violations.push(`import cycle: ${cycle.join(" ↔ ")}`);
  }
  return violations;
}

/** The library's files under `root`: every `.ts` outside tests, bench and examples. */
export async function libraryFiles(root: URL): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for await (const entry of Deno.readDir(new URL(dir || ".", root))) {
      const path = dir ? `${dir}/${entry.name}` : entry.name;
      if (entry.isDirectory) {
        if (/^[_a-z]/.test(entry.name) && !dir && entry.name.startsWith("_")) {
          await walk(path);
        }
      } else if (entry.name.endsWith(".ts")) {
        files.set(path, await Deno.readTextFile(new URL(path, root)));
      }
    }
  };
  await walk("");
  return files;
}

if (import.meta.main) {
  const violations = checkLayering(
    await libraryFiles(new URL("../", import.meta.url)),
  );
  for (const violation of violations) console.error(violation);
  if (violations.length > 0) {
    console.error(`layering: ${violations.length} violations`);
    Deno.exit(1);
  }
  console.log(
    "layering: no import cycle, no upward import, _cli/ reached only from hooks",
  );
}

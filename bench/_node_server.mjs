// The Node column of `connection_bench.ts`: Node's `net` with a user's
// `Transform`, the way a Node user writes a server, run as its own process:
//
//   node --expose-gc bench/_node_server.mjs --kind node|node-upper|node-lines
//
// It speaks `_server.ts`'s control protocol: one JSON hello line
// (`{"kind","port","pid"}`), then one JSON answer per control line read
// from stdin (`stats`, `until-accepted N`, `until-open N`, `gc`,
// `gc reduce`); it exits when stdin ends.
//
// - `node`: echo, `socket.pipe(new Transform(identity)).pipe(socket)`;
// - `node-upper`: the same Transform upper-casing each chunk into a new
//   Buffer, a word at a time (as `upperCase()` does);
// - `node-lines`: "+PONG\r\n" pushed for every "\n" of the input.
//
// `allowHalfOpen` keeps the socket open after the client's FIN so that the
// answer is sent in full before ours; `noDelay` as in every other server.
import net from "node:net";
import { Transform } from "node:stream";

const kind = process.argv[process.argv.indexOf("--kind") + 1] ?? "node";
const PONG = Buffer.from("+PONG\r\n");

function lowerMask(word) {
  const low = word & 0x7f7f7f7f;
  return (low + 0x1f1f1f1f) & ~(low + 0x05050505) & ~word & 0x80808080;
}

function upper(chunk) {
  const out = Buffer.allocUnsafe(chunk.length);
  chunk.copy(out);
  const words = (out.byteOffset & 3) === 0
    ? new Int32Array(out.buffer, out.byteOffset, out.length >>> 2)
    : new Int32Array(0);
  for (let w = 0; w < words.length; w++) {
    const word = words[w];
    words[w] = word ^ (lowerMask(word) >>> 2);
  }
  for (let i = words.length << 2; i < out.length; i++) {
    const b = out[i];
    if (b >= 0x61 && b <= 0x7a) out[i] = b - 0x20;
  }
  return out;
}

function transform() {
  if (kind === "node-upper") {
    return new Transform({
      transform(chunk, _encoding, callback) {
        callback(null, upper(chunk));
      },
    });
  }
  if (kind === "node-lines") {
    return new Transform({
      transform(chunk, _encoding, callback) {
        for (
          let i = chunk.indexOf(10);
          i !== -1;
          i = chunk.indexOf(10, i + 1)
        ) {
          this.push(PONG);
        }
        callback();
      },
    });
  }
  return new Transform({
    transform(chunk, _encoding, callback) {
      callback(null, chunk);
    },
  });
}

if (!["node", "node-upper", "node-lines"].includes(kind)) {
  console.log(JSON.stringify({ kind, error: `unknown kind '${kind}'` }));
  process.exit(1);
}

let accepted = 0;
let open = 0;
const waiters = new Set();
const changed = () => {
  for (const check of waiters) check();
};

const server = net.createServer(
  { allowHalfOpen: true, noDelay: true },
  (socket) => {
    accepted++;
    open++;
    changed();
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      open--;
      changed();
    });
    socket.pipe(transform()).pipe(socket);
  },
);
server.listen(0, "127.0.0.1", () => {
  console.log(
    JSON.stringify({ kind, port: server.address().port, pid: process.pid }),
  );
});

const counts = () => {
  const memory = process.memoryUsage();
  return {
    accepted,
    open,
    rss: Math.round(memory.rss / 1024),
    heapUsed: Math.round(memory.heapUsed / 1024),
    external: Math.round((memory.external + memory.arrayBuffers) / 1024),
  };
};
const say = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const until = (ready) =>
  new Promise((resolve) => {
    const check = () => {
      if (ready()) {
        waiters.delete(check);
        resolve();
      }
    };
    waiters.add(check);
    check();
  });

let text = "";
let queue = Promise.resolve();
process.stdin.setEncoding("utf8");
process.stdin.on("data", (part) => {
  text += part;
  for (let lf; (lf = text.indexOf("\n")) !== -1;) {
    const [command, arg] = text.slice(0, lf).trim().split(/\s+/);
    text = text.slice(lf + 1);
    const n = Number(arg);
    queue = queue.then(async () => {
      if (command === "stats") say(counts());
      else if (command === "until-accepted") {
        await until(() => accepted >= n);
        say(counts());
      } else if (command === "until-open") {
        await until(() => open === n);
        say(counts());
      } else if (command === "gc") {
        globalThis.gc?.(
          arg === "reduce"
            ? { type: "major", execution: "sync", flavor: "last-resort" }
            : undefined,
        );
        say({ gc: globalThis.gc !== undefined });
      } else say({ error: `unknown command '${command}'` });
    });
  }
});
process.stdin.on("end", () => process.exit(0));

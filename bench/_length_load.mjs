// The load client of framed_bench.ts, for Node (so that the client's cost
// does not depend on Deno): `conns` connections, each sending `depth`
// length-prefixed frames (4-byte big-endian length, `size`-byte payload) in
// one write and waiting for all their echoes before the next batch, until
// `total` frames in all or `seconds`; every echo is checked. Prints one
// JSON line: {"frames", "seconds"}.
//
//   node bench/_length_load.mjs <port> [conns 50] [depth 16] [size 64] [total 2000000] [seconds 10]
import net from "node:net";

const [
  port,
  conns = 50,
  depth = 16,
  size = 64,
  total = 2_000_000,
  seconds = 10,
] = process.argv.slice(2).map(Number);
const frame = Buffer.alloc(4 + size);
frame.writeUInt32BE(size, 0);
for (let i = 0; i < size; i++) frame[4 + i] = 0x61 + (i % 26);
const batch = Buffer.concat(Array.from({ length: depth }, () => frame));

let started = 0;
let done = 0;
const start = performance.now();
const until = start + seconds * 1000;
const fail = (error) => {
  console.error(`_length_load: ${error.message}`);
  process.exit(1);
};
const deadline = setTimeout(
  () => fail(new Error(`no end after ${seconds + 10} s`)),
  (seconds + 10) * 1000,
);

await Promise.all(Array.from({ length: conns }, () =>
  new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port, noDelay: true });
    let expected = 0; // bytes of the batch in flight still to come back
    let offset = 0; // where in `batch` the next byte read should match
    const send = () => {
      if (started >= total || performance.now() > until) {
        socket.end();
        return resolve();
      }
      started += depth;
      expected = batch.length;
      offset = 0;
      socket.write(batch);
    };
    socket.on("connect", send);
    socket.on("data", (data) => {
      // The first and last byte of every read, against what was sent.
      if (
        data[0] !== batch[offset] ||
        data[data.length - 1] !== batch[offset + data.length - 1]
      ) {
        fail(new Error("Wrong echo"));
      }
      offset += data.length;
      expected -= data.length;
      if (expected < 0) fail(new Error("More bytes than sent"));
      if (expected === 0) {
        done += depth;
        send();
      }
    });
    socket.on("error", fail);
  })));
clearTimeout(deadline);
console.log(
  JSON.stringify({ frames: done, seconds: (performance.now() - start) / 1000 }),
);

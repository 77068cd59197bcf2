// The load of `flood_bench.ts`: peers that send "PING\r\n" as fast as the
// server takes it and never read a byte of the answers, so that the server,
// its write buffer full, must stop reading.
//
//   node bench/_flood_load.mjs <port> [conns 8] [quiet ms 1000] [limit MiB 256]
//
// A connection counts as stalled once a write has waited `quiet` ms for
// room (the server reads no more); `limit` MiB sent also ends its flood.
// When every connection is done it prints one JSON line, `{"sent":
// [bytes per connection], "stalled": n}`, and holds the connections open
// until stdin ends, so that the server can be measured meanwhile. It gives
// up after 60 s in all.
import net from "node:net";

const [port, conns = 8, quiet = 1000, limit = 256] = process.argv.slice(2)
  .map(Number);
// 64 KiB of inline PINGs, which the Redis protocol and a line server take.
const chunk = Buffer.from("PING\r\n".repeat(10923));
const sockets = [];
const sent = [];
let done = 0;
let stalled = 0;

function finish() {
  if (++done < conns) return;
  process.stdout.write(JSON.stringify({ sent, stalled }) + "\n");
}

for (let i = 0; i < conns; i++) {
  const socket = net.connect(port, "127.0.0.1");
  sockets.push(socket);
  sent.push(0);
  socket.pause(); // never read
  let over = false;
  const end = (why) => {
    if (over) return;
    over = true;
    if (why === "stalled") stalled++;
    finish();
  };
  const flood = () => {
    while (!over && sent[i] < limit * 1048576) {
      sent[i] += chunk.length;
      if (!socket.write(chunk)) {
        const timer = setTimeout(() => end("stalled"), quiet);
        socket.once("drain", () => {
          clearTimeout(timer);
          if (!over) flood();
        });
        return;
      }
    }
    end("limit");
  };
  socket.on("connect", flood);
  socket.on("error", (error) => {
    process.stderr.write(`_flood_load: connection ${i}: ${error.message}\n`);
    end("error");
  });
}

const giveUp = setTimeout(() => {
  process.stderr.write("_flood_load: gave up after 60 s\n");
  process.exit(1);
}, 60_000);
process.stdin.on("data", () => {});
process.stdin.on("end", () => {
  clearTimeout(giveUp);
  for (const socket of sockets) socket.destroy();
});

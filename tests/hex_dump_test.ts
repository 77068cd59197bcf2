import assert from "node:assert/strict";
import { fileSink, formatHexDump, HexDump } from "../_cli/hex_dump.ts";
import { Connection } from "../connection.ts";
import { serve } from "../server.ts";
import { upperCase, UpperCaseStream } from "../services.ts";

const encoder = new TextEncoder();

/** A sink that collects text. */
function textSink() {
  const out = { text: "", chunks: 0 };
  const decoder = new TextDecoder();
  const sink = new WritableStream<Uint8Array>({
    write(chunk) {
      out.chunks++;
      out.text += decoder.decode(chunk, { stream: true });
    },
  });
  return { sink, out };
}

Deno.test("formatHexDump() writes offset, 16 bytes in hex with a gap after 8, and ASCII", () => {
  const bytes = encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assert.equal(
    formatHexDump(bytes, { direction: ">" }),
    [
      "> 00000000  47 45 54 20 2f 20 48 54  54 50 2f 31 2e 31 0d 0a  |GET / HTTP/1.1..|",
      "> 00000010  48 6f 73 74 3a 20 78 0d  0a 0d 0a                 |Host: x....|",
      "",
    ].join("\n"),
  );
});

Deno.test("formatHexDump() pads every short line to the same column", () => {
  const lines = [];
  for (let n = 1; n <= 16; n++) {
    const line = formatHexDump(new Uint8Array(n).fill(0x41), {
      direction: "<",
    });
    assert.equal(line.split("\n").length, 2, `${n} bytes make one line`);
    lines.push(line);
    // "|" always at column 62: 2 + 8 + 2 + 49 + 1 characters before it.
    assert.equal(line.indexOf("|"), 62, `${n} bytes`);
    assert.equal(
      line,
      `< 00000000  ${hexOf(n)}`.padEnd(62) + `|${"A".repeat(n)}|\n`,
    );
  }
  assert.equal(
    lines[8],
    "< 00000000  41 41 41 41 41 41 41 41  41" + " ".repeat(23) +
      "|AAAAAAAAA|\n",
  );
});

/** `n` bytes 0x41 in hex, with the gap after the eighth. */
function hexOf(n: number): string {
  const words = Array.from({ length: n }, () => "41");
  return words.slice(0, 8).join(" ") +
    (n > 8 ? "  " + words.slice(8).join(" ") : "");
}

Deno.test("formatHexDump() shows only printable ASCII as itself", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const lines = formatHexDump(all, { direction: ">" }).split("\n");
  assert.equal(lines.length, 17);
  assert.equal(lines[16], "");
  assert.equal(
    lines[1],
    "> 00000010  10 11 12 13 14 15 16 17  18 19 1a 1b 1c 1d 1e 1f  |................|",
  );
  assert.equal(
    lines[2],
    "> 00000020  20 21 22 23 24 25 26 27  28 29 2a 2b 2c 2d 2e 2f  | !\"#$%&'()*+,-./|",
  );
  assert.equal(
    lines[7],
    "> 00000070  70 71 72 73 74 75 76 77  78 79 7a 7b 7c 7d 7e 7f  |pqrstuvwxyz{|}~.|",
  );
  assert.equal(
    lines[15],
    "> 000000f0  f0 f1 f2 f3 f4 f5 f6 f7  f8 f9 fa fb fc fd fe ff  |................|",
  );
});

Deno.test("formatHexDump() takes an offset and a label, and gives nothing for no bytes", () => {
  assert.equal(formatHexDump(new Uint8Array(0), { direction: ">" }), "");
  assert.equal(
    formatHexDump(encoder.encode("ok"), {
      direction: "<",
      offset: 0x1_0000_0000,
      label: "#12",
    }),
    "#12 < 100000000  6f 6b" + " ".repeat(45) + "|ok|\n",
  );
});

Deno.test("formatHexDump() refuses a bad direction or offset", () => {
  assert.throws(
    () =>
      formatHexDump(new Uint8Array(1), {
        direction: "in" as unknown as ">",
      }),
    new TypeError(
      `Cannot format hex dump as direction must be ">" or "<": current value is "in"`,
    ),
  );
  assert.throws(
    () => formatHexDump(new Uint8Array(1), { direction: ">", offset: -1 }),
    new RangeError(
      "Cannot format hex dump as offset must be an integer >= 0: current value is -1",
    ),
  );
});

Deno.test("HexDump keeps each channel's offsets per direction and writes in call order", async () => {
  const { sink, out } = textSink();
  const dump = new HexDump(sink);
  const one = dump.channel("#1");
  const two = dump.channel("#2");
  await dump.note("#1 connected");
  const writes = [
    one.write(">", encoder.encode("a".repeat(20))),
    two.write("<", encoder.encode("b")),
    one.write("<", encoder.encode("c")),
    one.write(">", encoder.encode("d")),
  ];
  await Promise.all(writes);
  await dump.close();
  assert.equal(
    out.text,
    [
      "#1 connected",
      "#1 > 00000000  61 61 61 61 61 61 61 61  61 61 61 61 61 61 61 61  |aaaaaaaaaaaaaaaa|",
      "#1 > 00000010  61 61 61 61" + " ".repeat(39) + "|aaaa|",
      "#2 < 00000000  62" + " ".repeat(48) + "|b|",
      "#1 < 00000000  63" + " ".repeat(48) + "|c|",
      "#1 > 00000014  64" + " ".repeat(48) + "|d|",
      "",
    ].join("\n"),
  );
  assert.equal(one.offset(">"), 21);
  assert.equal(one.offset("<"), 1);
  assert.equal(two.offset(">"), 0);
  await assert.rejects(
    () => one.write(">", new Uint8Array(1)),
    new TypeError("Cannot write hex dump as it is closed"),
  );
});

Deno.test("HexDump waits for a slow sink, and reports its error", async () => {
  const started = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  let writes = 0;
  const sink = new WritableStream<Uint8Array>({
    async write() {
      writes++;
      started.resolve();
      await release.promise;
      if (writes === 2) throw new Error("disk full");
    },
  });
  const channel = new HexDump(sink).channel();
  let settled = false;
  const first = channel.write(">", new Uint8Array(1)).then(() => {
    settled = true;
  });
  await started.promise;
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  assert.equal(settled, false, "write() waits while the sink is busy");
  release.resolve();
  await first;
  // The second write fails in the sink: the third reports it.
  await channel.write(">", new Uint8Array(1)).catch(() => {});
  await assert.rejects(
    () => channel.write(">", new Uint8Array(1)),
    new Error("disk full"),
  );
});

Deno.test("fileSink() has each line in the file once its write fulfils", async () => {
  const path = await Deno.makeTempFile();
  try {
    const dump = new HexDump(
      fileSink(await Deno.open(path, { write: true, truncate: true })),
    );
    const channel = dump.channel("#1");
    await channel.write("<", encoder.encode("hi"));
    assert.equal(
      await Deno.readTextFile(path),
      "#1 < 00000000  68 69" + " ".repeat(45) + "|hi|\n",
    );
    await dump.note("#1 closed");
    assert.match(await Deno.readTextFile(path), /\|hi\|\n#1 closed\n$/);
    await dump.close();
    await assert.rejects(
      () => dump.note("late"),
      new TypeError("Cannot write hex dump as it is closed"),
    );
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("fileSink() finishes short writes, and closes the file on close or a failed write", async () => {
  const written: number[] = [];
  let closes = 0;
  const slow = {
    // Takes at most 3 bytes a call, as a file or pipe may.
    write: (bytes: Uint8Array) => {
      written.push(...bytes.subarray(0, 3));
      return Promise.resolve(Math.min(3, bytes.length));
    },
    close: () => void closes++,
  };
  const writer = fileSink(slow).getWriter();
  await writer.write(new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
  assert.deepEqual(written, [1, 2, 3, 4, 5, 6, 7]);
  assert.equal(closes, 0);
  await writer.close();
  assert.equal(closes, 1);

  closes = 0;
  const failing = fileSink({
    write: () => Promise.reject(new Error("disk full")),
    close: () => void closes++,
  }).getWriter();
  await assert.rejects(() => failing.write(new Uint8Array(1)), /disk full/);
  assert.equal(closes, 1);
  await assert.rejects(() => failing.close());
  assert.equal(closes, 1, "closed once");
});

/** The bytes of the dump lines of one direction, read back from the hex. */
function undump(text: string, direction: ">" | "<"): Uint8Array {
  const bytes: number[] = [];
  let next = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${direction} `)) continue;
    const offset = parseInt(line.slice(2, 10), 16);
    assert.equal(offset, next, "offsets run on");
    for (const hex of line.slice(12, 61).trim().split(/ +/)) {
      bytes.push(parseInt(hex, 16));
    }
    next = bytes.length;
  }
  return new Uint8Array(bytes);
}

Deno.test("HexDumpChannel.tap() dumps both directions of a loopback exchange into a file", async () => {
  const path = await Deno.makeTempFile();
  try {
    const file = await Deno.open(path, { write: true, truncate: true });
    const dump = new HexDump(fileSink(file));
    const channel = dump.channel();
    await using server = serve({ port: 0 }, () => new UpperCaseStream());
    await using client = new Connection(
      await Deno.connect({
        hostname: "127.0.0.1",
        port: (server.addr as Deno.NetAddr).port,
      }),
    );
    const sent = encoder.encode("hex dump me, all of me\n".repeat(5000));
    const chunks = [];
    for (let i = 0; i < sent.length; i += 1000) {
      chunks.push(sent.subarray(i, i + 1000));
    }
    const [, answer] = await Promise.all([
      ReadableStream.from(chunks).pipeThrough(channel.tap(">"))
        .pipeTo(client.writable), // then our FIN
      new Response(client.readable.pipeThrough(channel.tap("<"))).bytes(),
    ]);
    await dump.close();
    assert.deepEqual(answer, upperCase(sent));
    const text = await Deno.readTextFile(path);
    assert.deepEqual(undump(text, ">"), sent);
    assert.deepEqual(undump(text, "<"), answer);
    assert.equal(channel.offset(">"), sent.length);
    assert.equal(channel.offset("<"), sent.length);
  } finally {
    await Deno.remove(path);
  }
});

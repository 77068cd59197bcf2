import assert from "node:assert/strict";
import { ChatRoom } from "../chat.ts";
import { Connection } from "../connection.ts";
import { serve } from "../server.ts";
import { chunkings, connPair } from "../testing.ts";

const encoder = new TextEncoder();

/**
 * A chat client over a bare `Deno.Conn` that reads everything it is sent in
 * the background (unless told not to), so tests can wait for lines or for a
 * byte count.
 */
class Peer implements AsyncDisposable {
  readonly conn: Deno.Conn;
  /** `127.0.0.1:<its port>`, the name the room gives it. */
  readonly name: string;
  /** Everything received, decoded. */
  text = "";
  /** Bytes received. */
  received = 0;
  /** How reading ended: "eof", or the error. */
  readonly ended: Promise<unknown>;
  #decoder = new TextDecoder();
  #lineStart = 0;
  #waiters: { test: () => boolean; resolve: () => void }[] = [];
  #done = false;

  constructor(conn: Deno.Conn, read = true) {
    this.conn = conn;
    this.name = `127.0.0.1:${(conn.localAddr as Deno.NetAddr).port}`;
    this.ended = read ? this.#read() : Promise.resolve("not reading");
  }

  static async connect(port: number, read = true): Promise<Peer> {
    return new Peer(
      await Deno.connect({ hostname: "127.0.0.1", port }),
      read,
    );
  }

  async #read(): Promise<unknown> {
    const buffer = new Uint8Array(65536);
    let end: unknown = "eof";
    try {
      for (let n; (n = await this.conn.read(buffer)) !== null;) {
        this.received += n;
        this.text += this.#decoder.decode(buffer.subarray(0, n), {
          stream: true,
        });
        this.#check();
      }
    } catch (error) {
      end = error;
    }
    this.#done = true;
    this.#check();
    return end;
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((waiter) => {
      if (!waiter.test() && !this.#done) return true;
      waiter.resolve();
      return false;
    });
  }

  /** Waits until `test` holds (or reading has ended). */
  until(test: () => boolean): Promise<void> {
    if (test() || this.#done) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#waiters.push({ test, resolve });
    return promise;
  }

  /** The next whole line, without "\n"; undefined at the end. */
  async nextLine(): Promise<string | undefined> {
    await this.until(() => this.text.indexOf("\n", this.#lineStart) !== -1);
    const end = this.text.indexOf("\n", this.#lineStart);
    if (end === -1) return undefined;
    const line = this.text.slice(this.#lineStart, end);
    this.#lineStart = end + 1;
    return line;
  }

  async send(text: string): Promise<void> {
    const bytes = encoder.encode(text);
    for (let n = 0; n < bytes.length;) {
      n += await this.conn.write(bytes.subarray(n));
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    try {
      this.conn.close();
    } catch { /* closed already */ }
    await this.ended;
  }
}

/** A server of `room` on a free port. */
function serveRoom(room: ChatRoom) {
  const closed: unknown[] = [];
  const errors: unknown[] = [];
  const server = serve({
    port: 0,
    onClose: (info) => closed.push(info.error),
    onError: (error) => errors.push(error),
  }, (connection) => room.join(connection));
  return {
    server,
    port: (server.addr as Deno.NetAddr).port,
    closed,
    errors,
  };
}

Deno.test("ChatRoom relays each line to every other client with the sender's name", async () => {
  const room = new ChatRoom();
  const { server, port, errors } = serveRoom(room);
  await using _ = server;
  await using alice = await Peer.connect(port);
  assert.equal(await alice.nextLine(), `* you are ${alice.name}`);
  await using bob = await Peer.connect(port);
  assert.equal(await bob.nextLine(), `* you are ${bob.name}`);
  assert.equal(await alice.nextLine(), `* ${bob.name} joined`);
  await using carol = await Peer.connect(port);
  assert.equal(await carol.nextLine(), `* you are ${carol.name}`);
  assert.equal(await alice.nextLine(), `* ${carol.name} joined`);
  assert.equal(await bob.nextLine(), `* ${carol.name} joined`);
  assert.equal(room.size, 3);

  // A line in two pieces, ending in "\r\n"; then two lines at once.
  await alice.send("hi ");
  await alice.send("all\r\n");
  assert.equal(await bob.nextLine(), `[${alice.name}] hi all`);
  assert.equal(await carol.nextLine(), `[${alice.name}] hi all`);
  await carol.send("Grüße\n\nbye\n");
  for (const peer of [alice, bob]) {
    assert.equal(await peer.nextLine(), `[${carol.name}] Grüße`);
    assert.equal(await peer.nextLine(), `[${carol.name}] `);
    assert.equal(await peer.nextLine(), `[${carol.name}] bye`);
  }

  // Bob half-closes after a line without "\n": it still goes out, and he
  // leaves, with our FIN after what was queued for him.
  await bob.send("partial");
  await bob.conn.closeWrite();
  assert.equal(await bob.ended, "eof");
  assert.equal(await bob.nextLine(), undefined);
  for (const peer of [alice, carol]) {
    assert.equal(await peer.nextLine(), `[${bob.name}] partial`);
    assert.equal(await peer.nextLine(), `* ${bob.name} left`);
  }
  // Alice never heard her own lines: the next one she gets is Carol's.
  await carol.send("still here\n");
  assert.equal(await alice.nextLine(), `[${carol.name}] still here`);
  assert.equal(room.size, 2);
  assert.equal(room.dropped, 0);
  assert.deepEqual(errors, []);
});

/**
 * Alice floods 25 MB in 100-byte lines, far more than the kernel buffers
 * toward Carol can hold; Bob reads everything, Carol nothing at all (not
 * even her welcome). `paced`: each batch waits for Bob to have it all.
 */
async function flood(room: ChatRoom, paced: boolean) {
  const { server, port, closed, errors } = serveRoom(room);
  await using _ = server;
  await using alice = await Peer.connect(port);
  await alice.nextLine();
  await using bob = await Peer.connect(port);
  await bob.nextLine();
  await alice.nextLine();
  await using carol = await Peer.connect(port, false);
  await alice.until(() => alice.text.includes(`* ${carol.name} joined`));
  await bob.until(() => bob.text.includes(`* ${carol.name} joined`));
  const aliceStart = alice.received;
  const bobStart = bob.received;

  const line = (i: number) =>
    `${String(i).padStart(8, "0")} ${"x".repeat(90)}\n`;
  const prefix = `[${alice.name}] `;
  const batchLines = 600; // 60 KB a batch, 70 KB with prefixes
  const total = 420 * batchLines; // 25.2 MB
  let expected = 0;
  let peak = 0;
  for (let sent = 0; sent < total; sent += batchLines) {
    let batch = "";
    for (let i = sent; i < sent + batchLines; i++) batch += line(i);
    await alice.send(batch);
    expected += batch.length + batchLines * prefix.length;
    if (paced) await bob.until(() => bob.received - bobStart >= expected);
    peak = Math.max(peak, room.queuedBytes);
  }
  const dropNotice = `* ${carol.name} dropped: not reading\n`;
  await bob.until(() =>
    bob.received - bobStart >= expected + dropNotice.length
  );

  // Carol was dropped; Bob got every line of Alice's, in order, and the
  // notice; memory stayed bounded by the per-client queue.
  assert.equal(room.dropped, 1);
  assert.equal(room.size, 2);
  assert.ok(
    room.peakQueuedBytes <= room.maxQueuedBytes + 16384,
    `peak queue ${room.peakQueuedBytes} bytes`,
  );
  assert.ok(peak <= 2 * (room.maxQueuedBytes + 16384), `peak ${peak} bytes`);
  const received = bob.text.slice(bob.text.length - (bob.received - bobStart));
  assert.ok(received.includes(dropNotice), "Bob was told of the drop");
  const lines = received.replace(dropNotice, "").split("\n");
  assert.equal(lines.pop(), "");
  assert.equal(lines.length, total);
  lines.forEach((text, i) => {
    if (text !== prefix + line(i).slice(0, -1)) {
      assert.fail(`line ${i} is ${JSON.stringify(text.slice(0, 40))}`);
    }
  });
  assert.ok(
    alice.text.slice(alice.text.length - (alice.received - aliceStart))
      .includes(dropNotice),
  );

  // The two others keep chatting.
  await bob.send("still there?\n");
  assert.equal(
    await lineAfter(alice, `[${bob.name}] still there?`),
    `[${bob.name}] still there?`,
  );
  await alice.send("yes\n");
  assert.equal(
    await lineAfter(bob, `[${alice.name}] yes`),
    `[${alice.name}] yes`,
  );
  assert.equal(room.queuedBytes, 0);
  assert.deepEqual(errors, []);
  // Carol's connection was closed by the server; the reason is recorded.
  return closed.find((error) => error !== undefined);
}

Deno.test("ChatRoom drops a client that stops reading during a flood while two others keep chatting", async () => {
  // Alice sends as fast as the room reads her: the flood waits for Carol
  // for drainTimeout, then she is dropped and it goes at Bob's pace.
  const room = new ChatRoom({ drainTimeout: 200 });
  const reason = await flood(room, false);
  assert.ok(reason instanceof Deno.errors.TimedOut, `${reason}`);
  assert.match(
    reason.message,
    /^Cannot send to chat client as its queue must drain below 131072 bytes within 200 ms: current size is \d+ bytes/,
  );
});

Deno.test("ChatRoom without drainTimeout drops a client at maxQueuedBytes", async () => {
  // Paced by Bob, so that only Carol, who reads nothing, fills her queue.
  const room = new ChatRoom({ drainTimeout: 0 });
  const reason = await flood(room, true);
  assert.ok(reason instanceof RangeError, `${reason}`);
  assert.match(
    reason.message,
    /^Cannot queue chat message as a client's queue must stay <= 262144 bytes: current size would be \d+ bytes/,
  );
});

/** Skips `peer`'s lines until `want`, which it returns. */
async function lineAfter(
  peer: Peer,
  want: string,
): Promise<string | undefined> {
  while (true) {
    const line = await peer.nextLine();
    if (line === undefined || line === want) return line;
  }
}

Deno.test("ChatRoom tells a client whose line is too long, and it leaves", async () => {
  const room = new ChatRoom({ maxLineLength: 100 });
  const { server, port } = serveRoom(room);
  await using _ = server;
  await using alice = await Peer.connect(port);
  await alice.nextLine();
  await using bob = await Peer.connect(port);
  await bob.nextLine();
  await alice.nextLine();
  await bob.send(`${"a".repeat(100)}\r\n`); // at the limit: fine
  assert.equal(await alice.nextLine(), `[${bob.name}] ${"a".repeat(100)}`);
  await bob.send("b".repeat(150));
  assert.match(
    (await bob.nextLine())!,
    /^\* Cannot relay line as its length must be <= 100 bytes: current length is at least \d+ bytes$/,
  );
  assert.equal(await bob.nextLine(), undefined);
  assert.equal(await alice.nextLine(), `* ${bob.name} left: line too long`);
  assert.equal(room.size, 1);
});

Deno.test("ChatRoom uses the name option and announces to everyone", async () => {
  const room = new ChatRoom({ name: (connection) => `user${connection.id}` });
  const { server, port } = serveRoom(room);
  await using _ = server;
  await using alice = await Peer.connect(port);
  const [, id] = (await alice.nextLine())!.match(/^\* you are user(\d+)$/)!;
  await using bob = await Peer.connect(port);
  await bob.nextLine();
  await alice.nextLine();
  await alice.send("hi\n");
  assert.equal(await bob.nextLine(), `[user${id}] hi`);
  room.announce("closing soon");
  assert.equal(await alice.nextLine(), "* closing soon");
  assert.equal(await bob.nextLine(), "* closing soon");
});

Deno.test("ChatRoom refuses bad bounds with a RangeError", () => {
  assert.throws(
    () => new ChatRoom({ maxQueuedBytes: 0 }),
    new RangeError(
      "Cannot create chat room as maxQueuedBytes must be an integer >= 1: current value is 0",
    ),
  );
  assert.throws(
    () => new ChatRoom({ maxLineLength: 1.5 }),
    new RangeError(
      "Cannot create chat room as maxLineLength must be an integer >= 1: current value is 1.5",
    ),
  );
  assert.throws(
    () => new ChatRoom({ drainTimeout: -1 }),
    new RangeError(
      "Cannot create chat room as drainTimeout must be a number of milliseconds from 0 to 2147483647: current value is -1",
    ),
  );
});

Deno.test("ChatRoom works over connection.ts Connections", async () => {
  const room = new ChatRoom();
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const joined = (async () => {
    const joins: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      joins.push(room.join(new Connection(await listener.accept())));
    }
    await Promise.all(joins);
  })();
  const { port } = listener.addr;
  await using alice = await Peer.connect(port);
  await alice.nextLine();
  await using bob = await Peer.connect(port);
  await bob.nextLine();
  await alice.nextLine();
  await alice.send("over Connection\n");
  assert.equal(await bob.nextLine(), `[${alice.name}] over Connection`);
  await alice.conn.closeWrite();
  assert.equal(await alice.ended, "eof");
  assert.equal(await bob.nextLine(), `* ${alice.name} left`);
  await bob.conn.closeWrite();
  assert.equal(await bob.ended, "eof");
  await joined;
  assert.equal(room.size, 0);
});

Deno.test("ChatRoom relays the same lines however the bytes are split", async () => {
  const text = "héllo\r\n\nline two\n\r\nno newline at FIN";
  const want = [
    "* you are user2",
    "[user1] héllo",
    "[user1] ",
    "[user1] line two",
    "[user1] ",
    "[user1] no newline at FIN",
    "* user1 left",
  ];
  const cases = chunkings(text).flatMap((chunking) => [
    { chunking, pair: { maxChunkSize: 1 } },
    { chunking, pair: { seed: 7 } },
    { chunking, pair: {} },
  ]);
  for (const { chunking, pair } of cases) {
    const room = new ChatRoom({ name: (c) => `user${c.id}` });
    const [aliceEnd, aliceServer] = connPair(pair);
    const [bobEnd, bobServer] = connPair(pair);
    await using alice = new Connection(aliceEnd);
    await using bob = new Connection(bobEnd);
    const aliceJoined = room.join(new Connection(aliceServer, { id: 1 }));
    const bobJoined = room.join(new Connection(bobServer, { id: 2 }));
    const bobLines = bob.reader();
    const got = [];
    for (const chunk of chunking.chunks) await alice.write(chunk);
    await alice.closeWrite();
    while (got.at(-1) !== "* user1 left") {
      const line = await bobLines.readUntil("\n");
      if (line === null) break;
      got.push(new TextDecoder().decode(line));
    }
    assert.deepEqual(got, want, `${chunking.name}, ${JSON.stringify(pair)}`);
    await bob.closeWrite();
    assert.equal(await bobLines.read(), null); // our FIN after his
    await Promise.all([aliceJoined, bobJoined]);
  }
});

Deno.test("ChatRoom passes bytes as they are and names IPv6 clients in brackets", async () => {
  const room = new ChatRoom();
  const [aliceEnd, aliceServer] = connPair({ hostname: "::1" });
  const [bobEnd, bobServer] = connPair();
  await using alice = new Connection(aliceEnd);
  await using bob = new Connection(bobEnd);
  const joined = [
    room.join(new Connection(aliceServer)),
    room.join(new Connection(bobServer)),
  ];
  const { port } = aliceServer.remoteAddr as Deno.NetAddr;
  const lines = bob.reader();
  assert.match(
    new TextDecoder().decode((await lines.readUntil("\n"))!),
    /^\* you are 127\.0\.0\.1:\d+$/,
  );
  await alice.write(new Uint8Array([0xff, 0x00, 0xfe, 0x0d, 0x0a]));
  assert.deepEqual(
    await lines.readUntil("\n"),
    new Uint8Array([
      ...new TextEncoder().encode(`[[::1]:${port}] `),
      0xff,
      0x00,
      0xfe,
    ]),
  );
  await alice.closeWrite();
  await bob.closeWrite();
  await Promise.all(joined);
});

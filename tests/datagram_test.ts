import assert from "node:assert/strict";
import {
  type Datagram,
  type DatagramInfo,
  DEFAULT_RECEIVE_QUEUE,
  listenDatagram,
  MAX_DATAGRAM_SIZE_IPV4,
  MAX_DATAGRAM_SIZE_IPV6,
  serveDatagrams,
} from "../datagram.ts";
import { EchoStream, UpperCaseStream } from "../services.ts";
import { hasIpv6Loopback } from "./_util.ts";

/** Whether this machine has IPv6 loopback; the IPv6 tests skip without it. */
const HAS_IPV6 = hasIpv6Loopback("datagram_test");
/** The loopback addresses to test with. */
const LOOPBACKS = HAS_IPV6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array) => decoder.decode(bytes);

/** Reads `n` datagrams from an endpoint's readable, then releases it. */
async function take(
  readable: ReadableStream<Datagram>,
  n: number,
): Promise<Datagram[]> {
  const reader = readable.getReader();
  try {
    const out: Datagram[] = [];
    while (out.length < n) {
      const { done, value } = await reader.read();
      if (done) break;
      out.push(value);
    }
    return out;
  } finally {
    reader.releaseLock();
  }
}

/**
 * Resolves once `condition()` holds, checking after each turn of the event
 * loop: for counters that change on socket events we cannot await.
 */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 1));
}

/**
 * Sends `count` datagrams from `sender`, each after the previous one has
 * arrived at `receiver` (delivered or dropped by it): a flood that the
 * system's own socket buffer cannot absorb or lose, so that every drop is
 * the endpoint's.
 */
async function flood(
  sender: { send(data: Uint8Array): Promise<void> },
  receiver: { datagramsReceived: number },
  count: number,
  payload: (i: number) => Uint8Array,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    const before = receiver.datagramsReceived;
    await sender.send(payload(i));
    await until(() => receiver.datagramsReceived > before);
  }
}

for (const hostname of LOOPBACKS) {
  Deno.test(`listenDatagram() round-trips datagrams over ${hostname}`, async () => {
    await using server = await listenDatagram({ hostname });
    await using client = await listenDatagram({
      hostname,
      remoteAddr: server.addr,
    });
    assert.equal(server.addr.transport, "udp");
    assert.equal(server.addr.hostname, hostname);
    assert.ok(server.addr.port > 0);
    assert.deepEqual(client.remoteAddr, server.addr);

    await client.send(encoder.encode("ping"));
    const [request] = await take(server.readable, 1);
    assert.equal(text(request!.data), "ping");
    assert.deepEqual(request!.remoteAddr, client.addr);
    assert.equal(Object.getPrototypeOf(request!.data), Uint8Array.prototype);

    await server.send(encoder.encode("pong"), request!.remoteAddr);
    const [answer] = await take(client.readable, 1);
    assert.equal(text(answer!.data), "pong");
    assert.deepEqual(answer!.remoteAddr, server.addr);

    assert.equal(client.datagramsSent, 1);
    assert.equal(client.bytesSent, 4);
    assert.equal(server.datagramsReceived, 1);
    assert.equal(server.bytesReceived, 4);
    assert.equal(server.dropped, 0);
  });
}

Deno.test("listenDatagram() keeps datagram boundaries: two sends are two receives", async () => {
  await using a = await listenDatagram();
  await using b = await listenDatagram({ remoteAddr: a.addr });
  const payloads = ["one", "", "three", "x".repeat(5000)];
  for (const payload of payloads) await b.send(encoder.encode(payload));
  const got = await take(a.readable, payloads.length);
  assert.deepEqual(got.map((d) => text(d.data)), payloads);
});

Deno.test("listenDatagram() carries the largest payloads for IPv4 and IPv6", async () => {
  for (
    const [hostname, max] of [
      ["127.0.0.1", MAX_DATAGRAM_SIZE_IPV4],
      ["::1", MAX_DATAGRAM_SIZE_IPV6],
    ] as const
  ) {
    if (!LOOPBACKS.includes(hostname)) continue;
    await using a = await listenDatagram({ hostname });
    await using b = await listenDatagram({ hostname, remoteAddr: a.addr });
    assert.equal(b.maxDatagramSize, max);
    const payload = new Uint8Array(max).map((_, i) => i % 251);
    await b.send(payload);
    const [got] = await take(a.readable, 1);
    assert.deepEqual(got!.data, payload);
  }
});

Deno.test("send() refuses an oversize datagram with a RangeError", async () => {
  await using a = await listenDatagram();
  await using b = await listenDatagram({ remoteAddr: a.addr });
  await assert.rejects(b.send(new Uint8Array(70000)), {
    name: "RangeError",
    message:
      "Cannot send datagram as its size must be <= 65507 bytes: current size is 70000 bytes",
  });
  // Through the writable, the same error errors the stream.
  const writer = b.writable.getWriter();
  await assert.rejects(writer.write(new Uint8Array(65508)), RangeError);
  assert.equal(b.datagramsSent, 0);
  if (!HAS_IPV6) return;
  await using six = await listenDatagram({ hostname: "::1" });
  await assert.rejects(six.send(new Uint8Array(65528), six.addr), {
    name: "RangeError",
    message:
      "Cannot send datagram as its size must be <= 65527 bytes: current size is 65528 bytes",
  });
});

Deno.test("send() and listenDatagram() explain bad addresses", async () => {
  await using a = await listenDatagram();
  await assert.rejects(a.send(new Uint8Array(1)), {
    name: "TypeError",
    message: /^Cannot send datagram as it has no destination: pass remoteAddr/,
  });
  await assert.rejects(a.send(new Uint8Array(1), { port: 0 }), {
    name: "RangeError",
    message:
      "Cannot send datagram as the port must be an integer from 1 to 65535: current value is 0",
  });
  await assert.rejects(
    a.send(new Uint8Array(1), { hostname: "::1", port: 9 }),
    {
      name: "TypeError",
      message: /^Cannot send datagram to ::1 as the endpoint is IPv4/,
    },
  );
  await assert.rejects(
    a.send(new Uint8Array(1), { hostname: "no-such-host.invalid", port: 9 }),
    {
      name: "NotFound",
      message:
        'Cannot send datagram as the host name does not resolve: current value is "no-such-host.invalid"',
    },
  );
  await assert.rejects(
    a.send("text" as unknown as Uint8Array, a.addr),
    {
      name: "TypeError",
      message:
        "Cannot send datagram as its data must be a Uint8Array: current type is string",
    },
  );
  await assert.rejects(listenDatagram({ port: 70000 }), {
    name: "RangeError",
    message:
      "Cannot bind datagram endpoint as the port must be an integer from 0 to 65535: current value is 70000",
  });
  await assert.rejects(listenDatagram({ hostname: "" }), {
    name: "TypeError",
    message:
      'Cannot bind datagram endpoint as the hostname must be a non-empty string: current value is ""',
  });
  await assert.rejects(listenDatagram({ hostname: "[::1]" }), TypeError);
  await assert.rejects(listenDatagram({ hostname: "no-such-host.invalid" }), {
    name: "NotFound",
    message:
      'Cannot bind datagram endpoint as the host name does not resolve: current value is "no-such-host.invalid"',
  });
  await assert.rejects(listenDatagram({ hostname: "192.0.2.1" }), {
    name: "AddrNotAvailable",
    message:
      "Cannot bind datagram endpoint as the address is not on this machine: current address is 192.0.2.1:0",
  });
  await assert.rejects(
    listenDatagram({ remoteAddr: { hostname: "::1", port: 9 } }),
    {
      name: "TypeError",
      message: /^Cannot set the default peer to ::1 as the endpoint is IPv4/,
    },
  );
  await assert.rejects(
    listenDatagram({ hostname: "::1", broadcast: true }),
    TypeError,
  );
  await assert.rejects(listenDatagram({ receiveQueue: 0 }), RangeError);
});

Deno.test("listenDatagram() reports a port in use as AddrInUse", async () => {
  for (const hostname of LOOPBACKS) {
    await using first = await listenDatagram({ hostname });
    const where = hostname === "::1"
      ? `[::1]:${first.addr.port}`
      : `127.0.0.1:${first.addr.port}`;
    await assert.rejects(
      listenDatagram({ hostname, port: first.addr.port }),
      {
        name: "AddrInUse",
        message:
          `Cannot bind datagram endpoint as the address is in use: current address is ${where}`,
      },
    );
  }
});

Deno.test("listenDatagram() resolves localhost and defaults the peer to loopback", async () => {
  await using a = await listenDatagram({ hostname: "localhost" });
  assert.equal(a.addr.hostname, "127.0.0.1");
  await using b = await listenDatagram({ remoteAddr: { port: a.addr.port } });
  assert.deepEqual(b.remoteAddr, a.addr);
  if (!HAS_IPV6) return;
  await using six = await listenDatagram({ hostname: "::1" });
  await six.send(encoder.encode("hi"), { port: six.addr.port });
  const [got] = await take(six.readable, 1);
  assert.equal(text(got!.data), "hi");
});

Deno.test("a flood against a non-reading endpoint stays within its queue and counts drops", async () => {
  const receiveQueue = 16;
  await using slow = await listenDatagram({ receiveQueue });
  await using sender = await listenDatagram({ remoteAddr: slow.addr });
  const total = 400;
  await flood(sender, slow, total, (i) => encoder.encode(`datagram ${i}`));
  assert.equal(slow.datagramsReceived, total);
  assert.equal(slow.dropped, total - receiveQueue);
  // The reader then gets exactly the first `receiveQueue` datagrams, in
  // order; further datagrams flow again once there is room.
  const reader = slow.readable.getReader();
  for (let i = 0; i < receiveQueue; i++) {
    const { value } = await reader.read();
    assert.equal(text(value!.data), `datagram ${i}`);
  }
  await sender.send(encoder.encode("after"));
  const { value } = await reader.read();
  assert.equal(text(value!.data), "after");
  assert.equal(slow.dropped, total - receiveQueue);
  reader.releaseLock();
});

Deno.test("the default receive queue bounds a flood too", async () => {
  await using slow = await listenDatagram();
  await using sender = await listenDatagram({ remoteAddr: slow.addr });
  const total = DEFAULT_RECEIVE_QUEUE + 50;
  await flood(sender, slow, total, () => new Uint8Array(100));
  assert.equal(slow.dropped, 50);
});

Deno.test("writable sends bytes to the default peer and datagrams anywhere; closing it keeps receiving", async () => {
  await using a = await listenDatagram();
  await using c = await listenDatagram();
  await using b = await listenDatagram({ remoteAddr: a.addr });
  await ReadableStream.from<
    Uint8Array | { data: Uint8Array; remoteAddr: Deno.NetAddr }
  >([
    encoder.encode("to a"),
    { data: encoder.encode("to c"), remoteAddr: c.addr },
  ]).pipeTo(b.writable);
  assert.equal(text((await take(a.readable, 1))[0]!.data), "to a");
  assert.equal(text((await take(c.readable, 1))[0]!.data), "to c");
  await a.send(encoder.encode("still open"), b.addr);
  assert.equal(text((await take(b.readable, 1))[0]!.data), "still open");
});

Deno.test("close() ends readable after the waiting datagrams; close(reason) errors it and aborts signal", async () => {
  const a = await listenDatagram();
  await using b = await listenDatagram({ remoteAddr: a.addr });
  await b.send(encoder.encode("1"));
  await b.send(encoder.encode("2"));
  await until(() => a.datagramsReceived >= 2);
  a.close();
  await a.closed;
  assert.equal(a.signal.aborted, false);
  const got = await Array.fromAsync(a.readable);
  assert.deepEqual(got.map((d) => text(d.data)), ["1", "2"]);
  await assert.rejects(
    a.send(new Uint8Array(1), b.addr),
    Deno.errors.BadResource,
  );

  const c = await listenDatagram();
  const reader = c.readable.getReader();
  const pending = reader.read();
  const reason = new Error("stop");
  c.close(reason);
  await assert.rejects(pending, (error) => error === reason);
  await assert.rejects(c.closed, (error) => error === reason);
  assert.equal(c.signal.reason, reason);
});

Deno.test("a signal closes the endpoint; an aborted one refuses to bind", async () => {
  const controller = new AbortController();
  const a = await listenDatagram({ signal: controller.signal });
  controller.abort(new Error("bye"));
  await assert.rejects(a.closed, { message: "bye" });
  assert.equal(a.signal.aborted, true);
  await assert.rejects(
    listenDatagram({ signal: AbortSignal.abort() }),
    { name: "AbortError" },
  );
});

Deno.test("cancelling readable drops later datagrams but keeps the endpoint", async () => {
  await using a = await listenDatagram();
  await using b = await listenDatagram({ remoteAddr: a.addr });
  await a.readable.cancel();
  await b.send(encoder.encode("lost"));
  await until(() => a.datagramsReceived >= 1);
  assert.equal(a.dropped, 1);
  await a.send(encoder.encode("still sends"), b.addr);
  assert.equal(text((await take(b.readable, 1))[0]!.data), "still sends");
});

Deno.test("broadcast is allowed only when asked for (the loopback broadcast address)", async () => {
  // 127.255.255.255 is the broadcast address of the loopback network: a
  // socket bound to it receives what is broadcast there.
  await using receiver = await listenDatagram({ hostname: "127.255.255.255" });
  const target = { hostname: "127.255.255.255", port: receiver.addr.port };
  await using plain = await listenDatagram();
  await assert.rejects(plain.send(new Uint8Array([0]), target), {
    message:
      `Cannot send datagram to 127.255.255.255:${target.port} as it looks like a broadcast address: set the broadcast option`,
  });
  await using caster = await listenDatagram({ broadcast: true });
  await caster.send(new Uint8Array([1]), target);
  const [got] = await take(receiver.readable, 1);
  assert.deepEqual(got!.data, new Uint8Array([1]));
  assert.deepEqual(got!.remoteAddr, caster.addr);
});

// ---------------------------------------------------------------------------
// serveDatagrams()

async function ask(
  server: { addr: Deno.NetAddr },
  payloads: string[],
  answers = payloads.length,
): Promise<string[]> {
  await using client = await listenDatagram({
    hostname: server.addr.hostname,
    remoteAddr: server.addr,
  });
  for (const payload of payloads) await client.send(encoder.encode(payload));
  return (await take(client.readable, answers)).map((d) => text(d.data));
}

Deno.test("serveDatagrams() answers each datagram upper-cased through UpperCaseStream", async () => {
  const infos: DatagramInfo[] = [];
  let listened: Deno.NetAddr | undefined;
  await using server = await serveDatagrams({
    port: 0,
    onListen: (addr) => listened = addr,
    onDatagram: (info) => infos.push(info),
  }, () => new UpperCaseStream());
  assert.deepEqual(listened, server.addr);
  assert.deepEqual(await ask(server, ["hello\n", "wörld\n"]), [
    "HELLO\n",
    "WöRLD\n",
  ]);
  assert.equal(server.received, 2);
  assert.equal(server.answered, 2);
  assert.equal(server.dropped, 0);
  assert.equal(infos.length, 2);
  assert.equal(infos[0]!.bytesIn, 6);
  assert.equal(infos[0]!.bytesOut, 6);
});

Deno.test({
  name: "serveDatagrams() echoes over IPv6 through EchoStream",
  ignore: !HAS_IPV6,
}, async () => {
  await using server = await serveDatagrams(
    { hostname: "::1", port: 0 },
    () => new EchoStream(),
  );
  assert.deepEqual(await ask(server, ["a", "", "bc"]), ["a", "", "bc"]);
});

Deno.test("serveDatagrams() pipes a plain TransformStream per datagram, flush() included", async () => {
  await using server = await serveDatagrams(
    { port: 0 },
    () =>
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          controller.enqueue(chunk.slice().reverse());
        },
        flush(controller) {
          controller.enqueue(encoder.encode("!"));
        },
      }),
  );
  assert.deepEqual(await ask(server, ["abc"]), ["cba!"]);
});

Deno.test("serveDatagrams() sends a handler's bytes, waits for a promise, and sends nothing for undefined", async () => {
  const infos: DatagramInfo[] = [];
  await using server = await serveDatagrams({
    port: 0,
    onDatagram: (info) => infos.push(info),
  }, async (data, from) => {
    await Promise.resolve();
    if (text(data) === "skip") return undefined;
    return encoder.encode(`${text(data)} from ${from.hostname}`);
  });
  // "skip" gets no answer: the two answers are those to "a" and "b".
  const answers = await ask(server, ["a", "skip", "b"], 2);
  assert.deepEqual(answers.sort(), ["a from 127.0.0.1", "b from 127.0.0.1"]);
  await until(() => infos.length >= 3);
  assert.equal(infos.find((info) => info.bytesIn === 4)!.bytesOut, undefined);
  assert.equal(server.answered, 2);
});

Deno.test("serveDatagrams() reports a failing handler and an oversize answer, and goes on serving", async () => {
  const errors: unknown[] = [];
  await using server = await serveDatagrams({
    port: 0,
    onError: (error) => errors.push(error),
  }, (data) => {
    const request = text(data);
    if (request === "throw") throw new Error("handler failed");
    if (request === "big") return new Uint8Array(70000);
    if (request === "bad") return "text" as unknown as Uint8Array;
    return data;
  });
  assert.deepEqual(await ask(server, ["throw", "big", "bad", "ok"], 1), ["ok"]);
  await until(() => errors.length >= 3);
  const messages = errors.map((error) => (error as Error).message).sort();
  assert.deepEqual(messages, [
    "Cannot answer datagram as the handler must return a Uint8Array, a TransformStream or undefined: current type is string",
    "Cannot send datagram as its size must be <= 65507 bytes: current size is 70000 bytes",
    "handler failed",
  ]);
});

Deno.test("serveDatagrams() with a slow handler drops beyond its queue, bounded", async () => {
  const gate = Promise.withResolvers<void>();
  let started = 0;
  await using server = await serveDatagrams({
    port: 0,
    maxConcurrent: 2,
    receiveQueue: 4,
  }, async (data) => {
    started++;
    await gate.promise;
    return data;
  });
  await using client = await listenDatagram({ remoteAddr: server.addr });
  const total = 50;
  await flood(
    client,
    {
      get datagramsReceived() {
        return server.received;
      },
    },
    total,
    (i) => encoder.encode(`${i}`),
  );
  // Two in the handler, four waiting, the rest dropped.
  assert.equal(started, 2);
  assert.equal(server.dropped, total - 2 - 4);
  gate.resolve();
  const answers = await take(client.readable, 6);
  assert.deepEqual(answers.map((d) => text(d.data)), [
    "0",
    "1",
    "2",
    "3",
    "4",
    "5",
  ]);
});

Deno.test("serveDatagrams() shuts down on its signal, answering what is in the handler", async () => {
  const controller = new AbortController();
  const inHandler = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const server = await serveDatagrams(
    { port: 0, signal: controller.signal },
    async (data) => {
      inHandler.resolve();
      await release.promise;
      return data;
    },
  );
  await using client = await listenDatagram({ remoteAddr: server.addr });
  await client.send(encoder.encode("last"));
  await inHandler.promise;
  controller.abort();
  let finished = false;
  server.finished.then(() => finished = true);
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.equal(finished, false, "shutdown must wait for the handler");
  release.resolve();
  await server.finished;
  assert.equal(text((await take(client.readable, 1))[0]!.data), "last");
  assert.equal(server.answered, 1);
  // Stopped for good: the port is free again.
  await using again = await listenDatagram({ port: server.addr.port });
  assert.equal(again.addr.port, server.addr.port);
});

Deno.test("serveDatagrams() refuses bad options and a port in use", async () => {
  await assert.rejects(
    serveDatagrams({ port: 0 }, "upper" as unknown as () => undefined),
    TypeError,
  );
  await assert.rejects(
    serveDatagrams({ port: 0, maxConcurrent: 0 }, () => undefined),
    RangeError,
  );
  await using first = await serveDatagrams({ port: 0 }, () => undefined);
  await assert.rejects(
    serveDatagrams({ port: first.addr.port }, () => undefined),
    Deno.errors.AddrInUse,
  );
});

Deno.test("close() with sends in flight settles closed after them", async () => {
  const a = await listenDatagram();
  const sends = [1, 2, 3].map(() => a.send(new Uint8Array(10), a.addr));
  a.close();
  await a.closed;
  const results = await Promise.allSettled(sends);
  for (const result of results) {
    if (result.status === "rejected") {
      assert.ok(result.reason instanceof Deno.errors.BadResource);
    }
  }
});

Deno.test("serveDatagrams() closes after gracePeriod even if a handler never ends", async () => {
  const never = Promise.withResolvers<Uint8Array>();
  const inHandler = Promise.withResolvers<void>();
  const errors: unknown[] = [];
  const server = await serveDatagrams({
    port: 0,
    gracePeriod: 0,
    onError: (error) => errors.push(error),
  }, () => {
    inHandler.resolve();
    return never.promise;
  });
  await using client = await listenDatagram({ remoteAddr: server.addr });
  await client.send(encoder.encode("x"));
  await inHandler.promise;
  await server.shutdown();
  // The late answer meets a closed endpoint: dropped, not reported.
  never.resolve(encoder.encode("late"));
  await until(() => server.answered === 0 && errors.length === 0);
  assert.equal(server.answered, 0);
});

import assert from "node:assert/strict";
import {
  parseProxyHeader,
  parseProxyV1,
  parseProxyV2,
  PROXY_V2_SIGNATURE,
  readProxyHeader,
} from "../_server/proxy.ts";
import {
  AddressList,
  formatIpv6,
  parseIp,
  parseIpv6,
} from "../_server/address_list.ts";
import {
  type ConnectionInfo,
  type ConnectionStats,
  serve,
  type ServeOptions,
} from "../server.ts";
import { EchoStream } from "../services.ts";
import { endOf } from "./_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

type Closed = ConnectionInfo & ConnectionStats;

function tcp(addr: Deno.Addr): { hostname: string; port: number } {
  assert.equal(addr.transport, "tcp");
  const { hostname, port } = addr as Deno.NetAddr;
  return { hostname, port };
}

/** A v2 header: command (0 LOCAL, 1 PROXY), family byte, address bytes. */
function v2(command: number, family: number, body: number[]): Uint8Array {
  return Uint8Array.from([
    ...PROXY_V2_SIGNATURE,
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

const port = (n: number) => [n >> 8, n & 0xff];
const V2_TCP4 = v2(0x1, 0x11, [
  192,
  0,
  2,
  1,
  198,
  51,
  100,
  2,
  ...port(51000),
  ...port(443),
]);
const V2_TCP6 = v2(0x1, 0x21, [
  ...parseIpv6("2001:db8::1")!,
  ...parseIpv6("2001:db8::2")!,
  ...port(40000),
  ...port(7),
]);

async function readAll(conn: Deno.Conn): Promise<string> {
  const parts: string[] = [];
  const buffer = new Uint8Array(4096);
  for (let n; (n = await conn.read(buffer)) !== null;) {
    parts.push(decoder.decode(buffer.subarray(0, n)));
  }
  return parts.join("");
}

/** A server that answers each client with its remote address, then FIN. */
function whoAmI(options: ServeOptions = {}) {
  const closed: Closed[] = [];
  const errors: [unknown, ConnectionInfo | undefined][] = [];
  const events = new EventTarget();
  const server = serve({
    port: 0,
    proxyProtocol: true,
    ...options,
    onClose: (info) => {
      closed.push(info);
      events.dispatchEvent(new Event("change"));
    },
    onError: (error, info) => {
      errors.push([error, info]);
      events.dispatchEvent(new Event("change"));
    },
  }, async (connection) => {
    const addr = connection.remoteAddr;
    const reader = connection.reader();
    const first = await reader.read();
    reader.releaseLock();
    const text = "hostname" in addr ? `${addr.hostname} ${addr.port}` : "unix";
    await connection.write(
      encoder.encode(`${text} ${first ? decoder.decode(first) : "-"}`),
    );
  });
  const until = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      if (check()) return resolve();
      const listener = () => {
        if (!check()) return;
        events.removeEventListener("change", listener);
        resolve();
      };
      events.addEventListener("change", listener);
    });
  return { server, closed, errors, until };
}

// ---------------------------------------------------------------------------
// Parser

Deno.test("parseProxyV1() reads TCP4, TCP6 and UNKNOWN lines", () => {
  assert.deepEqual(
    parseProxyV1(encoder.encode("PROXY TCP4 192.0.2.1 198.51.100.2 51000 443")),
    {
      version: 1,
      command: "proxy",
      source: { transport: "tcp", hostname: "192.0.2.1", port: 51000 },
      destination: { transport: "tcp", hostname: "198.51.100.2", port: 443 },
    },
  );
  const v6 = parseProxyV1(
    encoder.encode("PROXY TCP6 2001:DB8:0:0::1 ::1 65535 0"),
  );
  assert.deepEqual(v6.source, {
    transport: "tcp",
    hostname: "2001:db8::1",
    port: 65535,
  });
  assert.deepEqual(v6.destination, {
    transport: "tcp",
    hostname: "::1",
    port: 0,
  });
  assert.deepEqual(parseProxyV1(encoder.encode("PROXY UNKNOWN")), {
    version: 1,
    command: "local",
  });
  assert.deepEqual(
    parseProxyV1(encoder.encode("PROXY UNKNOWN ffff:f...f:ffff 1 2")),
    { version: 1, command: "local" },
  );
});

Deno.test("parseProxyV1() rejects malformed lines with a SyntaxError", () => {
  for (
    const line of [
      "PROXY TCP4 192.0.2.1 198.51.100.2 51000",
      "PROXY TCP4 192.0.2.1 198.51.100.2 51000 443 extra",
      "PROXY TCP4 192.0.2.1  198.51.100.2 51000 443",
      "PROXY TCP4 ::1 ::1 1 2",
      "PROXY TCP6 192.0.2.1 192.0.2.2 1 2",
      "PROXY TCP4 192.0.2.256 192.0.2.2 1 2",
      "PROXY TCP4 192.0.2.1 192.0.2.2 65536 2",
      "PROXY TCP4 192.0.2.1 192.0.2.2 -1 2",
      "PROXY TCP4 192.0.2.1 192.0.2.2 01 2",
      "PROXY UDP4 192.0.2.1 192.0.2.2 1 2",
      "proxy TCP4 192.0.2.1 192.0.2.2 1 2",
      `PROXY TCP6 ${"a".repeat(120)}`,
      "PROXY TCP4 192.0.2.1 192.0.2.2 1 2\x00",
    ]
  ) {
    assert.throws(
      () => parseProxyV1(encoder.encode(line)),
      (error: Error) =>
        error instanceof SyntaxError &&
        error.message.startsWith("Cannot read PROXY header as"),
      line,
    );
  }
});

Deno.test("parseProxyV2() reads TCP4, TCP6, Unix, LOCAL and UNSPEC headers, TLVs skipped", () => {
  assert.deepEqual(parseProxyV2(V2_TCP4), {
    version: 2,
    command: "proxy",
    source: { transport: "tcp", hostname: "192.0.2.1", port: 51000 },
    destination: { transport: "tcp", hostname: "198.51.100.2", port: 443 },
  });
  assert.deepEqual(parseProxyV2(V2_TCP6).source, {
    transport: "tcp",
    hostname: "2001:db8::1",
    port: 40000,
  });
  // A TLV (type 0x04 NOOP, 3 bytes) after the addresses.
  const withTlv = v2(0x1, 0x11, [
    10,
    0,
    0,
    1,
    10,
    0,
    0,
    2,
    ...port(1),
    ...port(2),
    0x04,
    0,
    3,
    1,
    2,
    3,
  ]);
  assert.equal(parseProxyV2(withTlv).source?.transport, "tcp");
  const path = (text: string) => {
    const bytes = new Uint8Array(108);
    bytes.set(encoder.encode(text));
    return [...bytes];
  };
  assert.deepEqual(
    parseProxyV2(v2(0x1, 0x31, [...path("/run/a.sock"), ...path("/b")])),
    {
      version: 2,
      command: "proxy",
      source: { transport: "unix", path: "/run/a.sock" },
      destination: { transport: "unix", path: "/b" },
    },
  );
  assert.deepEqual(parseProxyV2(v2(0x0, 0x00, [])), {
    version: 2,
    command: "local",
  });
  // LOCAL ignores whatever addresses follow.
  assert.equal(parseProxyV2(v2(0x0, 0x11, [1, 2, 3])).command, "local");
  assert.deepEqual(parseProxyV2(v2(0x1, 0x00, [])), {
    version: 2,
    command: "proxy",
  });
  assert.equal(
    parseProxyV2(v2(0x1, 0x12, [...V2_TCP4.subarray(16)])).source?.transport,
    "udp",
  );
});

Deno.test("parseProxyV2() rejects bad versions, commands, families and lengths", () => {
  const cases: [string, Uint8Array][] = [
    [
      "version 1",
      Uint8Array.from([
        ...V2_TCP4.subarray(0, 12),
        0x11,
        ...V2_TCP4.subarray(13),
      ]),
    ],
    ["command 2", v2(0x2, 0x11, [...V2_TCP4.subarray(16)])],
    ["family 4", v2(0x1, 0x41, [...V2_TCP4.subarray(16)])],
    ["short TCP4 addresses", v2(0x1, 0x11, [1, 2, 3, 4])],
    ["short TCP6 addresses", v2(0x1, 0x21, [...V2_TCP4.subarray(16)])],
    ["wrong length", V2_TCP4.subarray(0, V2_TCP4.length - 1)],
    [
      "bad signature",
      Uint8Array.from([...V2_TCP4].map((b, i) => i === 5 ? 1 : b)),
    ],
  ];
  for (const [name, bytes] of cases) {
    assert.throws(() => parseProxyV2(bytes), SyntaxError, name);
  }
});

Deno.test("parseProxyHeader() waits for a whole header, gives its size, and fails fast on garbage", () => {
  const v1 = encoder.encode("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nrest");
  for (let i = 0; i < v1.length - 4; i++) {
    assert.equal(parseProxyHeader(v1.subarray(0, i)), null, `v1 at ${i}`);
  }
  assert.equal(parseProxyHeader(v1)!.size, v1.length - 4);
  const v2bytes = Uint8Array.from([...V2_TCP6, 1, 2, 3]);
  for (let i = 0; i < V2_TCP6.length; i++) {
    assert.equal(parseProxyHeader(v2bytes.subarray(0, i)), null, `v2 at ${i}`);
  }
  assert.equal(parseProxyHeader(v2bytes)!.size, V2_TCP6.length);

  for (
    const garbage of [
      "GET / HTTP/1.1\r\n",
      "PROXX",
      "\r\n\r\n\x00\r\nQUIX",
      "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", // LF without CR
      `PROXY ${"x".repeat(110)}`, // no CRLF within 107 bytes
    ]
  ) {
    assert.throws(
      () => parseProxyHeader(encoder.encode(garbage)),
      SyntaxError,
      garbage,
    );
  }
});

Deno.test("readProxyHeader() consumes exactly the header from a pull reader, and reports truncation", async () => {
  // A reader over fixed bytes, as Connection.reader() would behave.
  const readerOf = (bytes: Uint8Array) => {
    let offset = 0;
    return {
      consumed: () => offset,
      peek: (n: number) =>
        Promise.resolve(
          bytes.slice(offset, Math.min(offset + n, bytes.length)),
        ),
      readExactly: (n: number) => {
        if (offset + n > bytes.length) {
          return Promise.reject(new Error("truncated"));
        }
        offset += n;
        return Promise.resolve(bytes.slice(offset - n, offset));
      },
    };
  };
  const v1 = encoder.encode("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nhello");
  const reader1 = readerOf(v1);
  const parsed1 = await readProxyHeader(reader1);
  assert.equal(parsed1.header.source?.transport, "tcp");
  assert.equal(reader1.consumed(), v1.length - 5);

  const reader2 = readerOf(Uint8Array.from([...V2_TCP4, 9, 9]));
  assert.equal((await readProxyHeader(reader2)).size, V2_TCP4.length);
  assert.equal(reader2.consumed(), V2_TCP4.length);

  for (
    const bytes of [
      new Uint8Array(),
      encoder.encode("PROXY TCP4 192.0.2.1"),
      V2_TCP4.subarray(0, 20),
      V2_TCP4.subarray(0, 10),
    ]
  ) {
    await assert.rejects(
      readProxyHeader(readerOf(bytes)),
      (error: Error) =>
        error instanceof SyntaxError && /ended its input/.test(error.message),
    );
  }
});

// ---------------------------------------------------------------------------
// Addresses

Deno.test("AddressList matches IPv4 and IPv6 addresses and ranges, IPv4-mapped included", () => {
  const list = new AddressList([
    "10.0.0.0/8",
    "192.0.2.7",
    "2001:db8::/32",
    "::1",
    "fe80::/10",
    "0.0.0.0/32",
  ], "allow");
  for (
    const inside of [
      "10.0.0.0",
      "10.255.255.255",
      "::ffff:10.1.2.3",
      "::FFFF:10.1.2.3",
      "192.0.2.7",
      "2001:db8::1",
      "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
      "::1",
      "fe80::1%eth0",
      "0.0.0.0",
    ]
  ) assert.equal(list.has(inside), true, inside);
  for (
    const outside of [
      "11.0.0.0",
      "9.255.255.255",
      "192.0.2.8",
      "2001:db9::",
      "::2",
      "::",
      "::ffff:192.0.2.8",
      "localhost",
      "",
    ]
  ) assert.equal(list.has(outside), false, outside);
  // Prefixes that do not fall on a byte boundary.
  const odd = new AddressList(["192.0.2.64/27", "2001:db8:8000::/33"], "deny");
  assert.equal(odd.has("192.0.2.95"), true);
  assert.equal(odd.has("192.0.2.96"), false);
  assert.equal(odd.has("192.0.2.63"), false);
  assert.equal(odd.has("2001:db8:ffff::1"), true);
  assert.equal(odd.has("2001:db8:7fff::1"), false);
  // /0 of a family matches all of that family only.
  assert.equal(new AddressList(["0.0.0.0/0"], "allow").has("::1"), false);
  assert.equal(new AddressList(["::/0"], "allow").has("10.0.0.1"), true);
});

Deno.test("AddressList rejects bad entries naming the option and the entry", () => {
  const cases: [unknown, ErrorConstructor, RegExp][] = [
    [
      ["10.0.0.0/8", "nope"],
      SyntaxError,
      /^Cannot serve as allow\[1\] must be an IP address or CIDR range .*: current value is 'nope'$/,
    ],
    [["10.0.0.0/33"], RangeError, /allow\[0\] must be an integer from 0 to 32/],
    [["::/129"], RangeError, /from 0 to 128/],
    [["10.0.0.0/x"], RangeError, /prefix length/],
    [["10.0.0.01"], SyntaxError, /'10.0.0.01'/],
    [["1:2:3:4:5:6:7:8:9"], SyntaxError, /must be an IP address/],
    [["1::2::3"], SyntaxError, /must be an IP address/],
    [["fe80::1%eth0"], SyntaxError, /must be an IP address/],
    [[42], TypeError, /allow\[0\] must be a string: current type is number/],
    ["10.0.0.0/8", TypeError, /allow must be an array/],
  ];
  for (const [entries, type, message] of cases) {
    assert.throws(
      () => new AddressList(entries as string[], "allow"),
      (error: Error) => error instanceof type && message.test(error.message),
      JSON.stringify(entries),
    );
  }
});

Deno.test("formatIpv6() writes the canonical form of RFC 5952", () => {
  const cases: [string, string][] = [
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"],
    ["0:0:0:0:0:0:0:0", "::"],
    ["::ffff:192.0.2.1", "::ffff:192.0.2.1"],
    ["1::", "1::"],
  ];
  for (const [text, canonical] of cases) {
    assert.equal(formatIpv6(parseIp(text)!), canonical, text);
  }
});

// ---------------------------------------------------------------------------
// serve({ proxyProtocol: true }) over real sockets

Deno.test("serve() takes the client address from a PROXY header, and hands on the bytes after it", async () => {
  const headers: [string, Uint8Array, string][] = [
    [
      "v1 TCP4",
      encoder.encode("PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\n"),
      "192.0.2.1 51000",
    ],
    [
      "v1 TCP6",
      encoder.encode("PROXY TCP6 2001:db8::1 2001:db8::2 40000 7\r\n"),
      "2001:db8::1 40000",
    ],
    ["v2 TCP4", V2_TCP4, "192.0.2.1 51000"],
    ["v2 TCP6", V2_TCP6, "2001:db8::1 40000"],
  ];
  const { server, closed, until } = whoAmI();
  await using _ = server;
  let n = 0;
  for (const [name, header, expected] of headers) {
    // Whole, then a byte at a time.
    for (const split of [false, true]) {
      using conn = await Deno.connect(tcp(server.addr));
      const bytes = Uint8Array.from([...header, ...encoder.encode("data")]);
      if (split) {
        for (const byte of header) await conn.write(Uint8Array.of(byte));
        await conn.write(encoder.encode("data"));
      } else {
        await conn.write(bytes);
      }
      await conn.closeWrite();
      assert.equal(await readAll(conn), `${expected} data`, `${name} ${split}`);
      n++;
      await until(() => closed.length === n);
      const info = closed.at(-1)!;
      assert.equal(info.bytesIn, 4, name);
      assert.equal(
        tcp(info.proxyAddr!).port,
        tcp(conn.localAddr).port,
        `${name}: proxyAddr is the peer`,
      );
    }
  }
  assert.equal(server.stats.refused, 0);
  assert.equal(server.stats.bytesIn, 4 * n);
});

Deno.test("serve() keeps the peer address for LOCAL and UNKNOWN headers", async () => {
  const { server, closed, until } = whoAmI();
  await using _ = server;
  for (
    const header of [encoder.encode("PROXY UNKNOWN\r\n"), v2(0x0, 0x00, [])]
  ) {
    using conn = await Deno.connect(tcp(server.addr));
    await conn.write(header);
    await conn.closeWrite();
    const { port } = tcp(conn.localAddr);
    assert.equal(await readAll(conn), `127.0.0.1 ${port} -`);
  }
  await until(() => closed.length === 2);
  assert.equal(closed[0]!.proxyAddr, undefined);
});

Deno.test("serve() closes and reports a connection without a valid PROXY header", async () => {
  const { server, errors, closed, until } = whoAmI({ proxyHeaderTimeout: 300 });
  await using _ = server;
  const cases: [
    string,
    Uint8Array | null,
    new (...args: never[]) => Error,
    RegExp,
  ][] = [
    [
      "garbage",
      encoder.encode("GET / HTTP/1.0\r\n\r\n"),
      SyntaxError,
      /v1 \('PROXY '\) or v2 header/,
    ],
    [
      "truncated v1",
      encoder.encode("PROXY TCP4 192.0.2.1"),
      SyntaxError,
      /ended its input/,
    ],
    ["truncated v2", V2_TCP4.subarray(0, 20), SyntaxError, /ended its input/],
    [
      "bad v1",
      encoder.encode("PROXY TCP4 1.2.3.4 ::1 1 2\r\n"),
      SyntaxError,
      /two IPv4 addresses/,
    ],
    [
      "silence",
      null,
      Deno.errors.TimedOut,
      /proxyHeaderTimeout: current timeout is 300 ms/,
    ],
  ];
  for (const [name, bytes, type, message] of cases) {
    using conn = await Deno.connect(tcp(server.addr));
    if (bytes) {
      await conn.write(bytes);
      await conn.closeWrite();
    }
    const ended = await endOf(conn);
    assert.ok(
      ended === "eof" || ended instanceof Deno.errors.ConnectionReset,
      name,
    );
    await until(() => errors.length >= 1);
    const [error, info] = errors.shift()!;
    assert.ok(error instanceof type, `${name}: ${error}`);
    assert.match((error as Error).message, message, name);
    assert.equal(tcp(info!.remoteAddr).port, tcp(conn.localAddr).port, name);
  }
  // Refused, not served: no onClose, and the figures say so.
  assert.equal(closed.length, 0);
  assert.equal(server.stats.refused, cases.length);
  assert.equal(server.stats.open, 0);
});

Deno.test("serve() refuses PROXY headers from peers outside trustedProxies", async () => {
  const { server, errors, closed, until } = whoAmI({
    trustedProxies: ["10.0.0.0/8", "::1"],
  });
  await using _ = server;
  using conn = await Deno.connect(tcp(server.addr));
  await conn.write(encoder.encode("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"));
  const ended = await endOf(conn);
  assert.ok(ended === "eof" || ended instanceof Deno.errors.ConnectionReset);
  await until(() => errors.length === 1);
  assert.ok(errors[0]![0] instanceof Deno.errors.PermissionDenied);
  assert.match(
    (errors[0]![0] as Error).message,
    /^Cannot read PROXY header as the peer is not in trustedProxies: current peer is 127\.0\.0\.1:\d+$/,
  );
  assert.equal(closed.length, 0);

  const { server: trusting, closed: served, until: untilServed } = whoAmI({
    trustedProxies: ["127.0.0.1/32"],
  });
  await using __ = trusting;
  using ok = await Deno.connect(tcp(trusting.addr));
  await ok.write(encoder.encode("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\nx"));
  await ok.closeWrite();
  assert.equal(await readAll(ok), "192.0.2.1 1 x");
  await untilServed(() => served.length === 1);
});

Deno.test("serve() checks allow and deny on the client named by the PROXY header, IPv4-mapped included", async () => {
  const { server, errors, closed, until } = whoAmI({
    allow: ["192.0.2.0/24", "2001:db8::/32"],
    deny: ["192.0.2.66", "2001:db8:bad::/48"],
  });
  await using _ = server;
  const cases: [string, boolean][] = [
    ["PROXY TCP4 192.0.2.1 10.0.0.1 1 2", true],
    ["PROXY TCP4 192.0.2.66 10.0.0.1 1 2", false], // denied
    ["PROXY TCP4 198.51.100.1 10.0.0.1 1 2", false], // not allowed
    ["PROXY TCP6 ::ffff:192.0.2.9 ::1 1 2", true], // mapped: in 192.0.2.0/24
    ["PROXY TCP6 ::ffff:192.0.2.66 ::1 1 2", false],
    ["PROXY TCP6 2001:db8::5 ::1 1 2", true],
    ["PROXY TCP6 2001:db8:bad::5 ::1 1 2", false],
    ["PROXY TCP6 2001:db9::5 ::1 1 2", false],
  ];
  let served = 0;
  for (const [line, allowed] of cases) {
    using conn = await Deno.connect(tcp(server.addr));
    await conn.write(encoder.encode(`${line}\r\nhi`));
    await conn.closeWrite();
    const answer = await readAll(conn).catch(() => "");
    if (allowed) {
      served++;
      assert.match(answer, / hi$/, line);
      await until(() => closed.length === served);
    } else {
      assert.equal(answer, "", line);
      await until(() => errors.length === 1);
      const [error] = errors.shift()!;
      assert.ok(error instanceof Deno.errors.PermissionDenied, line);
      assert.match(
        (error as Error).message,
        /^Cannot serve client as its address is (in deny|not in allow): current address is .* behind 127\.0\.0\.1:\d+$/,
      );
    }
  }
  assert.deepEqual(server.stats.refused, cases.length - served);
});

// ---------------------------------------------------------------------------
// Behind a real HAProxy

/** A port that was free a moment ago (HAProxy cannot bind port 0). */
function freePort(hostname: string): number {
  using listener = Deno.listen({ hostname, port: 0 });
  return listener.addr.port;
}

async function haproxyPath(): Promise<string | undefined> {
  for (
    const path of [
      "/usr/sbin/haproxy",
      "/usr/bin/haproxy",
      "/usr/local/sbin/haproxy",
    ]
  ) {
    try {
      await Deno.stat(path);
      return path;
    } catch { /* next */ }
  }
  return undefined;
}

const haproxy = await haproxyPath();

Deno.test({
  name:
    "serve() behind HAProxy send-proxy and send-proxy-v2 sees the real client, IPv4 and IPv6",
  ignore: haproxy === undefined,
  async fn() {
    const { server, closed, errors, until } = whoAmI();
    await using _ = server;
    const backend = tcp(server.addr).port;
    const fronts = {
      v1: freePort("127.0.0.1"),
      v2: freePort("127.0.0.1"),
      v6: freePort("::1"),
    };
    const dir = await Deno.makeTempDir({ prefix: "sock_haproxy_" });
    const config = `${dir}/haproxy.cfg`;
    await Deno.writeTextFile(
      config,
      `global
  maxconn 64
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen v1
  bind 127.0.0.1:${fronts.v1}
  server backend 127.0.0.1:${backend} send-proxy
listen v2
  bind 127.0.0.1:${fronts.v2}
  server backend 127.0.0.1:${backend} send-proxy-v2
listen v6
  bind [::1]:${fronts.v6}
  server backend 127.0.0.1:${backend} send-proxy-v2
`,
    );
    const child = new Deno.Command(haproxy!, {
      args: ["-f", config, "-db"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    try {
      /** Connects once HAProxy listens: it prints no ready line. */
      const connect = async (hostname: string, port: number) => {
        for (let attempt = 0;; attempt++) {
          try {
            return await Deno.connect({ hostname, port });
          } catch (error) {
            if (
              !(error instanceof Deno.errors.ConnectionRefused) || attempt > 100
            ) {
              throw error;
            }
            await new Promise((resolve) => setTimeout(resolve, 50));
          }
        }
      };
      const cases: [string, string, number][] = [
        ["send-proxy", "127.0.0.1", fronts.v1],
        ["send-proxy-v2", "127.0.0.1", fronts.v2],
        ["send-proxy-v2 from ::1", "::1", fronts.v6],
      ];
      for (const [i, [name, hostname, port]] of cases.entries()) {
        using conn = await connect(hostname, port);
        await conn.write(encoder.encode("ping"));
        await conn.closeWrite();
        const answer = await readAll(conn);
        const client = tcp(conn.localAddr);
        assert.equal(answer, `${client.hostname} ${client.port} ping`, name);
        await until(() => closed.length === i + 1);
        const info = closed.at(-1)!;
        assert.deepEqual(tcp(info.remoteAddr), client, name);
        // The connection itself came from HAProxy, on another port.
        assert.notEqual(tcp(info.proxyAddr!).port, client.port, name);
        assert.equal(info.bytesIn, 4, name);
      }
      assert.deepEqual(errors, []);
    } finally {
      child.kill("SIGTERM");
      await child.status;
      const log = await stderr;
      if (log.trim()) console.log(`haproxy said: ${log.trim()}`);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

if (haproxy === undefined) {
  console.log(
    "skipped the HAProxy test: haproxy is not installed (apt-get install -y haproxy)",
  );
}

Deno.test("serve() shows the real client to onConnect and in stats with serve({ proxyProtocol }) over IPv6", async () => {
  const seen: ConnectionInfo[] = [];
  await using server = serve({
    hostname: "::1",
    port: 0,
    proxyProtocol: true,
    onConnect: (info) => seen.push(info),
  }, () => new EchoStream());
  using conn = await Deno.connect(tcp(server.addr));
  await conn.write(Uint8Array.from([...V2_TCP6, ...encoder.encode("echo")]));
  await conn.closeWrite();
  assert.equal(await readAll(conn), "echo");
  assert.deepEqual(seen[0]!.remoteAddr, {
    transport: "tcp",
    hostname: "2001:db8::1",
    port: 40000,
  });
  assert.equal(tcp(seen[0]!.proxyAddr!).hostname, "::1");
});

Deno.test("serve() reads PROXY headers on a Unix socket, as HAProxy sends to a local backend", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/sock`;
  try {
    const { server, closed, until } = whoAmI({ path, deny: ["192.0.2.66"] });
    await using _ = server;
    for (
      const [line, expected] of [
        ["PROXY TCP4 192.0.2.1 192.0.2.2 1000 2000", "192.0.2.1 1000 x"],
        ["PROXY TCP4 192.0.2.66 192.0.2.2 1000 2000", ""],
        ["PROXY UNKNOWN", "unix x"],
      ]
    ) {
      using conn = await Deno.connect({ transport: "unix", path });
      await conn.write(encoder.encode(`${line}\r\nx`));
      await conn.closeWrite();
      assert.equal(await readAll(conn).catch(() => ""), expected, line);
    }
    await until(() => closed.length === 2);
    assert.equal(server.stats.refused, 1);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

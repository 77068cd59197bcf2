/**
 * `@x/sock`: TCP for Deno with web streams. Servers that serve many clients
 * at once, clients, per-connection services that are plain
 * `TransformStream`s, message framing, UDP datagrams, and a test kit that
 * needs no sockets; plus two programs, a netcat-style client and a server
 * with classic services.
 *
 * ## Why: half-close
 *
 * TCP lets a peer finish sending (`closeWrite()`, a FIN) and still read the
 * answer. Deno's `conn.readable` closes the whole connection at the peer's
 * FIN and closing `conn.writable` is a full close, so an answer sent after
 * the FIN is lost. {@linkcode Connection} keeps the two directions apart, and
 * everything here goes through it.
 *
 * ## The modules
 *
 * Each has its own entry point; this one re-exports them all.
 *
 * | entry point | what it is for |
 * | --- | --- |
 * | [`@x/sock/connection`](https://jsr.io/@x/sock/doc/connection/~) | {@linkcode Connection}: any `Deno.Conn` as half-close-safe byte streams, coalesced writes, a pull reader, TCP options, state and counters |
 * | [`@x/sock/sync-transform`](https://jsr.io/@x/sock/doc/sync-transform/~) | {@linkcode SyncTransformStream}: synchronous per-chunk work a connection runs in its read loop, with no stream hop |
 * | [`@x/sock/services`](https://jsr.io/@x/sock/doc/services/~) | the classic services as `TransformStream`s or handlers: {@linkcode UpperCaseStream}, {@linkcode EchoStream}, {@linkcode DiscardStream}, {@linkcode chargen}, {@linkcode daytime}, and {@linkcode execHandler} to serve a program |
 * | [`@x/sock/chat`](https://jsr.io/@x/sock/doc/chat/~) | {@linkcode ChatRoom}: a line chat for `serve()`, every client's lines to every other, slow readers dropped |
 * | [`@x/sock/framing`](https://jsr.io/@x/sock/doc/framing/~) | bytes to messages and back: {@linkcode lines}, {@linkcode lengthPrefixed}, {@linkcode framed} |
 * | [`@x/sock/server`](https://jsr.io/@x/sock/doc/server/~) | {@linkcode serve}: listener, limits, graceful shutdown; also the server program |
 * | [`@x/sock/client`](https://jsr.io/@x/sock/doc/client/~) | {@linkcode connect} and {@linkcode exchange}; also the client program |
 * | [`@x/sock/datagram`](https://jsr.io/@x/sock/doc/datagram/~) | UDP with the same web-streams shape: {@linkcode listenDatagram}, {@linkcode serveDatagrams} |
 * | [`@x/sock/testing`](https://jsr.io/@x/sock/doc/testing/~) | {@linkcode connPair}: connected in-memory `Deno.Conn`s; {@linkcode chunkings} for decoder tests |
 * | [`@x/sock/conn-streams`](https://jsr.io/@x/sock/doc/conn-streams/~) | the 0.1 name of `Connection`, deprecated |
 *
 * ## A server, a client
 *
 * ```ts
 * import { connect, exchange, serve, UpperCaseStream } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * // The handler runs once per client; a returned stream is its service.
 * await using server = serve({ port: 0 }, () => new UpperCaseStream());
 * const conn = await connect({ port: (server.addr as Deno.NetAddr).port });
 * // Sends the input, half-closes, and reads the answer to its end.
 * const input = ReadableStream.from([new TextEncoder().encode("hi")]);
 * assert.equal(await new Response(exchange(conn, input)).text(), "HI");
 * ```
 *
 * ## A connection: an answer after the peer's FIN
 *
 * ```ts
 * import { Connection } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const served = listener.accept().then(async (conn) => {
 *   await using connection = new Connection(conn);
 *   const question = await new Response(connection.readable).text(); // to FIN
 *   await connection.write(new TextEncoder().encode(`${question.length}`));
 *   await connection.closeWrite();
 * });
 * await using client = new Connection(
 *   await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
 * );
 * await client.write(new TextEncoder().encode("how long?"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "9");
 * await served;
 * ```
 *
 * ## Services and synchronous transforms
 *
 * ```ts
 * import { SyncTransformStream, UpperCaseStream } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * // Any TransformStream<Uint8Array, Uint8Array> is a service; one built
 * // from a synchronous transformer also runs in a connection's read loop.
 * const reverse = new SyncTransformStream<Uint8Array, Uint8Array>({
 *   transform: (chunk, emit) => emit(chunk.slice().reverse()),
 * });
 * const text = await new Response(
 *   ReadableStream.from([new TextEncoder().encode("olleh")])
 *     .pipeThrough(reverse)
 *     .pipeThrough(new UpperCaseStream()),
 * ).text();
 * assert.equal(text, "HELLO");
 * ```
 *
 * ## Framing: messages, whatever the chunking
 *
 * ```ts
 * import { chunkings, LineDecoderStream } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * for (const { name, stream } of chunkings("ls\r\ncd /\r\n")) {
 *   const commands = await Array.fromAsync(
 *     stream().pipeThrough(new LineDecoderStream()),
 *     (line) => new TextDecoder().decode(line),
 *   );
 *   assert.deepEqual(commands, ["ls", "cd /"], name);
 * }
 * ```
 *
 * ## Datagrams: UDP with the same shape
 *
 * ```ts
 * import { listenDatagram, serveDatagrams, UpperCaseStream } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * // The TCP upper-case handler serves datagrams too: one answer each.
 * await using server = await serveDatagrams(
 *   { port: 0 },
 *   () => new UpperCaseStream(),
 * );
 * await using client = await listenDatagram({ remoteAddr: server.addr });
 * await client.send(new TextEncoder().encode("ping"));
 * const reader = client.readable.getReader();
 * const { value } = await reader.read();
 * assert.equal(new TextDecoder().decode(value!.data), "PING");
 * reader.releaseLock();
 * ```
 *
 * ## Testing a handler without sockets
 *
 * ```ts
 * import { framed, type Handler, lines, testHandler } from "@x/sock";
 * import assert from "node:assert/strict";
 *
 * // The handler under test: answers each line with its length.
 * const lengths: Handler = async (connection) => {
 *   const { readable, writable } = framed(connection, lines());
 *   const writer = writable.getWriter();
 *   for await (const line of readable) await writer.write(`${line.length}`);
 *   await writer.close();
 * };
 * // Served as serve() would, over an in-memory pair: one byte per read.
 * await using client = testHandler(lengths, { maxChunkSize: 1 });
 * await client.write(new TextEncoder().encode("four\nthree\n"));
 * await client.closeWrite();
 * assert.equal(await new Response(client.readable).text(), "4\n5\n");
 * assert.equal((await client.served).error, undefined);
 * ```
 *
 * ## The programs
 *
 * `@x/sock/server` and `@x/sock/client` are also programs, netcat-style:
 *
 * ```sh
 * deno run -N jsr:@x/sock/server                  # uppercase server on 127.0.0.1:9990
 * deno run -N jsr:@x/sock/server -s echo -p 7000  # echo; also discard, chargen, daytime, chat
 * deno run -N --allow-run jsr:@x/sock/server -e "tr a-z A-Z"  # a program per client
 * echo hello | deno run -N jsr:@x/sock/client     # sends, half-closes, prints the answer
 * deno run -N jsr:@x/sock/client -u 127.0.0.1 9990  # UDP: a datagram per line
 * ```
 *
 * Both take `--help`. Exit codes: 0 done, 1 a runtime or connection
 * failure, 2 bad usage, 130 / 143 ended by a (second) SIGINT / SIGTERM.
 *
 * ## Permissions
 *
 * - `-N` (`--allow-net`) for everything on the network, or narrowed:
 *   `--allow-net=127.0.0.1:9990`.
 * - `-R` for TLS certificate, key and CA files
 *   (`--allow-read=cert.pem,key.pem`); `-R -W` for a Unix socket path; `-W`
 *   for a hex dump file (`-x`).
 * - `--allow-run` only for the server's exec service (`-e`, `execHandler`).
 * - The test kit (`connPair`, `testHandler`, `chunkings`) needs none.
 *
 * @module
 */
export * from "./connection.ts";
export * from "./conn_streams.ts";
export * from "./sync_transform.ts";
export * from "./services.ts";
export * from "./chat.ts";
export * from "./framing.ts";
export * from "./server.ts";
export * from "./client.ts";
export * from "./datagram.ts";
export * from "./testing.ts";
// Both server.ts and client.ts export these; the explicit re-exports settle
// the ambiguity of `export *`.
export { Connection } from "./connection.ts";
export { DEFAULT_PORT } from "./server.ts";

/**
 * The uppercase client: sends a text to the uppercase server, half-closes,
 * and prints the answer.
 *
 * ```sh
 * deno run -N examples/upper_server.ts &
 * deno run -N examples/upper_client.ts "hello, sockets"      # HELLO, SOCKETS
 * deno run -N examples/upper_client.ts "again" 9990           # text, port
 * ```
 *
 * @module
 */
import { connect, exchange } from "@x/sock/client";

const [text = "hello, sockets", port = "9990"] = Deno.args;

const conn = await connect({ port: Number(port) });
// exchange() sends the text, then closeWrite() (our FIN), and reads until
// the server closes: the whole answer, however it was chunked.
const input = ReadableStream.from([new TextEncoder().encode(text)]);
console.log(await new Response(exchange(conn, input)).text());

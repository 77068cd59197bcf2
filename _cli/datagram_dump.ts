/**
 * The hex dump of the `--udp` mode: each datagram is a record of its own,
 * labelled with the peer.
 *
 * @module
 */

import { formatAddr, permissionHint } from "./common.ts";
import {
  formatHexDump,
  HexDump,
  type HexDumpDirection,
  openDumpSink,
} from "./hex_dump.ts";

/**
 * A hex dump of datagrams into a file (`-` for stderr): each datagram is
 * a record of its own, with offsets from 0, labelled with the peer.
 */
export class DatagramDump {
  #dump: HexDump;

  private constructor(dump: HexDump) {
    this.#dump = dump;
  }

  /** Opens the file; `undefined` after logging why it cannot. */
  static async open(
    path: string,
    log: (line: string) => void,
  ): Promise<DatagramDump | undefined> {
    try {
      return new DatagramDump(new HexDump(await openDumpSink(path)));
    } catch (error) {
      const reason = permissionHint(error) ??
        (error instanceof Error ? error.message : String(error));
      log(`error: Cannot write --hex-dump file "${path}" as ${reason}`);
      return undefined;
    }
  }

  /** Dumps one datagram; resolves when the sink has room. */
  write(
    direction: HexDumpDirection,
    bytes: Uint8Array,
    peer: Deno.NetAddr,
  ): Promise<void> {
    const label = formatAddr(peer);
    if (bytes.length === 0) {
      return this.#dump.note(`${label} ${direction} (empty datagram)`);
    }
    return this.#dump.writeText(formatHexDump(bytes, { direction, label }));
  }

  async close(): Promise<void> {
    await this.#dump.close().catch(() => {});
  }
}

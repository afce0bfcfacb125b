/**
 * A scripted Wyoming peer for tests, speaking the wire format from its own
 * small writer (header line, data section, payload) rather than the node's
 * encoder, so a bug in the codec cannot hide in both ends.
 */
import net from 'node:net';
import { WyomingDecoder, type WyomingEvent } from '../../runtime/extensions/wyoming/wyoming-codec.js';

export function wyomingBytes(type: string, data?: Record<string, unknown>, payload?: Buffer): Buffer {
  const dataBytes = data ? Buffer.from(JSON.stringify(data)) : undefined;
  const header = { type, ...(dataBytes ? { data_length: dataBytes.length } : {}), ...(payload ? { payload_length: payload.length } : {}) };
  return Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...(dataBytes ? [dataBytes] : []), ...(payload ? [payload] : [])]);
}

export class WyomingTestClient {
  readonly events: WyomingEvent[] = [];
  private readonly decoder = new WyomingDecoder({ maxHeaderBytes: 64 * 1024, maxDataBytes: 1024 * 1024, maxPayloadBytes: 16 * 1024 * 1024 });
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.events.push(...this.decoder.push(chunk));
      for (const w of this.waiters) w();
    });
    socket.on('close', () => {
      this.closed = true;
      for (const w of this.waiters) w();
    });
    socket.on('error', () => undefined);
  }

  static async connect(port: number): Promise<WyomingTestClient> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new WyomingTestClient(socket);
  }

  send(type: string, data?: Record<string, unknown>, payload?: Buffer): void {
    this.socket.write(wyomingBytes(type, data, payload));
  }

  /** Events up to here have been read by `next()`. */
  private cursor = 0;

  /** The next event of `type` not yet read by `next()` (events of other types before it are passed over); waits for it. */
  async next(type: string, timeoutMs = 15_000): Promise<WyomingEvent> {
    const found = await this.waitFor(() => {
      const i = this.events.findIndex((e, index) => index >= this.cursor && e.type === type);
      return i < 0 ? undefined : i;
    }, `a "${type}" event`, timeoutMs);
    this.cursor = found + 1;
    return this.events[found]!;
  }

  /** Waits until `find` returns something, or the socket closes, or the time is up. */
  async waitFor<T>(find: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = find();
      if (found !== undefined) return found;
      if (this.closed) throw new Error(`connection closed before ${what}; got ${this.events.map((e) => e.type).join(', ') || 'nothing'}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms; got ${this.events.map((e) => e.type).join(', ') || 'nothing'}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => { clearTimeout(timer); resolve(); });
      });
      this.waiters = [];
    }
  }

  async closedByServer(timeoutMs = 5_000): Promise<boolean> {
    await this.waitFor(() => (this.closed ? true : undefined), 'the server to close the connection', timeoutMs);
    return true;
  }

  end(): void {
    this.socket.destroy();
  }
}

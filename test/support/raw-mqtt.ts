/**
 * A raw MQTT connection for conformance tests: it sends exactly the packets
 * (or bytes) a test gives it, acknowledges nothing by itself, and records
 * every packet the broker sends, parsed with mqtt-packet, and the close.
 * MQTT.js hides the details these tests look at (the DUP flag, the Session
 * Present flag, which acknowledgement a client sends).
 */
import net from 'node:net';
import mqttPacket, { type IConnectPacket, type Packet } from 'mqtt-packet';

export type ConnectOptions = Partial<Omit<IConnectPacket, 'cmd'>>;
/** The packet of a type, as mqtt-packet parses it. */
export type PacketOf<C extends Packet['cmd']> = Extract<Packet, { cmd: C }>;

export class RawMqtt {
  /** Every packet the broker sent, in order. */
  readonly received: Packet[] = [];
  /** Resolves when the broker closed the connection (or it was reset). */
  readonly closed: Promise<void>;
  private isClosed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(readonly socket: net.Socket, protocolVersion: number) {
    const parser = mqttPacket.parser({ protocolVersion });
    parser.on('packet', (packet: Packet) => {
      this.received.push(packet);
      for (const wake of [...this.waiters]) wake();
    });
    parser.on('error', () => socket.destroy());
    socket.on('data', (chunk: Buffer) => parser.parse(chunk));
    socket.on('error', () => undefined); // a reset is a close here
    this.closed = new Promise((resolve) => socket.once('close', () => {
      this.isClosed = true;
      for (const wake of [...this.waiters]) wake();
      resolve();
    }));
  }

  /** Opens a TCP connection; nothing is sent yet. */
  static async open(port: number, protocolVersion = 4): Promise<RawMqtt> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawMqtt(socket, protocolVersion);
  }

  /** Connects with the given CONNECT fields and resolves with the CONNACK. */
  static async connect(port: number, options: ConnectOptions = {}): Promise<{ client: RawMqtt; connack: PacketOf<'connack'> }> {
    const protocolVersion = options.protocolVersion ?? 4;
    const client = await RawMqtt.open(port, protocolVersion);
    client.send({ cmd: 'connect', protocolId: protocolVersion === 3 ? 'MQIsdp' : 'MQTT', protocolVersion, clean: true, clientId: 'raw', keepalive: 0, ...options });
    const connack = await client.next('connack');
    return { client, connack };
  }

  get open(): boolean {
    return !this.isClosed;
  }

  /** Sends packets (objects for mqtt-packet, or raw bytes) in one write, so the broker reads them together. */
  send(...packets: (Packet | Buffer)[]): void {
    this.socket.write(Buffer.concat(packets.map((p) => (Buffer.isBuffer(p) ? p : mqttPacket.generate(p)))));
  }

  /**
   * The first packet of that type (and passing `where`) received after the
   * `after`-th packet; waits for it. Rejects if the connection closes first.
   */
  next<C extends Packet['cmd']>(cmd: C, where: (packet: PacketOf<C>) => boolean = () => true, after = 0): Promise<PacketOf<C>> {
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const found = this.received.slice(after).find((p): p is PacketOf<C> => p.cmd === cmd && where(p as PacketOf<C>));
        if (found) {
          this.waiters.delete(check);
          resolve(found);
        } else if (this.isClosed) {
          this.waiters.delete(check);
          reject(new Error(`connection closed before a ${cmd} arrived (got ${this.received.map((p) => p.cmd).join(', ') || 'nothing'})`));
        }
      };
      this.waiters.add(check);
      check();
    });
  }

  /** PUBLISH packets received on a topic. */
  publishes(topic: string): PacketOf<'publish'>[] {
    return this.received.filter((p): p is PacketOf<'publish'> => p.cmd === 'publish' && p.topic === topic);
  }

  /** Sends DISCONNECT and waits for the close. */
  async disconnect(): Promise<void> {
    if (this.isClosed) return;
    this.send({ cmd: 'disconnect' });
    await this.closed;
  }

  /** Cuts the connection without DISCONNECT (a network failure, as the broker sees it). */
  async drop(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

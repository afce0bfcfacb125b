/**
 * Raw TCP connections to a broker, for bytes and behaviours no MQTT client
 * library produces (partial or oversized packets, withheld acknowledgements,
 * many sockets from chosen loopback addresses).
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';

export interface RawSocket {
  socket: net.Socket;
  /** Everything the broker sent, once it closed the connection. */
  closed: Promise<Buffer>;
  /** True once the broker closed it. */
  readonly isClosed: boolean;
  /** Resolves once what the broker sent contains `bytes`, or it closed (then false). */
  receives(bytes: Buffer): Promise<boolean>;
}

/** Opens a raw connection (from `localAddress`, any of 127.0.0.0/8) and records what the broker sends. */
export async function rawSocket(port: number, options: { localAddress?: string; sockets?: net.Socket[] } = {}): Promise<RawSocket> {
  const socket = net.connect({ port, host: '127.0.0.1', ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  options.sockets?.push(socket);
  socket.on('error', () => undefined); // a reset is as good as a close here
  const chunks: Buffer[] = [];
  let isClosed = false;
  const closed = new Promise<Buffer>((resolve) => socket.once('close', () => {
    isClosed = true;
    resolve(Buffer.concat(chunks));
  }));
  socket.on('data', (d: Buffer) => {
    chunks.push(d);
    socket.emit('apiary-received');
  });
  const receives = (bytes: Buffer): Promise<boolean> => new Promise((resolve) => {
    const check = (): void => {
      if (!Buffer.concat(chunks).includes(bytes)) return;
      socket.off('apiary-received', check);
      resolve(true);
    };
    socket.on('apiary-received', check);
    void closed.then(() => resolve(Buffer.concat(chunks).includes(bytes)));
    check();
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return { socket, closed, get isClosed() { return isClosed; }, receives };
}

export const connectPacket = (clientId: string, extra: Partial<mqttPacket.IConnectPacket> = {}): Buffer =>
  mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0, ...extra });
export const CONNACK_ACCEPTED = Buffer.from([0x20, 0x02, 0x00, 0x00]);
export const PINGREQ = Buffer.from([0xc0, 0x00]);
export const PINGRESP = Buffer.from([0xd0, 0x00]);

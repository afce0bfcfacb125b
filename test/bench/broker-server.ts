/**
 * The embedded broker alone in its own process, so the broker benchmark can
 * read its CPU and RSS from /proc apart from the load generator (as it does
 * for mosquitto). Prints one JSON line {"port":n} once listening; then each
 * "stats" (or "stats gc": after a full GC) line on stdin is answered with
 * one JSON line (BrokerServerStats).
 * Stops on stdin end, SIGTERM or SIGINT.
 *
 * APIARY_BENCH_RAW_AEDES=1 runs bare aedes on a plain TCP server instead:
 * none of Apiary's layers (packet guard, outbox, access policy), to tell
 * aedes's own cost from ours. Its stats carry no counters or outboxes.
 */
import net, { type Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { EmbeddedBroker, type BrokerOutgoing } from '../../runtime/broker/embedded-broker.js';
import { Counters } from '../../runtime/counters.js';

export interface BrokerServerStats {
  /** The broker's Counters (drops, rejects, client errors), as `apiary status` would show them. */
  readonly counters: Record<string, number>;
  readonly clients: number;
  /** Diagnostics read from private fields (undefined if they moved): publishes waiting in aedes's mqemitter queue. */
  readonly emitterQueue: number | undefined;
  /** Bytes written to clients that Node still holds (aedes's client streams and the sockets), not yet taken by the kernel. */
  readonly writeBufferedBytes: number | undefined;
  /** What waits in the broker's outboxes for clients whose sockets are full (EmbeddedBroker.outgoing()). */
  readonly outgoing: BrokerOutgoing;
  /** V8 heap in use; after a full GC when asked with "stats gc" (the process runs with --expose-gc). */
  readonly heapUsedBytes: number;
  readonly gc: boolean;
}

const counters = new Counters();
const broker = process.env.APIARY_BENCH_RAW_AEDES === '1'
  ? await rawAedes()
  : new EmbeddedBroker({ host: '127.0.0.1', port: 0, logger: pino({ level: 'silent' }), counters });

/** Bare aedes behind the same small interface the bench uses. */
async function rawAedes(): Promise<Pick<EmbeddedBroker, 'start' | 'stop' | 'connectedClients' | 'outgoing'>> {
  const { Aedes } = await import('aedes');
  const aedes = await Aedes.createBroker();
  const server = net.createServer((socket) => aedes.handle(socket));
  return {
    start: () => new Promise<number>((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port))),
    stop: () => new Promise<void>((resolve) => server.close(() => aedes.close(() => resolve()))),
    get connectedClients() { return aedes.connectedClients; },
    outgoing: () => ({ waitingClients: 0, queuedMessages: 0, queuedBytes: 0, unacknowledged: 0 }),
  };
}

const send = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);

const writable = (s: unknown) => (s && typeof (s as Writable).writableLength === 'number' ? (s as Writable).writableLength : 0);

function stats(collect: boolean): BrokerServerStats {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (collect) gc?.();
  // Peeks at EmbeddedBroker's private fields: only to explain where the memory goes, never to decide a result.
  const inner = broker as unknown as { aedes?: { mq?: { length?: unknown }; clients?: Record<string, { conn?: unknown }> }; sockets?: Set<Socket> };
  const queued = inner.aedes?.mq?.length;
  const conns = Object.values(inner.aedes?.clients ?? {}).map((c) => c.conn);
  const sockets = inner.sockets instanceof Set ? [...inner.sockets] : [];
  // With a wrapper stream in front of the socket, both hold bytes; without one, conn is the socket (counted once).
  const streams = new Set<unknown>([...conns, ...sockets]);
  return {
    counters: counters.snapshot(),
    clients: broker.connectedClients,
    emitterQueue: typeof queued === 'number' ? queued : undefined,
    writeBufferedBytes: inner.aedes ? [...streams].reduce<number>((sum, s) => sum + writable(s), 0) : undefined,
    outgoing: broker.outgoing(),
    heapUsedBytes: process.memoryUsage().heapUsed,
    gc: collect && gc !== undefined,
  };
}

let stopping: Promise<void> | undefined;
function stop(): void {
  stopping ??= broker.stop().finally(() => process.exit(0));
}

process.once('SIGTERM', stop);
process.once('SIGINT', stop);

const port = await broker.start();
send({ port });
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'stats' || command === 'stats gc') send(stats(command === 'stats gc'));
});
lines.once('close', stop);

/**
 * Asking a node over MQTT is bounded by its timeout as a whole: a broker
 * that accepts the connection and then stops answering (a node killed
 * mid-request) gets NODE_NOT_RUNNING after the timeout, not a request that
 * waits forever for its subscription to be acknowledged.
 */
import net from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { ErrorCodes } from '../../../runtime/errors.js';

describe('requestNode', () => {
  const sockets = new Set<net.Socket>();
  // Answers CONNECT with CONNACK (MQTT 3.1.1, accepted), then nothing: the SUBSCRIBE is never acknowledged.
  const mute = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('data', () => socket.write(Buffer.from([0x20, 0x02, 0x00, 0x00])));
    socket.on('error', () => undefined);
  });
  afterAll(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => mute.close(resolve));
  });

  it('gives up after its timeout when the broker never acknowledges the subscription', async () => {
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const { port } = mute.address() as net.AddressInfo;
    const asked = requestNode({ url: `mqtt://127.0.0.1:${port}`, topicPrefix: 'apiary', nodeId: 'aaaaaaaaaaaa', command: 'status', timeoutMs: 500 });
    await expect(asked).rejects.toMatchObject({ code: ErrorCodes.NODE_NOT_RUNNING, message: expect.stringContaining('did not answer "status" within 0.5 s') as string });
  });

  it('gives up when the connection closes before the CONNACK (a node killed while it accepts), not never', async () => {
    const slam = net.createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.destroy());
    });
    await new Promise<void>((resolve) => slam.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = slam.address() as net.AddressInfo;
      // Before, MQTT.js's connectAsync (retries allowed, reconnectPeriod 0) waited for a connect or an end that never came.
      const asked = requestNode({ url: `mqtt://127.0.0.1:${port}`, topicPrefix: 'apiary', nodeId: 'aaaaaaaaaaaa', command: 'status', timeoutMs: 2_000 });
      const outcome = await Promise.race([asked.then(() => 'answered', (err: unknown) => err), new Promise((resolve) => setTimeout(() => resolve('still waiting after 10 s'), 10_000))]);
      expect(outcome).toMatchObject({ code: ErrorCodes.NODE_NOT_RUNNING });
    } finally {
      await new Promise((resolve) => slam.close(resolve));
    }
  }, 20_000);
});

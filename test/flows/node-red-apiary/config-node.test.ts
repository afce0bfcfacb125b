/**
 * apiary-node, the config node: one MQTT connection shared by every node
 * that names it, its state in their status, none left after the flow stops;
 * and its fields checked with messages that name them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiaryConnection } from '../../../flows/node-red-apiary/src/connection.js';
import type { NodeAPI } from '../../../flows/node-red-apiary/src/red.js';
import { brokerClients, loadPalette, collect, nodeOf, startApiaryNode, statuses, testHelper, waitFor, type RunningNode } from './support.js';

describe('apiary-node', () => {
  const helper = testHelper();
  let palette: (RED: NodeAPI) => void;
  let apiary: RunningNode | undefined;

  beforeAll(async () => {
    palette = loadPalette();
    apiary = await startApiaryNode();
    await helper.startServer();
  });
  afterAll(async () => {
    await helper.stopServer();
    await apiary?.stop();
  });

  it('opens one connection for all its nodes, shows its state, closes it when the flow stops, and shows a lost broker', async () => {
    const node = apiary!.node;
    const before = await brokerClients(node);
    await helper.load(palette, [
      { id: 'srv', type: 'apiary-node', host: '127.0.0.1', port: String(node.brokerPort), prefix: 'apiary', nodeId: '' },
      { id: 'r1', type: 'apiary-reading', server: 'srv', channel: 'temperature', wires: [['out1']] },
      { id: 'r2', type: 'apiary-reading', server: 'srv', channel: 'weight', wires: [['out2']] },
      { id: 'out1', type: 'helper' }, { id: 'out2', type: 'helper' },
    ]);
    const [out1, out2] = [collect(nodeOf(helper, 'out1')), collect(nodeOf(helper, 'out2'))];
    await waitFor(() => out1.length >= 1 && out2.length >= 1, 'readings at both nodes');
    expect(await brokerClients(node)).toBe(before + 1);

    await helper.unload();
    await waitFor(async () => (await brokerClients(node)) === before, 'no connection left after the flow stopped');

    await helper.load(palette, [
      { id: 'srv', type: 'apiary-node', host: '127.0.0.1', port: String(node.brokerPort), prefix: 'apiary', nodeId: node.nodeId },
      { id: 'r1', type: 'apiary-reading', server: 'srv', channel: 'temperature', wires: [['out1']] },
      { id: 'out1', type: 'helper' },
    ]);
    const lost = statuses(nodeOf(helper, 'r1'));
    const again = collect(nodeOf(helper, 'out1'));
    await waitFor(() => again.length >= 1, 'a reading, the node id configured');
    await apiary!.stop();
    apiary = undefined;
    await waitFor(() => lost.some((s) => s.fill === 'red' && s.shape === 'ring' && s.text === 'disconnected'), 'a red ring "disconnected"');
    await helper.unload();
  });

  it('refuses wrong fields with a message naming the field and the fix', () => {
    const base = { host: '127.0.0.1', port: 1883, prefix: 'apiary', clientName: 'test' };
    expect(() => new ApiaryConnection({ ...base, port: 70000 })).toThrow(/^port: 70000 is not a port number \(1-65535\)/);
    expect(() => new ApiaryConnection({ ...base, prefix: 'apiary/#' })).toThrow(/^topic prefix: "apiary\/#" must be topic levels without \+ or #/);
    expect(() => new ApiaryConnection({ ...base, nodeId: 'NOT-AN-ID' })).toThrow(/^node id: "NOT-AN-ID" is not 12 characters a-z, 2-7/);
    expect(() => new ApiaryConnection({ ...base, host: '' })).toThrow(/^host: empty/);
  });
});

/**
 * apiary reading, model and decision against a real Apiary node (simulated
 * beehive, its aedes broker on a loopback port), in Node-RED through
 * node-red-node-test-helper: typed outputs, status, the editor's pickers.
 */
import { describe, expect, it } from 'vitest';
import { collect, nodeOf, paletteSuite, statuses, testHelper, waitFor } from './support.js';

describe('apiary reading, model and decision', () => {
  const helper = testHelper();
  const suite = paletteSuite(helper);
  const server = () => ({ id: 'srv', type: 'apiary-node', name: 'hive', host: '127.0.0.1', port: String(suite.apiary.node.brokerPort), prefix: 'apiary', nodeId: '' });

  it('apiary reading: a numeric payload, msg.apiary with origin, channel, unit and time, and the last value in the status', async () => {
    await helper.load(suite.palette, [server(), { id: 'r', type: 'apiary-reading', server: 'srv', channel: 'temperature', wires: [['out']] }, { id: 'out', type: 'helper' }]);
    const status = statuses(nodeOf(helper, 'r'));
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => out.length >= 2, 'two temperature readings');
    for (const msg of out) {
      expect(typeof msg.payload).toBe('number');
      expect(msg.topic).toBe(`apiary/${suite.apiary.node.nodeId}/readings/temperature`);
      expect(msg.apiary).toMatchObject({ origin: suite.apiary.node.nodeId, channel: 'temperature', unit: '°C', t: expect.any(Number) as number, time: expect.any(String) as string });
    }
    await waitFor(() => status.some((s) => s.fill === 'green' && s.shape === 'dot' && /°C$/.test(s.text ?? '')), 'the last value in the status');
  });

  it('apiary reading without a channel sends every channel', async () => {
    await helper.load(suite.palette, [server(), { id: 'r', type: 'apiary-reading', server: 'srv', channel: '', wires: [['out']] }, { id: 'out', type: 'helper' }]);
    const out = collect(nodeOf(helper, 'out'));
    const channels = () => new Set(out.map((m) => (m.apiary as { channel: string }).channel));
    await waitFor(() => ['temperature', 'humidity', 'weight', 'sound_level'].every((c) => channels().has(c)), 'a reading of every channel');
    expect(out.every((m) => typeof m.payload === 'number')).toBe(true);
  });

  it('apiary model: the chosen label\'s probability as payload, every probability in msg.apiary', async () => {
    await helper.load(suite.palette, [server(), { id: 'm', type: 'apiary-model', server: 'srv', model: 'hive-sound', label: 'swarm', wires: [['out']] }, { id: 'out', type: 'helper' }]);
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => out.length >= 1, 'a hive-sound output');
    const msg = out[0]!;
    const apiaryFields = msg.apiary as { model: string; label: string; probabilities: Record<string, number> };
    expect(apiaryFields).toMatchObject({ origin: suite.apiary.node.nodeId, model: 'hive-sound', label: 'swarm' });
    expect(Object.keys(apiaryFields.probabilities).sort()).toEqual(['normal', 'pre-swarm', 'swarm']);
    expect(msg.payload).toBe(apiaryFields.probabilities.swarm);
    expect(msg.payload).toBeGreaterThanOrEqual(0);
    expect(msg.payload).toBeLessThanOrEqual(1);
  });

  it('apiary model warns about a label the model does not have, naming the labels it has, and sends nothing', async () => {
    await helper.load(suite.palette, [server(), { id: 'm', type: 'apiary-model', server: 'srv', model: 'hive-sound', label: 'swarming', wires: [['out']] }, { id: 'out', type: 'helper' }]);
    const warnings: string[] = [];
    nodeOf(helper, 'm').on('call:warn', (call) => warnings.push(String(call.args[0])));
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => warnings.length >= 1, 'a warning');
    expect(warnings[0]).toMatch(/label "swarming" is not among this model's labels \(normal, pre-swarm, swarm\)/);
    expect(out).toEqual([]);
  });

  it('apiary decision: the retained decision when asked for, typed, with a red status when raised', async () => {
    await waitFor(async () => ((await suite.apiary.node.status()).latest as { decisions: Record<string, unknown> }).decisions.warm !== undefined, 'the warm rule raised');
    await helper.load(suite.palette, [server(), { id: 'd', type: 'apiary-decision', server: 'srv', rule: 'warm', only: 'all', retained: true, wires: [['out']] }, { id: 'out', type: 'helper' }]);
    const status = statuses(nodeOf(helper, 'd'));
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => out.length >= 1, 'the retained decision');
    expect(out[0]!.payload).toMatchObject({ rule: 'warm', state: 'raised', severity: expect.any(String) as string, input: 'reading.temperature' });
    expect(out[0]!.apiary).toMatchObject({ origin: suite.apiary.node.nodeId, rule: 'warm', state: 'raised', retained: true });
    await waitFor(() => status.some((s) => s.fill === 'red' && s.text === 'warm raised'), 'a red status');
  });

  it('apiary decision with "raised only" drops cleared decisions, and without "retained" skips the held one', async () => {
    // Two nodes on one rule: the one that takes the retained decision shows it arrived, so the other had it offered.
    await helper.load(suite.palette, [server(),
      { id: 'dHeld', type: 'apiary-decision', server: 'srv', rule: 'warm', only: 'raised', retained: true, wires: [['outHeld']] },
      { id: 'dCleared', type: 'apiary-decision', server: 'srv', rule: 'warm', only: 'cleared', retained: true, wires: [['outCleared']] },
      { id: 'dFresh', type: 'apiary-decision', server: 'srv', rule: 'warm', only: 'all', retained: false, wires: [['outFresh']] },
      { id: 'outHeld', type: 'helper' }, { id: 'outCleared', type: 'helper' }, { id: 'outFresh', type: 'helper' }]);
    const held = collect(nodeOf(helper, 'outHeld'));
    const cleared = collect(nodeOf(helper, 'outCleared'));
    const fresh = collect(nodeOf(helper, 'outFresh'));
    await waitFor(() => held.length >= 1, 'the held decision');
    expect(cleared).toEqual([]);
    expect(fresh).toEqual([]);
  });

  it('the editor\'s pickers: rules and models from the node\'s info, channels from its latest readings; nothing yet, and why, for an undeployed config', async () => {
    await helper.load(suite.palette, [server(), { id: 'r', type: 'apiary-reading', server: 'srv', channel: '', wires: [[]] }]);
    const res = await helper.request().get('/apiary/nodes/srv');
    expect(res.status).toBe(200);
    const body = res.body as { nodeId: string; state: string; rules: string[]; models: string[]; channels: string[] };
    expect(body.nodeId).toBe(suite.apiary.node.nodeId);
    expect(body.state).toBe('connected');
    expect(body.rules).toEqual(['warm']);
    expect(body.models).toEqual(expect.arrayContaining(['hive-sound', 'hive-thermal']));
    expect(body.channels).toEqual(expect.arrayContaining(['temperature', 'humidity', 'weight', 'sound_level']));
    // Not deployed yet (every new config node, before its first deploy): nothing to offer, and why; not an HTTP error,
    // which the browser would log as a console error (test/runtime/extensions/flows/editor-browser.test.ts).
    const missing = await helper.request().get('/apiary/nodes/nosuchnode');
    expect(missing.status).toBe(200);
    expect(missing.body).toMatchObject({ state: 'undeployed', channels: [], models: [], rules: [] });
    expect((missing.body as { lastError: string }).lastError).toMatch(/not deployed yet/);
  });
});

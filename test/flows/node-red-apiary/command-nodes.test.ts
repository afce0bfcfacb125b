/**
 * apiary command and apiary shared against a real Apiary node: results as
 * typed messages, refusals and timeouts to a Catch node (done(err)), and the
 * shared document read, written and watched.
 */
import { describe, expect, it } from 'vitest';
import type { NodeMessage } from '../../../flows/node-red-apiary/src/red.js';
import { collect, nodeOf, paletteSuite, statuses, testHelper, waitFor } from './support.js';

describe('apiary command and apiary shared', () => {
  const helper = testHelper();
  const suite = paletteSuite(helper);
  const server = (extra: Record<string, unknown> = {}) => ({ id: 'srv', type: 'apiary-node', host: '127.0.0.1', port: String(suite.apiary.node.brokerPort), prefix: 'apiary', nodeId: suite.apiary.node.nodeId, ...extra });
  /**
   * A flow of `node`, its output to `out`, and a Catch node (on this tab) to `caught`. Node ids differ from
   * every property value: Node-RED takes a property equal to a node id for a config node reference.
   */
  const flow = (node: Record<string, unknown>, serverExtra: Record<string, unknown> = {}) => [
    { id: 'flow1', type: 'tab', label: 'test' },
    { ...server(serverExtra), z: undefined },
    { ...node, id: 'n', z: 'flow1', server: 'srv', wires: [['out']] },
    { id: 'out', type: 'helper', z: 'flow1' },
    { id: 'catcher', type: 'catch', z: 'flow1', scope: null, uncaught: false, wires: [['caught']] },
    { id: 'caught', type: 'helper', z: 'flow1' },
  ];

  it('apiary command: the result as msg.payload, the other fields of the message kept', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: 'status', timeout: '10' }));
    const out = collect(nodeOf(helper, 'out'));
    const status = statuses(nodeOf(helper, 'n'));
    nodeOf(helper, 'n').receive({ payload: '', note: 'kept' });
    await waitFor(() => out.length === 1, 'the status result');
    expect(out[0]!.payload).toMatchObject({ nodeId: suite.apiary.node.nodeId, app: 'beehive' });
    expect(out[0]).toMatchObject({ note: 'kept', apiary: { origin: suite.apiary.node.nodeId, command: 'status' } });
    await waitFor(() => status.some((s) => s.text === 'status ok'), 'the status "status ok"');
  });

  it('apiary command runs msg.command with msg.payload as its arguments when the node names none', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: '' }));
    const out = collect(nodeOf(helper, 'out'));
    nodeOf(helper, 'n').receive({ command: 'shared/set', payload: { map: 'thresholds', key: 'swarm', value: 0.9 } });
    await waitFor(() => out.length === 1, 'the shared/set result');
    expect(out[0]!.payload).toEqual({ map: 'thresholds', key: 'swarm', value: 0.9 });
  });

  it('a refused command reaches the Catch node with the node\'s code and message, and nothing is sent', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: 'no/such' }));
    const out = collect(nodeOf(helper, 'out'));
    const caught = collect(nodeOf(helper, 'caught'));
    const status = statuses(nodeOf(helper, 'n'));
    nodeOf(helper, 'n').receive({ payload: {} });
    await waitFor(() => caught.length === 1, 'the error at the Catch node');
    const error = caught[0]!.error as { message: string; code: string; source: { id: string } };
    expect(error.code).toBe('APIARY_COMMAND_INVALID');
    expect(error.message).toMatch(/^ApiaryError: no\/such: unknown command "no\/such": known commands are .*status/);
    expect(error.source.id).toBe('n');
    expect(out).toEqual([]);
    await waitFor(() => status.some((s) => s.fill === 'red' && s.text === 'no/such failed'), 'a red status');
  });

  it('bad arguments are refused by the node (shared/set of the members map) and caught', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: 'shared/set' }));
    const caught = collect(nodeOf(helper, 'caught'));
    nodeOf(helper, 'n').receive({ payload: { map: 'members', key: 'x', value: 1 } });
    await waitFor(() => caught.length === 1, 'the refusal');
    expect((caught[0]!.error as { message: string }).message).toMatch(/map: 1-32 lower-case letters.*not "members"/);
  });

  it('msg.payload that is not an object is refused before sending, naming msg.payload', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: 'status' }));
    const caught = collect(nodeOf(helper, 'caught'));
    nodeOf(helper, 'n').receive({ payload: 42 });
    await waitFor(() => caught.length === 1, 'the refusal');
    expect((caught[0]!.error as { message: string }).message).toMatch(/^ApiaryError: msg\.payload: a command's arguments are an object/);
  });

  it('no answer within the timeout reaches the Catch node', async () => {
    // A namespace on the same broker that no node answers in.
    await helper.load(suite.palette, flow({ type: 'apiary-command', command: 'status', timeout: '0.3' }, { prefix: 'nobody', nodeId: 'aaaaaaaaaaaa' }));
    const caught = collect(nodeOf(helper, 'caught'));
    nodeOf(helper, 'n').receive({ payload: {} });
    await waitFor(() => caught.length === 1, 'the timeout at the Catch node');
    expect(caught[0]!.error).toMatchObject({ code: 'APIARY_NODE_NOT_RUNNING', message: expect.stringMatching(/node aaaaaaaaaaaa did not answer "status" within 0\.3 s/) as string });
  });

  it('apiary shared: set then get a value, get a map, and a missing key is null', async () => {
    await helper.load(suite.palette, [
      ...flow({ type: 'apiary-shared', action: 'set', map: 'thresholds', key: 'overheating' }),
      { id: 'getter', type: 'apiary-shared', z: 'flow1', server: 'srv', action: 'get', map: 'thresholds', key: '', wires: [['gotMap']] },
      { id: 'gotMap', type: 'helper', z: 'flow1' },
    ]);
    const out = collect(nodeOf(helper, 'out'));
    const gotMap = collect(nodeOf(helper, 'gotMap'));
    nodeOf(helper, 'n').receive({ payload: 39.5 });
    await waitFor(() => out.length === 1, 'the value set');
    expect(out[0]).toMatchObject({ topic: 'thresholds/overheating', payload: 39.5, apiary: { map: 'thresholds', key: 'overheating' } });
    nodeOf(helper, 'getter').receive({});
    await waitFor(() => gotMap.length === 1, 'the map');
    expect((gotMap[0]!.payload as Record<string, unknown>).overheating).toBe(39.5);
    nodeOf(helper, 'getter').receive({ key: 'no-such-key' });
    await waitFor(() => gotMap.length === 2, 'the missing key');
    expect(gotMap[1]!.payload).toBeNull();
  });

  it('apiary shared set without a key names the field, at the Catch node', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-shared', action: 'set', map: 'thresholds', key: '' }));
    const caught = collect(nodeOf(helper, 'caught'));
    nodeOf(helper, 'n').receive({ payload: 1 });
    await waitFor(() => caught.length === 1, 'the refusal');
    expect((caught[0]!.error as { message: string }).message).toMatch(/^ApiaryError: key: none; set the node's key or msg\.key/);
  });

  it('apiary shared watch: the current value first, then each change', async () => {
    await helper.load(suite.palette, flow({ type: 'apiary-shared', action: 'watch', map: 'catalogue', key: 'honey', interval: '0.1' }));
    const out = collect(nodeOf(helper, 'out'));
    await waitFor(() => out.length === 1, 'the first read');
    expect(out[0]!.payload).toBeNull();
    const set = async (value: unknown) => suite.apiary.node.commands.run('shared/set', { map: 'catalogue', key: 'honey', value });
    expect(await set({ jars: 12 })).toMatchObject({ ok: true });
    await waitFor(() => out.length === 2, 'the change');
    expect(out[1]!.payload).toEqual({ jars: 12 });
    expect(await set({ jars: 11 })).toMatchObject({ ok: true });
    await waitFor(() => out.length === 3, 'the second change');
    const payloads = out.map((m: NodeMessage) => m.payload);
    expect(payloads).toEqual([null, { jars: 12 }, { jars: 11 }]);
  });
});

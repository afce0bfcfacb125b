/**
 * Asking a real node (simulated hive at 120x, real aedes broker, real MQTT.js
 * client, real ONNX models, real files) over its MQTT `cmd/ask` topic, and
 * with the compiled `apiary ask`. Every answer is held against `status`
 * taken at the same moment: nothing in it may differ.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { Extension } from '../../../../runtime/core/extension.js';
import type { NodeEventMap } from '../../../../runtime/core/node-events.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import type { AskReply } from '../../../../runtime/extensions/ask/commands.js';
import { QUESTION_ENTRY_TYPE } from '../../../../runtime/extensions/ask/index.js';
import { valueAt } from '../../../../runtime/value-at.js';
import { apiary } from '../../../support/cli.js';
import { commandRequester, type CommandReply } from '../../../support/mqtt-request.js';
import { ownerKeyOf, startMeshNode, waitFor, type TestMeshNode } from '../../../support/mesh-node.js';

type Reply = CommandReply;
interface Status {
  latest: {
    readings: Record<string, { value: number; unit: string; t: number }>;
    models: Record<string, { label: string; probabilities: Record<string, number>; t: number }>;
    decisions: Record<string, { rule: string; active: boolean; message: string; reason: string; t: number }>;
  };
}
type Announcement = NodeEventMap['announcement'][0];

describe('asking the hive in text', () => {
  let dir: string;
  let node: ApiaryNode;
  let neighbour: TestMeshNode;
  let client: MqttClient;
  const announcements: Announcement[] = [];

  /** What a voice front would be: an extension that listens for announcements. */
  const listener = {
    name: 'announcement-listener',
    enabled: () => true,
    load: () => Promise.resolve((): Extension => ({
      name: 'announcement-listener',
      start: (ctx) => { ctx.events.on('announcement', (a) => { announcements.push(a); }); return Promise.resolve(); },
      stop: () => Promise.resolve(),
    })),
  };

  let requester: ReturnType<typeof commandRequester> | undefined;
  const request = (name: string, args?: unknown): Promise<Reply> => (requester ??= commandRequester(client, () => node.nodeId, { idPrefix: 'ask' }))(name, args);
  const status = async () => (await request('status')).result as Status;
  const ask = async (question: string) => {
    const reply = await request('ask', { question });
    expect(reply).toMatchObject({ ok: true });
    return reply.result as AskReply;
  };

  /**
   * Asks between two `status` calls that agree (no reading, model output or
   * decision came in between), so the answer must agree with them; checks
   * that each status value the answer says it used is the one status has.
   */
  const askAtOneMoment = async (question: string): Promise<{ reply: AskReply; status: Status }> => {
    for (let attempt = 0; attempt < 100; attempt++) {
      const before = await status();
      const reply = await ask(question);
      const after = await status();
      if (JSON.stringify(before.latest) !== JSON.stringify(after.latest)) continue;
      for (const source of reply.sources.filter((s) => s.command === 'status' && !s.path.includes('['))) {
        expect(valueAt(after, source.path.split('.')), source.path).toEqual(source.value);
      }
      return { reply, status: after };
    }
    throw new Error(`status never held still around "${question}"`);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-ask-'));
    const nodeDir = path.join(dir, 'hive');
    const neighbourDir = path.join(dir, 'north');
    const owners = await Promise.all([nodeDir, neighbourDir].map(ownerKeyOf));
    neighbour = await startMeshNode({ name: 'North hive', dir: neighbourDir, trustedOwners: owners });
    const config = parseConfig({
      node: { dataDir: nodeDir, name: 'Test hive' },
      broker: { port: 0 },
      homeAssistant: { enabled: false },
      device: {
        simulation: { speed: 120, preSwarm: '3m', swarm: '4m' },
        sensors: { temperature: { interval: '1m' }, humidity: { interval: '1m' }, weight: { interval: '1m' }, sound: { interval: '1m' } },
      },
      models: { thermal: { every: '5m', minReadings: 3 } },
      mesh: {
        commitInterval: '20ms',
        neighbours: [{ url: neighbour.broker.url, nodeId: neighbour.node.nodeId }],
        trust: { owners: owners.map((publicKey, i) => ({ name: `owner-${i}`, publicKey })) },
      },
      ask: { announce: ['critical'] },
    });
    node = new ApiaryNode(config, pino({ level: 'silent' }), [...extensionsFor(config), listener]);
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'ask-test' });
    await client.subscribeAsync(`apiary/${node.nodeId}/reply/#`, { qos: 1 });
    // Enough history for a trend, and the sound model's first output.
    await waitFor(async () => {
      const s = await status();
      return Object.keys(s.latest.readings).length === 4 && s.latest.models['hive-sound'] !== undefined && s.latest.models['hive-thermal'] !== undefined;
    }, 30_000, () => 'readings of every channel and both models');
    await waitFor(async () => ((await request('readings/recent', { channel: 'weight' })).result as { readings: unknown[] }).readings.length >= 4, 30_000, () => 'four weight readings');
  }, 60_000);

  afterAll(async () => {
    await client?.endAsync();
    await node?.stop();
    await neighbour?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('"how is the hive?": every reading with its unit, the models and the alerts, as status has them', async () => {
    const { reply, status: s } = await askAtOneMoment("Hey hive, how's the hive?");
    expect(reply).toMatchObject({ question: "Hey hive, how's the hive?", intent: 'hive-status', slots: {} });
    const { temperature, humidity, weight, sound_level: sound } = s.latest.readings;
    // Temperature, humidity and weight first, then the others.
    expect(reply.answer).toMatch(/^Temperature .*, humidity .*, weight .* and sound level /);
    expect(reply.answer).toContain(`Temperature ${temperature?.value.toFixed(1)} °C`);
    expect(reply.answer).toContain(`humidity ${humidity?.value.toFixed(1)}%`);
    expect(reply.answer).toContain(`weight ${weight?.value.toFixed(1)} kg`);
    expect(reply.answer).toContain(`sound level ${sound?.value.toFixed(1)} dBFS`);
    expect(reply.speech).toContain(`Temperature ${temperature?.value.toFixed(1)} degrees Celsius`);
    expect(reply.speech).toContain(`humidity ${humidity?.value.toFixed(1)} percent`);
    expect(reply.speech).toContain(`weight ${weight?.value.toFixed(1)} kilograms`);
    expect(reply.speech).toMatch(/sound level minus \d+\.\d decibels/);
    const model = s.latest.models['hive-sound'];
    expect(reply.answer.toLowerCase()).toContain(`the hive sound model says ${model?.label} (${Math.round((model?.probabilities[model.label] ?? -1) * 100)}%)`);
    const active = Object.values(s.latest.decisions).filter((d) => d.active);
    if (active.length === 0) expect(reply.answer).toMatch(/No alerts\.$/);
    else for (const d of active) expect(reply.answer).toContain(d.message);
    expect(reply.sources.map((x) => x.path)).toEqual(expect.arrayContaining(['latest.readings.temperature.value', 'latest.readings.weight.value']));
  });

  it('"how heavy is it?" and "what is the <channel>?": the value with its unit and a trend from the stored readings', async () => {
    for (const [question, channel, unit, spoken] of [
      ['How heavy is it?', 'weight', ' kg', ' kilograms'],
      ["what's the temperature", 'temperature', ' °C', ' degrees Celsius'],
      ['What is the current hive humidity, please?', 'humidity', '%', ' percent'],
    ] as const) {
      const { reply, status: s } = await askAtOneMoment(question);
      expect(reply.intent).toBe(channel === 'weight' ? 'weight' : 'reading');
      const value = s.latest.readings[channel]?.value.toFixed(1) ?? 'missing';
      expect(reply.answer).toMatch(new RegExp(`^The ${channel} is ${value.replace('.', '\\.')}${unit}, (steady|rising: up|falling: down)`));
      expect(reply.speech).toContain(`The ${channel} is ${value}${spoken}`);
      expect(reply.answer).toMatch(/over the last \d+ (second|minute|hour)s?\.$/);
      // The trend's readings came from the registry's readings/recent, and it says which.
      expect(reply.sources.find((x) => x.command === 'readings/recent')).toMatchObject({ args: { channel } });
    }
  });

  it('readings/recent answers what the trend read: the channel, its unit, oldest first', async () => {
    const reply = await request('readings/recent', { channel: 'weight', limit: 5 });
    const result = reply.result as { channel: string; unit: string; readings: { value: number; t: number }[] };
    expect(result).toMatchObject({ channel: 'weight', unit: 'kg' });
    expect(result.readings.length).toBe(5);
    expect(result.readings.map((r) => r.t)).toEqual([...result.readings.map((r) => r.t)].sort((a, b) => a - b));
    expect(await request('readings/recent', { channel: 'Weight!' })).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID, error: expect.stringContaining('field "channel"') as string });
  });

  it("what the neighbours' hives say: how many are linked, and their alerts from their signed feeds", async () => {
    await waitFor(async () => /One neighbour is linked/.test((await ask("what do the neighbours' hives say?")).answer), 20_000, () => 'the neighbour linked');
    expect((await ask('what do the neighbours say')).answer).toBe('One neighbour is linked. None has an alert.');
    await neighbour.mesh.append('decision', { rule: 'hive-overheating', state: 'raised', active: true, severity: 'critical', message: 'The hive is overheating', reason: 'reading.temperature = 39.2 > 38', input: 'reading.temperature', value: 39.2, t: Date.now() });
    await waitFor(async () => /North hive: The hive is overheating\./.test((await ask('how are the other hives?')).answer), 20_000, () => 'the neighbour\'s alert');
    const named = await ask('What does North Hive say?');
    expect(named).toMatchObject({ intent: 'neighbours', slots: { neighbour: 'north hive' } });
    expect(named.answer).toBe('North hive is linked. One alert: The hive is overheating.');
    expect(named.sources.map((x) => x.command)).toEqual(['status', 'mesh/decisions']);
  });

  it('"is it going to swarm?" is "no" on a calm colony, and "yes", with the reason, once a swarm is injected', async () => {
    const calm = await askAtOneMoment('Is it going to swarm?');
    expect(calm.reply.intent).toBe('swarm-risk');
    const swarm = calm.status.latest.models['hive-sound'];
    expect(swarm?.label).toBe('normal');
    expect(calm.reply.answer).toBe(`No sign of it: the colony sounds normal (pre swarm ${Math.round((swarm?.probabilities['pre-swarm'] ?? -1) * 100)}% and swarm ${Math.round((swarm?.probabilities.swarm ?? -1) * 100)}%).`);
    expect(await request('sim/swarm')).toMatchObject({ ok: true });
    let yes: { reply: AskReply; status: Status } | undefined;
    await waitFor(async () => {
      const now = await askAtOneMoment('will the bees swarm');
      if (now.reply.answer.startsWith('Yes.')) yes = now;
      return yes !== undefined;
    }, 30_000, () => 'a "yes" to "will the bees swarm"');
    const raised = Object.values(yes?.status.latest.decisions ?? {}).find((d) => d.active && /swarm/.test(d.rule));
    expect(raised).toBeDefined();
    expect(yes?.reply.answer).toContain(raised?.message);
    expect(yes?.reply.answer).toContain(`was raised because ${raised?.reason}.`);
    expect(yes?.reply.speech).toMatch(/because the hive sound model's (pre swarm|swarm) score was \d+ percent, above 80 percent/);
  });

  it('"why did you raise that alert?" gives the decision and its recorded reason', async () => {
    await waitFor(async () => Object.values((await status()).latest.decisions).some((d) => d.rule === 'swarming'), 30_000, () => 'the swarming decision');
    const { reply, status: s } = await askAtOneMoment('why swarming');
    const swarming = s.latest.decisions.swarming;
    expect(reply).toMatchObject({ intent: 'why', slots: { rule: 'swarming' } });
    expect(reply.answer).toContain(`${swarming?.active ? 'raised' : 'cleared'} because ${swarming?.reason}.`);
    const general = await askAtOneMoment('Why did you raise that alert?');
    expect(general.reply.intent).toBe('why');
    const active = Object.values(general.status.latest.decisions).filter((d) => d.active);
    if (active.length > 0) expect(active.some((d) => general.reply.answer.includes(d.reason))).toBe(true);
    else expect(general.reply.answer).toMatch(/^No alert is raised now\. The last one: /);
  });

  it('announces a critical decision as it is raised, with the reason in words (ask.announce: [critical])', () => {
    const swarming = announcements.find((a) => a.rule === 'swarming');
    expect(swarming).toMatchObject({ severity: 'critical' });
    expect(swarming?.text).toMatch(/^Alert: The colony sounds like it is swarming\. Swarming \(critical\) was raised because model\.hive-sound\.swarm = /);
    expect(swarming?.speech).toMatch(/^Alert\. The colony sounds like it is swarming\. It was raised because the hive sound model's swarm score was \d+ percent, above 80 percent, for \d+ (seconds|minutes?)\.$/);
    // pre-swarm is a warning: not in the list.
    expect(announcements.filter((a) => a.severity !== 'critical')).toEqual([]);
  });

  it('"I don\'t know that" for anything else, with what can be asked; and "what can I ask?"', async () => {
    for (const question of ['What is the capital of France?', 'how is the weather', 'tell me a joke']) {
      const reply = await ask(question);
      expect(reply).toMatchObject({ intent: 'unknown', slots: {}, sources: [] });
      expect(reply.answer).toMatch(/^I don't know that\. You can ask: how is the hive, is it going to swarm, how heavy is it, /);
    }
    expect((await ask('What can I ask?')).answer).toMatch(/^You can ask: how is the hive, .*what do the neighbours' hives say\.$/);
  });

  it('refuses a question that is not one: empty, blank, too long, not text, missing, or with other arguments', async () => {
    for (const [args, says] of [
      [{ question: '' }, 'the question is empty'],
      [{ question: '   ' }, 'the question is empty'],
      [{ question: 'how is the hive '.repeat(20) }, 'at most 200 characters'],
      [{ question: 42 }, 'got 42; expected the question as text'],
      [{}, 'got nothing (the argument is missing)'],
      [{ question: 'how is the hive', audio: 'AAAA' }, 'unknown argument "audio"'],
    ] as const) {
      const reply = await request('ask', args);
      expect(reply, JSON.stringify(args)).toMatchObject({ ok: false, code: ErrorCodes.COMMAND_INVALID });
      expect(reply.error).toContain(says);
      expect(reply.error).toContain('ask takes question (string)');
    }
  });

  it("keeps each question and answer as text in the node's feed, sealed to itself: a neighbour holds it, and cannot read it (ask.record: private)", async () => {
    const mesh = node.mesh;
    if (!mesh) throw new Error('no mesh');
    await ask('how heavy is it');
    const found: { seq: number; body: Record<string, unknown> }[] = [];
    await waitFor(async () => {
      found.length = 0;
      for await (const entry of mesh.store.read(node.nodeId, 1)) {
        const read = mesh.readEntry(entry);
        if (read?.type === QUESTION_ENTRY_TYPE) {
          expect(entry.type).not.toBe(QUESTION_ENTRY_TYPE); // sealed: relays see a private entry, not the question
          found.push({ seq: entry.seq, body: read.body as Record<string, unknown> });
        }
      }
      return found.some((f) => f.body.question === 'how heavy is it');
    }, 10_000, () => 'the question in the feed');
    const mine = found.find((f) => f.body.question === 'how heavy is it');
    expect(Object.keys(mine?.body ?? {}).sort()).toEqual(['answer', 'intent', 'question', 'slots', 't', 'time']);
    expect(mine?.body).toMatchObject({ intent: 'weight', answer: expect.stringMatching(/^The weight is \d+\.\d kg/) as string });
    // The neighbour holds the entry (the feed replicates) but cannot read the question in it.
    await waitFor(() => (neighbour.mesh.store.have()[node.nodeId] ?? 0) >= (mine?.seq ?? Infinity), 20_000, () => 'the entry at the neighbour');
    let held = 0;
    for await (const entry of neighbour.mesh.store.read(node.nodeId, mine?.seq ?? 1)) {
      held = entry.seq;
      expect(entry.type).toBe('private');
      expect(entry.body).not.toContain('how heavy');
      expect(neighbour.mesh.readEntry(entry)).toBeUndefined();
      break;
    }
    expect(held).toBe(mine?.seq);
  });

  it('`apiary ask` against the running node prints the answer, or the JSON reply with --json; bad input exits non-zero with the field', async () => {
    const port = String(node.brokerPort);
    const text = await apiary(['ask', 'how heavy is it?', '--port', port, '--data-dir', path.join(dir, 'hive')], dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^The weight is \d+\.\d kg, (steady|rising|falling)/);
    const json = await apiary(['ask', 'what is the sound level', '--port', port, '--data-dir', path.join(dir, 'hive'), '--json'], dir);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ question: 'what is the sound level', intent: 'reading', slots: { channel: 'sound level' }, speech: expect.stringMatching(/^The sound level is minus \d+\.\d decibels/) as string });
    const empty = await apiary(['ask', '', '--port', port, '--data-dir', path.join(dir, 'hive')], dir);
    expect(empty.code).not.toBe(0);
    expect(empty.stderr).toContain(`${ErrorCodes.COMMAND_INVALID}: bad arguments for "ask": field "question": got ""; the question is empty`);
  });
});

/**
 * Talking to a real node (simulated hive, real broker, real MQTT.js client,
 * real ONNX models): the voice microphone and speaker are stand-in arecord
 * and aplay programs (test/support/fake-alsa.ts); pocketsphinx, espeak-ng and
 * sox are Debian's. Asked with the `voice/listen` command, over the Wyoming
 * endpoint with a scripted client, and told an alert as it is raised. No
 * audio may leave the node: every MQTT payload and every file in the data
 * dir is searched for the audio it heard and spoke.
 */
import { readdir, readFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import type { Extension } from '../../../../runtime/core/extension.js';
import { NOT_UNDERSTOOD, type ListenOutcome } from '../../../../runtime/extensions/voice/voice-service.js';
import { fakeAlsa, spokenQuestion, type FakeAlsa } from '../../../support/fake-alsa.js';
import { WyomingTestClient } from '../../../support/wyoming-client.js';
import { apiary } from '../../../support/cli.js';
import { commandRequester, type CommandReply } from '../../../support/mqtt-request.js';
import { waitFor } from '../../../support/mesh-node.js';
import { missingPrograms, soxStat } from './speech-tools.js';

type Reply = CommandReply;
const skip = await missingPrograms('espeak-ng', 'sox', 'pocketsphinx');

/** Every 32-byte window at these offsets of `audio`: a payload holding any of them holds audio. */
function fingerprints(audio: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = Math.floor(audio.length / 4); at + 32 < audio.length && out.length < 8; at += Math.floor(audio.length / 10) & ~1) out.push(audio.subarray(at, at + 32));
  return out;
}

describe.skipIf(skip !== undefined)(`talking to a node ${skip ?? ''}`, () => {
  let dir: string;
  let node: ApiaryNode;
  let alsa: FakeAlsa;
  let client: MqttClient;
  const payloads: Buffer[] = [];
  const heardAudio: Buffer[] = [];
  const oldPath = process.env.PATH;
  let pressButton: (name: string) => Promise<void> = () => Promise.reject(new Error('the probe did not start'));

  let requester: ReturnType<typeof commandRequester> | undefined;
  const request = (name: string, args?: unknown): Promise<Reply> => (requester ??= commandRequester(client, () => node.nodeId, { idPrefix: 'voice' }))(name, args, 60_000);

  const say = async (text: string, name: string) => {
    const file = path.join(dir, `${name}.raw`);
    heardAudio.push(spokenQuestion(text, file));
    await alsa.setMicrophone(file);
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-voice-node-'));
    alsa = await fakeAlsa(dir);
    process.env.PATH = `${alsa.bin}${path.delimiter}${oldPath ?? ''}`;
    const config = parseConfig({
      node: { dataDir: path.join(dir, 'hive'), name: 'Voice hive' },
      broker: { port: 0 },
      homeAssistant: { enabled: false },
      device: { simulation: { speed: 120, preSwarm: '3m', swarm: '4m' } },
      ask: { announce: ['warning', 'critical'], record: 'private' },
      voice: { enabled: true, trigger: { button: 'talk' }, wyoming: { enabled: true, port: 0 } },
    });
    // The device's button events as a board's gpiomon would raise them (devices/linux/gpio-button.ts), through the node's own event bus.
    const probe = {
      name: 'button-probe',
      enabled: () => true,
      load: () => Promise.resolve((): Extension => ({
        name: 'button-probe',
        start: (ctx) => { pressButton = (name) => ctx.events.emit('button', { name, action: 'press', t: ctx.clock.now() }); return Promise.resolve(); },
        stop: () => Promise.resolve(),
      })),
    };
    node = new ApiaryNode(config, pino({ level: 'silent' }), [probe, ...extensionsFor(config)]);
    await node.start();
    client = await connectAsync(`mqtt://127.0.0.1:${node.brokerPort}`, { clientId: 'voice-test' });
    client.on('message', (_topic, payload) => { payloads.push(Buffer.from(payload)); });
    await client.subscribeAsync('#', { qos: 1 });
    await waitFor(async () => Object.keys(((await request('status')).result as { latest: { readings: object } }).latest.readings).length >= 3, 30_000, () => 'readings');
  }, 60_000);

  afterAll(async () => {
    process.env.PATH = oldPath;
    await client?.endAsync();
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('voice/listen: hears "how heavy is it" on the microphone, answers it as `ask` does, and speaks the answer', async () => {
    await say('how heavy is it', 'heavy');
    const before = (await alsa.playedFiles()).length;
    const reply = await request('voice/listen');
    expect(reply).toMatchObject({ ok: true });
    const outcome = reply.result as ListenOutcome;
    expect(outcome).toMatchObject({ heard: 'how heavy is it', intent: 'weight' });
    expect(outcome.answer).toMatch(/^The weight is \d+\.\d kg/);
    expect(outcome.endOfSpeechToAnswerMs).toBeGreaterThan(0);
    // The same question typed gets the same kind of answer (the weight may have moved on in between).
    const typed = (await request('ask', { question: 'how heavy is it' })).result as { intent: string; answer: string };
    expect(typed.intent).toBe('weight');
    const played = (await alsa.playedFiles()).slice(before);
    expect(played).toHaveLength(1);
    const spoken = soxStat(played[0]!);
    expect(spoken.seconds).toBeGreaterThan(1);
    expect(spoken.rms).toBeGreaterThan(0.01);
  });

  it('push-to-talk: a press of the device button named in voice.trigger.button listens, answers and speaks; another button does nothing', async () => {
    await say('what is the temperature', 'button');
    const before = (await alsa.playedFiles()).length;
    await pressButton('other');
    await pressButton('talk');
    await waitFor(async () => ((await request('voice/status')).result as { last?: { heard: string } }).last?.heard === 'what is the temperature', 30_000, () => 'a listen from the button');
    const last = ((await request('voice/status')).result as { last: ListenOutcome }).last;
    expect(last.intent).toBe('reading');
    expect(last.answer).toMatch(/^The temperature is -?\d+\.\d °C/);
    await waitFor(async () => (await alsa.playedFiles()).length === before + 1, 10_000, () => 'the spoken answer');
    const counters = ((await request('status')).result as { counters: Record<string, number> }).counters;
    expect(counters['voice.trigger.presses']).toBe(1);
  });

  it('voice/listen: out-of-grammar speech is not forced into a question; it says it did not understand', async () => {
    await say('play some music in the kitchen', 'music');
    const outcome = (await request('voice/listen')).result as ListenOutcome;
    expect(outcome.intent).toBeNull();
    expect(outcome.answer).toBe(NOT_UNDERSTOOD);
    expect(((await request('status')).result as { counters: Record<string, number> }).counters['voice.not_understood']).toBeGreaterThanOrEqual(1);
  });

  it('Wyoming: describe, then speech at 22,050 Hz in chunks -> the transcript; a transcript -> the answer; a text -> speech', async () => {
    const status = (await request('voice/status')).result as { wyoming: { port: number } };
    const c = await WyomingTestClient.connect(status.wyoming.port);
    try {
      c.send('describe');
      const info = await c.next('info');
      expect((info.data.asr as unknown[]).length).toBe(1);
      const { execFileSync } = await import('node:child_process');
      const wav = execFileSync('espeak-ng', ['--stdout', '-v', 'en-us', '-s', '150', 'is it going to swarm']);
      const pcm = execFileSync('sox', ['-t', 'wav', '-', '-t', 'raw', '-'], { input: wav });
      heardAudio.push(pcm);
      const fmt = { rate: 22_050, width: 2, channels: 1 };
      c.send('transcribe', { language: 'en' });
      c.send('audio-start', fmt);
      for (let i = 0; i < pcm.length; i += 4096) c.send('audio-chunk', fmt, pcm.subarray(i, i + 4096));
      c.send('audio-stop');
      expect((await c.next('transcript', 60_000)).data).toEqual({ text: 'is it going to swarm' });
      c.send('transcript', { text: 'is it going to swarm' });
      const handled = await c.next('handled', 30_000);
      expect(String(handled.data.text)).toMatch(/swarm/i);
      c.send('synthesize', { text: String(handled.data.text) });
      const start = await c.next('audio-start', 30_000);
      expect(start.data).toMatchObject({ width: 2, channels: 1 });
      await c.next('audio-stop', 30_000);
      const bytes = c.events.filter((e) => e.type === 'audio-chunk').reduce((n, e) => n + (e.payload?.length ?? 0), 0);
      expect(bytes).toBeGreaterThan(Number(start.data.rate) * 2); // more than a second of speech
    } finally {
      c.end();
    }
  });

  it('`apiary ask --audio q.wav --out a.wav` recognises here and asks the node; `apiary ask --listen` asks through its microphone', async () => {
    const { execFileSync } = await import('node:child_process');
    const question = path.join(dir, 'question.wav');
    execFileSync('espeak-ng', ['-v', 'en-gb', '-w', question, 'what is the humidity']);
    const answerFile = path.join(dir, 'answer.wav');
    const cli = ['--port', String(node.brokerPort), '--data-dir', path.join(dir, 'hive')];
    const fromFile = await apiary(['ask', '--audio', question, '--out', answerFile, ...cli], dir);
    expect(fromFile.stderr).toContain(`wrote the spoken answer to ${answerFile}`);
    expect(fromFile.code).toBe(0);
    expect(fromFile.stdout).toMatch(/^heard: what is the humidity\nThe humidity is \d+\.\d%/);
    expect(soxStat(answerFile).rms).toBeGreaterThan(0.01);
    await say('is it going to swarm', 'cli-listen');
    const listened = await apiary(['ask', '--listen', '--json', ...cli], dir);
    expect(listened.code).toBe(0);
    expect(JSON.parse(listened.stdout)).toMatchObject({ heard: 'is it going to swarm', intent: 'swarm-risk' });
    const both = await apiary(['ask', 'how is the hive', '--listen', ...cli], dir);
    expect(both.code).not.toBe(0);
    expect(both.stderr).toContain('ask one way at a time');
  });

  it('speaks an alert as it is raised, with its reason', async () => {
    const before = (await alsa.playedFiles()).length;
    expect(await request('sim/swarm')).toMatchObject({ ok: true });
    await waitFor(async () => (await alsa.playedFiles()).length > before, 60_000, () => 'an announcement on the speaker');
    const counters = ((await request('status')).result as { counters: Record<string, number> }).counters;
    expect(counters['ask.announced']).toBeGreaterThanOrEqual(1);
    await waitFor(async () => (((await request('status')).result as { counters: Record<string, number> }).counters['voice.spoken'] ?? 0) >= 1, 30_000, () => 'voice.spoken');
  });

  it('no audio left the node: not in any MQTT message, nor in any file of its data dir', async () => {
    const spoken = await Promise.all((await alsa.playedFiles()).map((f) => readFile(f)));
    const prints = [...heardAudio, ...spoken.map((wav) => wav.subarray(44))].flatMap(fingerprints);
    expect(prints.length).toBeGreaterThan(10);
    expect(payloads.length).toBeGreaterThan(10);
    for (const payload of payloads) for (const p of prints) expect(payload.includes(p)).toBe(false);
    const files: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true })) {
        const f = path.join(d, e.name);
        if (e.isDirectory()) await walk(f);
        else if (e.isFile()) files.push(f);
      }
    };
    await walk(path.join(dir, 'hive'));
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      if ((await stat(f)).size === 0) continue;
      const content = await readFile(f);
      for (const p of prints) expect(content.includes(p), f).toBe(false);
    }
  });
});

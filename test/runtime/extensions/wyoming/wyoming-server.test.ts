/**
 * The endpoint's protocol against a scripted client, with handlers that
 * record what reaches them (the node's real ask and speech fronts are wired
 * in by the voice extension and tested end to end there).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Counters } from '../../../../runtime/counters.js';
import { createLogger } from '../../../../runtime/log.js';
import { WyomingServer, type PcmAudio, type WyomingHandlers } from '../../../../runtime/extensions/wyoming/wyoming-server.js';
import { WyomingTestClient } from '../../../support/wyoming-client.js';

const servers: WyomingServer[] = [];
const clients: WyomingTestClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.end();
  await Promise.all(servers.splice(0).map((s) => s.stop()));
});

function recordingHandlers(): WyomingHandlers & { heard: PcmAudio[]; asked: string[] } {
  const heard: PcmAudio[] = [];
  const asked: string[] = [];
  return {
    heard,
    asked,
    transcribe: (audio) => {
      heard.push(audio);
      // The "recogniser": an utterance of all-zero samples is silence, rejected.
      return Promise.resolve(audio.pcm.some((b) => b !== 0) ? 'how is the hive' : '');
    },
    ask: (text) => {
      asked.push(text);
      return Promise.resolve(text.includes('hive')
        ? { understood: true, intent: 'hive-status', slots: {}, text: 'The hive is 34.5 °C.', speech: 'The hive is 34.5 degrees Celsius.' }
        : { understood: false, text: "I don't know that.", speech: "I don't know that." });
    },
    synthesize: (text) => Promise.resolve({ pcm: Buffer.alloc(text.length * 1000, 1), rate: 22_050, width: 2, channels: 1 }),
  };
}

async function start(handlers: WyomingHandlers, overrides: Partial<ConstructorParameters<typeof WyomingServer>[0]> = {}) {
  const counters = new Counters();
  const server = new WyomingServer({
    host: '127.0.0.1', port: 0, maxConnections: 4, maxUtteranceSeconds: 2, idleTimeoutMs: 30_000, languages: ['en'], name: 'hive', version: '0.0.0-test',
    handlers, counters, logger: createLogger('silent'), ...overrides,
  });
  servers.push(server);
  await server.start();
  const connect = async () => {
    const c = await WyomingTestClient.connect(server.port);
    clients.push(c);
    return c;
  };
  return { server, counters, connect };
}

describe('Wyoming endpoint', () => {
  it('describes itself: speech to text, intent handling and recognition, and speech out when there is one', async () => {
    const { connect } = await start(recordingHandlers());
    const c = await connect();
    c.send('describe');
    const info = await c.next('info');
    const names = (key: string) => (info.data[key] as Array<{ name: string; installed: boolean; models?: Array<{ languages: string[] }> }>);
    expect(names('asr')[0]).toMatchObject({ name: 'apiary-hive', installed: true });
    expect(names('asr')[0]!.models![0]!.languages).toEqual(['en']);
    expect(names('handle')).toHaveLength(1);
    expect(names('intent')).toHaveLength(1);
    expect(names('tts')).toHaveLength(1);
    expect(info.data.wake).toEqual([]);
  });

  it('transcribes an utterance sent in chunks, with exactly the PCM the client sent, and drops it after', async () => {
    const h = recordingHandlers();
    const { connect, counters } = await start(h);
    const c = await connect();
    const fmt = { rate: 16_000, width: 2, channels: 1 };
    const pcm = Buffer.from(Array.from({ length: 6400 }, (_, i) => (i * 7) % 256));
    c.send('transcribe', { language: 'en' });
    c.send('audio-start', fmt);
    for (let i = 0; i < pcm.length; i += 2000) c.send('audio-chunk', fmt, pcm.subarray(i, i + 2000));
    c.send('audio-stop');
    expect((await c.next('transcript')).data).toEqual({ text: 'how is the hive' });
    expect(h.heard).toHaveLength(1);
    expect(h.heard[0]!.pcm.equals(pcm)).toBe(true);
    expect(h.heard[0]).toMatchObject({ rate: 16_000, width: 2, channels: 1 });
    // Silence (out of grammar) is an empty transcript, counted as rejected.
    c.send('audio-start', fmt);
    c.send('audio-chunk', fmt, Buffer.alloc(3200));
    c.send('audio-stop');
    expect((await c.next('transcript')).data).toEqual({ text: '' });
    expect(counters.get('voice.wyoming.transcribed')).toBe(1);
    expect(counters.get('voice.wyoming.rejected_speech')).toBe(1);
  });

  it('answers a transcript as a conversation agent (handled / not-handled) and a recognize as an intent', async () => {
    const h = recordingHandlers();
    const { connect } = await start(h);
    const c = await connect();
    c.send('transcript', { text: 'how is the hive' });
    expect((await c.next('handled')).data).toEqual({ text: 'The hive is 34.5 °C.' });
    c.send('transcript', { text: 'what is the capital of France' });
    expect((await c.next('not-handled')).data).toEqual({ text: "I don't know that." });
    c.send('recognize', { text: 'how is the hive' });
    expect((await c.next('intent')).data).toEqual({ name: 'hive-status', entities: [], text: 'The hive is 34.5 °C.' });
    c.send('recognize', { text: 'play music' });
    expect((await c.next('not-recognized')).data).toEqual({ text: "I don't know that." });
    expect(h.asked).toEqual(['how is the hive', 'what is the capital of France', 'how is the hive', 'play music']);
  });

  it('speaks a text as audio-start, 1024-sample chunks and audio-stop', async () => {
    const { connect } = await start(recordingHandlers());
    const c = await connect();
    c.send('synthesize', { text: 'hello' }); // 5000 bytes of PCM: chunks of 2048, 2048, 904
    await c.next('audio-stop');
    const types = c.events.map((e) => e.type);
    expect(types).toEqual(['audio-start', 'audio-chunk', 'audio-chunk', 'audio-chunk', 'audio-stop']);
    expect(c.events[0]!.data).toEqual({ rate: 22_050, width: 2, channels: 1 });
    expect(c.events.slice(1, 4).map((e) => e.payload?.length)).toEqual([2048, 2048, 904]);
  });

  it('says so when there is no speech out, and when a question is not text', async () => {
    const all = recordingHandlers();
    const { connect } = await start({ transcribe: (a, s) => all.transcribe(a, s), ask: (t) => all.ask(t) });
    const c = await connect();
    c.send('synthesize', { text: 'hello' });
    expect((await c.next('error')).data).toMatchObject({ code: 'apiary-no-tts' });
    c.send('transcript', { text: 42 });
    expect((await c.next('error')).data).toMatchObject({ code: 'apiary-bad-event' });
    c.send('ping', { text: 'still there?' });
    expect((await c.next('pong')).data).toEqual({ text: 'still there?' });
  });

  it('drops an utterance longer than maxUtteranceSeconds without holding it, and keeps the connection', async () => {
    const h = recordingHandlers();
    const { connect, counters } = await start(h, { maxUtteranceSeconds: 1 });
    const c = await connect();
    const fmt = { rate: 16_000, width: 2, channels: 1 };
    c.send('audio-start', fmt);
    for (let i = 0; i < 20; i += 1) c.send('audio-chunk', fmt, Buffer.alloc(3200, 1)); // 2 s
    c.send('audio-stop');
    expect((await c.next('error')).data).toMatchObject({ code: 'apiary-utterance-too-long' });
    expect(h.heard).toHaveLength(0);
    expect(counters.get('voice.wyoming.utterance_too_long')).toBe(1);
    c.send('describe');
    await c.next('info');
  });

  it('refuses audio that is not 16-bit PCM, and a chunk whose format changed mid-utterance', async () => {
    const h = recordingHandlers();
    const { connect } = await start(h);
    const c = await connect();
    c.send('audio-start', { rate: 16_000, width: 4, channels: 1 });
    expect((await c.next('error')).data).toMatchObject({ code: 'apiary-bad-audio' });
    c.send('audio-start', { rate: 16_000, width: 2, channels: 1 });
    c.send('audio-chunk', { rate: 48_000, width: 2, channels: 1 }, Buffer.alloc(100, 1));
    expect((await c.next('error')).data).toMatchObject({ code: 'apiary-bad-audio' });
    c.send('audio-stop'); // nothing to transcribe any more
    c.send('describe');
    await c.next('info');
    expect(h.heard).toHaveLength(0);
  });

  it('closes a connection that sends a malformed event, counts it, and serves the next client', async () => {
    const { connect, counters } = await start(recordingHandlers());
    const bad = await connect();
    bad.socket.write('{"type":"audio-chunk","payload_length":99999999}\n');
    expect(await bad.closedByServer()).toBe(true);
    expect(counters.get('voice.wyoming.malformed')).toBe(1);
    const good = await connect();
    good.send('describe');
    await good.next('info');
  });

  it('holds at most maxConnections connections, counting the ones it refuses', async () => {
    const { connect, counters } = await start(recordingHandlers(), { maxConnections: 2 });
    const a = await connect();
    const b = await connect();
    a.send('describe');
    await a.next('info');
    b.send('describe');
    await b.next('info');
    const third = await connect();
    expect(await third.closedByServer()).toBe(true);
    expect(counters.get('voice.wyoming.refused_connections')).toBe(1);
  });

  it('ignores (and counts) events for programs it does not have, as Wyoming servers do', async () => {
    const { connect, counters } = await start(recordingHandlers());
    const c = await connect();
    c.send('detect', { names: ['ok_hive'] });
    c.send('describe');
    await c.next('info');
    expect(counters.get('voice.wyoming.ignored')).toBe(1);
  });
});

/**
 * Talking to the hive (issue 14's benchmark). The built node (dist/apiary.mjs
 * start, simulated beehive at speed 60, a new data dir) starts twice per
 * round, in turns: with `voice.enabled: false` (the reference) and with it on.
 * Both sit idle for IDLE_MS (CPU of the node and its reaped children from
 * /proc: utime+stime+cutime+cstime). With voice on, each question of
 * QUESTIONS is then asked through `voice/listen` over MQTT: the voice
 * microphone and speaker are stand-in arecord/aplay programs
 * (test/support/fake-alsa.ts: espeak-ng speech, resampled by sox, played as a
 * microphone would), pocketsphinx and espeak-ng are Debian's. Per utterance:
 * end of speech to the first sample of the spoken answer (the node's own
 * timing, in the reply), CPU of the node and its children over the exchange,
 * and peak RSS: the node's VmRSS plus the largest VmHWM seen of its children
 * (sampled every 10 ms while it runs). `npm run bench -- --only voice`.
 */
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { findOnPath } from '../../runtime/extensions/voice/pocketsphinx-recogniser.js';
import { fakeAlsa, spokenQuestion } from '../support/fake-alsa.js';
import { memory } from './proc.js';
import { Child, freePort, sleep, withTimeout } from './processes.js';
import { CLK_TCK } from './proc.js';

const TIMEOUT_MS = 120_000;
const IDLE_MS = 20_000;
/** Questions of the node's grammar, spoken by espeak-ng's en-us voice. */
const QUESTIONS = ['how is the hive', 'is it going to swarm', 'how heavy is it', 'what is the temperature', 'what is the humidity'];
/** The intent each should get (the words may differ: "how is the colony" is the same question). */
const INTENTS = ['hive-status', 'swarm-risk', 'weight', 'reading', 'reading'];

export interface VoicePlan {
  readonly rounds: number;
}
export const VOICE_FULL: VoicePlan = { rounds: 3 };
export const VOICE_QUICK: VoicePlan = { rounds: 1 };

export interface Utterance {
  readonly question: string;
  readonly heard: string | null;
  /** Whether the intent was the one the question asks for. */
  readonly right: boolean;
  readonly endOfSpeechToAnswerMs: number | null;
  readonly cpuMs: number;
  readonly nodeRssKiB: number;
  readonly childPeakKiB: number;
}

export interface VoiceRun {
  readonly voice: boolean;
  /** CPU ms per second of wall time while idle (node and reaped children). */
  readonly idleCpuMsPerS: number;
  readonly idleRssKiB: number;
  readonly utterances: Utterance[];
  readonly exit: { readonly code: number | null; readonly signal: NodeJS.Signals | null; readonly forced: boolean };
}

export interface VoiceResults {
  readonly off: VoiceRun[];
  readonly on: VoiceRun[];
}

/** utime + stime + cutime + cstime of `pid` (fields 14-17 of /proc/<pid>/stat), in ms. */
async function cpuWithChildrenMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 1000) / CLK_TCK;
}

/** The largest VmHWM among `pid`'s children, sampled every 10 ms until `done` settles. */
async function childPeakWhile(pid: number, done: Promise<unknown>): Promise<number> {
  let peak = 0;
  let finished = false;
  void done.finally(() => { finished = true; });
  while (!finished) {
    const tasks = await readdir(`/proc/${pid}/task`).catch(() => [] as string[]);
    const kids = (await Promise.all(tasks.map((t) => readFile(`/proc/${pid}/task/${t}/children`, 'utf8').catch(() => '')))).join(' ').split(/\s+/).filter(Boolean).map(Number);
    for (const kid of kids) {
      const m = await memory(kid).catch(() => undefined);
      if (m && Number.isFinite(m.hwmKiB)) peak = Math.max(peak, m.hwmKiB);
    }
    await sleep(10);
  }
  return peak;
}

function request(client: MqttClient, nodeId: string, command: string, id: string): Promise<{ ok: boolean; result?: unknown; error?: string }> {
  const replyTopic = `apiary/${nodeId}/reply/${id}`;
  return withTimeout(new Promise((resolve) => {
    const onMessage = (topic: string, payload: Buffer) => {
      if (topic !== replyTopic) return;
      client.off('message', onMessage);
      resolve(JSON.parse(payload.toString('utf8')) as { ok: boolean; result?: unknown; error?: string });
    };
    client.on('message', onMessage);
    client.publish(`apiary/${nodeId}/cmd/${command}`, JSON.stringify({ requestId: id }), { qos: 1 });
  }), TIMEOUT_MS, `the reply to ${command}`);
}

async function runOnce(tmp: string, name: string, voice: boolean, mics: readonly string[], alsa: Awaited<ReturnType<typeof fakeAlsa>>): Promise<VoiceRun> {
  const brokerPort = await freePort();
  const configFile = path.join(tmp, `${name}.yaml`);
  await writeFile(configFile, [
    `node: { name: voice bench, dataDir: ${JSON.stringify(path.join(tmp, `${name}-data`))} }`,
    'homeAssistant: { enabled: false }',
    'device: { kind: simulated-beehive, simulation: { speed: 60 } }',
    `voice: { enabled: ${String(voice)} }`,
    '',
  ].join('\n'));
  const child = Child.apiary(['--config', configFile, '--port', String(brokerPort), '--speed', '60']);
  let client: MqttClient | undefined;
  try {
    const started = await Promise.race([withTimeout(child.when(/"nodeId":"([A-Za-z0-9]+)"[^\n]*"msg":"Apiary node started"/), TIMEOUT_MS, 'the node to start'), child.died]);
    const nodeId = started.match[1] ?? '';
    await sleep(3_000); // past start-up work
    const cpu0 = await cpuWithChildrenMs(child.pid);
    const t0 = performance.now();
    await sleep(IDLE_MS);
    const idleCpuMsPerS = ((await cpuWithChildrenMs(child.pid)) - cpu0) / ((performance.now() - t0) / 1000);
    const idleRssKiB = (await memory(child.pid)).rssKiB;
    const utterances: Utterance[] = [];
    if (voice) {
      client = connect(`mqtt://127.0.0.1:${brokerPort}`, { clientId: `bench-voice-${brokerPort}` });
      await withTimeout(new Promise<void>((resolve) => client?.once('connect', () => resolve())), 10_000, 'the bench client to connect');
      await client.subscribeAsync(`apiary/${nodeId}/reply/#`, { qos: 1 });
      for (const [i, mic] of mics.entries()) {
        await alsa.setMicrophone(mic);
        const before = await cpuWithChildrenMs(child.pid);
        const reply = request(client, nodeId, 'voice/listen', `bench-${i}`);
        const childPeakKiB = await childPeakWhile(child.pid, reply);
        const answer = await reply;
        if (!answer.ok) throw new Error(`voice/listen failed: ${answer.error ?? '?'}`);
        const outcome = answer.result as { heard: string | null; intent: string | null; endOfSpeechToAnswerMs: number | null };
        // The children that ran are reaped by now: their CPU is in cutime/cstime.
        utterances.push({ question: QUESTIONS[i] ?? '', heard: outcome.heard, right: outcome.intent === INTENTS[i], endOfSpeechToAnswerMs: outcome.endOfSpeechToAnswerMs, cpuMs: (await cpuWithChildrenMs(child.pid)) - before, nodeRssKiB: (await memory(child.pid)).rssKiB, childPeakKiB });
      }
    }
    await client?.endAsync(true);
    client = undefined;
    const exit = await child.stop();
    return { voice, idleCpuMsPerS, idleRssKiB, utterances, exit };
  } finally {
    await client?.endAsync(true);
    await child.stop();
  }
}

/** `plan.rounds` rounds of a start with voice off and one with voice on, alternating which goes first; undefined (and says why) without the Debian programs. */
export async function measureVoice(tmp: string, plan: VoicePlan, progress: (line: string) => void): Promise<VoiceResults | undefined> {
  const missing = [];
  for (const [names, pkg] of [[['pocketsphinx', 'pocketsphinx_continuous'], 'pocketsphinx pocketsphinx-en-us'], [['espeak-ng'], 'espeak-ng'], [['sox'], 'sox']] as const) {
    if (!(await findOnPath(names))) missing.push(pkg);
  }
  if (missing.length > 0) {
    progress(`voice: skipped, not installed: ${missing.join(', ')} (sudo apt install ${missing.join(' ')})`);
    return undefined;
  }
  const alsa = await fakeAlsa(path.join(tmp, 'voice-alsa'));
  const mics = QUESTIONS.map((q, i) => {
    const file = path.join(tmp, 'voice-alsa', `question-${i}.raw`);
    spokenQuestion(q, file);
    return file;
  });
  const oldPath = process.env.PATH;
  process.env.PATH = `${alsa.bin}${path.delimiter}${oldPath ?? ''}`;
  const results: VoiceResults = { off: [], on: [] };
  try {
    for (let i = 1; i <= plan.rounds; i += 1) {
      for (const voice of i % 2 === 1 ? [false, true] : [true, false]) {
        const r = await runOnce(tmp, `voice-${voice ? 'on' : 'off'}-${i}`, voice, mics, alsa);
        (voice ? results.on : results.off).push(r);
        const heard = r.utterances.filter((u) => u.right).length;
        progress(`voice round ${i}/${plan.rounds}, voice ${voice ? 'on' : 'off'}: idle CPU ${r.idleCpuMsPerS.toFixed(1)} ms/s${voice ? `, ${heard}/${r.utterances.length} heard right, end of speech to answer ${r.utterances.map((u) => u.endOfSpeechToAnswerMs?.toFixed(0) ?? '—').join(', ')} ms` : ''}`);
      }
    }
  } finally {
    process.env.PATH = oldPath;
  }
  return results;
}

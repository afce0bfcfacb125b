/** The rows of `npm run bench -- --only voice`: voice off is the reference of the idle CPU; per-utterance figures have none. */
import { summarize } from './stats.js';
import type { Row } from './table.js';
import type { VoiceResults } from './voice.js';

const MB = 1024; // KiB per MiB, for /proc's kB figures

export function voiceRows(v: VoiceResults): Row[] {
  const idleSection = 'the node idle for 20 s with voice on vs off, in turns, speed 60 (CPU of the node and its reaped children)';
  const off = summarize(v.off.map((r) => r.idleCpuMsPerS));
  const utterances = v.on.flatMap((r) => r.utterances);
  const talkSection = 'one spoken question through voice/listen (stand-in microphone and speaker; Debian pocketsphinx and espeak-ng)';
  return [
    { section: idleSection, metric: 'idle CPU, voice off', unit: 'ms/s', summary: off },
    { section: idleSection, metric: 'idle CPU, voice on', unit: 'ms/s', summary: summarize(v.on.map((r) => r.idleCpuMsPerS)), ...(off ? { reference: { label: 'ms/s voice off', value: off.median } } : {}) },
    { section: idleSection, metric: 'idle VmRSS, voice on', unit: 'MB', summary: summarize(v.on.map((r) => r.idleRssKiB / MB)), reference: { label: 'MB voice off', value: summarize(v.off.map((r) => r.idleRssKiB / MB))?.median ?? Number.NaN } },
    { section: talkSection, metric: 'questions given the right intent', unit: '%', summary: summarize([(100 * utterances.filter((u) => u.right).length) / Math.max(1, utterances.length)]) },
    { section: talkSection, metric: 'end of speech -> first sample of the spoken answer', unit: 'ms', summary: summarize(utterances.map((u) => u.endOfSpeechToAnswerMs ?? Number.NaN)) },
    { section: talkSection, metric: 'CPU per utterance (node + pocketsphinx + espeak-ng + aplay)', unit: 'ms', summary: summarize(utterances.map((u) => u.cpuMs)) },
    { section: talkSection, metric: 'peak RSS per utterance: node VmRSS + largest child VmHWM', unit: 'MB', summary: summarize(utterances.map((u) => (u.nodeRssKiB + u.childPeakKiB) / MB)) },
    { section: talkSection, metric: 'largest child (pocketsphinx) VmHWM', unit: 'MB', summary: summarize(utterances.map((u) => u.childPeakKiB / MB)) },
  ];
}

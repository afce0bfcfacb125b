/**
 * Shared by the voice tests: which Debian speech programs are here (a test
 * that needs a missing one is skipped, saying which package to install:
 * `.ci/run` installs them all), espeak-ng speech as PCM, sox's measurement of
 * a WAV file, and a vocabulary shaped like the node's real one.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { IntentVocabulary } from '../../../../runtime/extensions/ask/vocabulary.js';
import { findOnPath } from '../../../../runtime/extensions/voice/pocketsphinx-recogniser.js';
import type { Pcm } from '../../../../runtime/extensions/voice/types.js';
import { parseWav } from '../../../../runtime/extensions/voice/wav.js';

const PACKAGES: Record<string, string> = {
  'espeak-ng': 'espeak-ng',
  sox: 'sox',
  arecord: 'alsa-utils',
  aplay: 'alsa-utils',
  pocketsphinx: 'pocketsphinx pocketsphinx-en-us',
};

/** Why the programs are unusable here (`skipped: ... is not installed (Debian package ...)`), or undefined when all are. */
export async function missingPrograms(...programs: (keyof typeof PACKAGES)[]): Promise<string | undefined> {
  const missing: string[] = [];
  for (const p of programs) {
    const names = p === 'pocketsphinx' ? ['pocketsphinx', 'pocketsphinx_continuous'] : [p];
    if (!(await findOnPath(names))) missing.push(`${p} (Debian ${PACKAGES[p] ?? p})`);
  }
  if (programs.includes('pocketsphinx') && !existsSync('/usr/share/pocketsphinx/model/en-us/en-us/mdef')) missing.push('the en-us model (Debian pocketsphinx-en-us)');
  return missing.length > 0 ? `skipped: not installed: ${missing.join(', ')}; .ci/run installs them` : undefined;
}

/** espeak-ng speaking `text` (22,050 Hz mono). */
export function espeak(text: string, voice = 'en-us', speed = 160): Pcm {
  const wav = execFileSync('espeak-ng', ['--stdout', '-v', voice, '-s', String(speed), text], { maxBuffer: 16 * 1024 * 1024 });
  return parseWav(wav, { streamed: true, source: 'espeak-ng' });
}

/** The English voices this espeak-ng has, by language code (`espeak-ng --voices=en`). */
export function espeakVoices(): Set<string> {
  const out = execFileSync('espeak-ng', ['--voices=en'], { encoding: 'utf8' });
  return new Set(out.split('\n').slice(1).map((l) => l.trim().split(/\s+/)[1] ?? '').filter(Boolean));
}

/** sox's `stat` effect on a file: length in seconds and RMS amplitude (full scale 1). */
export function soxStat(file: string): { seconds: number; rms: number; maxAmplitude: number } {
  // `sox f -n stat` writes its table to stderr.
  const run = spawnSync('sox', [file, '-n', 'stat'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`sox stat ${file} failed: ${run.stderr}`);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(-?[0-9.e+-]+)`, 'm').exec(run.stderr);
    if (!m?.[1]) throw new Error(`sox stat printed no ${name}: ${run.stderr}`);
    return Number(m[1]);
  };
  return { seconds: field('Length \\(seconds\\)'), rms: field('RMS\\s+amplitude'), maxAmplitude: field('Maximum amplitude') };
}

/** Shaped like the node's vocabulary: its intents, and slots holding channel, rule and neighbour names. */
export const VOCABULARY: IntentVocabulary = {
  intents: [
    { name: 'hive-status', patterns: ['how is the hive [doing]', 'how are the bees [doing]'], commands: ['status'] },
    { name: 'swarm-risk', patterns: ['is it going to swarm', 'will (it | they) swarm'], commands: ['status'] },
    { name: 'weight', patterns: ['how heavy is it', 'how heavy is the hive'], commands: ['status'] },
    { name: 'reading', patterns: ['what is the <channel>', 'how is the <channel>'], commands: ['status'] },
    { name: 'why', patterns: ['why did you raise (that | the) alert', 'why the <rule> alert'], commands: ['audit/decisions'] },
    { name: 'neighbours', patterns: ['what do the neighbours say', 'what does <neighbour> say'], commands: ['status'] },
  ],
  slots: {
    channel: ['weight', 'brood temperature', 'humidity', 'outside temperature'],
    rule: ['swarm', 'cold brood'],
    neighbour: ['the orchard hive', 'the meadow hive'],
  },
};

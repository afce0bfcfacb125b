/**
 * The Debian programs the voice section needs, as configured, and which are
 * missing: shown in `voice/status` and `apiary status`, and by `apiary doctor`,
 * each with its `apt install` line. A missing one disables only what needs it.
 */
import type { VoiceConfig } from './config.js';
import { findOnPath, POCKETSPHINX_PACKAGES, POCKETSPHINX_PROGRAMS } from './pocketsphinx-recogniser.js';

export interface VoiceRequirement {
  /** What it is for, in a few words. */
  readonly purpose: string;
  /** Program names, any one of which will do. */
  readonly programs: readonly string[];
  /** The Debian packages that provide it. */
  readonly packages: string;
}

export function voiceRequirements(voice: VoiceConfig): VoiceRequirement[] {
  return [
    { purpose: 'speech recognition', programs: POCKETSPHINX_PROGRAMS, packages: POCKETSPHINX_PACKAGES },
    ...(voice.tts.engine === 'espeak-ng' ? [{ purpose: 'speech out', programs: ['espeak-ng'], packages: 'espeak-ng' }] : []),
    { purpose: 'the voice microphone', programs: ['arecord'], packages: 'alsa-utils' },
    { purpose: 'the speaker', programs: ['aplay'], packages: 'alsa-utils' },
  ];
}

/** The requirements none of whose programs is on PATH. */
export async function missingVoicePrograms(voice: VoiceConfig, pathVar = process.env.PATH ?? ''): Promise<VoiceRequirement[]> {
  const found = await Promise.all(voiceRequirements(voice).map(async (r) => ({ r, at: await findOnPath(r.programs, pathVar) })));
  return found.filter((f) => f.at === undefined).map((f) => f.r);
}

/** One `sudo apt install ...` line for everything missing, or undefined. */
export function aptLine(missing: readonly VoiceRequirement[]): string | undefined {
  const packages = [...new Set(missing.flatMap((m) => m.packages.split(' ')))];
  return packages.length === 0 ? undefined : `sudo apt install ${packages.join(' ')}`;
}

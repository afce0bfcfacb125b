/**
 * `apiary doctor`'s voice section: are the Debian programs the voice path
 * runs installed (pocketsphinx and its en-us model, espeak-ng, arecord and
 * aplay), and is there a microphone and a speaker? Each missing piece is a
 * warning with the `apt install` line or the step that fixes it, never a
 * failure: a node runs on without voice. Nothing is recorded or played;
 * `arecord -l` / `aplay -l` only list the sound cards.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_MODEL_DIR, findOnPath, flavourOf, POCKETSPHINX_PROGRAMS } from '../extensions/voice/pocketsphinx-recogniser.js';
import { run, type Finding } from './doctor-system.js';

export interface VoiceFinding extends Finding {
  readonly name: string;
  /** Debian packages that fix it, when installing is the fix. */
  readonly packages?: readonly string[];
}

export interface VoiceReport {
  readonly findings: readonly VoiceFinding[];
  /** One line installing everything missing, or null. */
  readonly aptInstall: string | null;
}

export interface VoiceDoctorOptions {
  /** Where programs are looked for (tests give a directory of stand-ins). */
  readonly pathVar?: string;
  readonly modelDir?: string;
}

const MIC_HINT = 'plug in a USB microphone for voice (not the in-hive microphone: the colony\'s hum drowns speech), then check `arecord -l` lists it';
const SPEAKER_HINT = 'plug in a USB speaker or use the board\'s audio out, then check `aplay -l` lists it';

async function program(name: string, names: readonly string[], packages: string[], what: string, pathVar: string): Promise<VoiceFinding> {
  const found = await findOnPath(names, pathVar);
  return found
    ? { name, status: 'ok', detail: `${found} (${what})` }
    : { name, status: 'warn', detail: `not installed: ${what} is unavailable`, hint: `\`sudo apt install ${packages.join(' ')}\``, packages };
}

/** A sound card listing (`arecord -l`, `aplay -l`): its `card N: ... device M: ...` lines. */
export function soundDevices(listing: string): string[] {
  return listing.split('\n').map((l) => l.trim()).filter((l) => /^card \d+:.*device \d+:/.test(l));
}

async function devices(name: 'microphone' | 'speaker', programPath: string | undefined): Promise<VoiceFinding> {
  const tool = name === 'microphone' ? 'arecord' : 'aplay';
  const hint = name === 'microphone' ? MIC_HINT : SPEAKER_HINT;
  if (!programPath) return { name, status: 'unknown', detail: `cannot list ${name}s without ${tool}`, hint: '`sudo apt install alsa-utils`', packages: ['alsa-utils'] };
  const listed = await run(programPath, ['-l']);
  if (listed.kind !== 'done') return { name, status: 'unknown', detail: `${tool} -l failed: ${listed.kind === 'failed' ? listed.reason : 'missing'}` };
  const found = soundDevices(`${listed.stdout}\n${listed.stderr}`);
  if (found.length === 0) return { name, status: 'warn', detail: `no sound card with a ${name === 'microphone' ? 'capture' : 'playback'} device`, hint };
  return { name, status: 'ok', detail: found.join('; ') };
}

export async function voiceReport(options: VoiceDoctorOptions = {}): Promise<VoiceReport> {
  const pathVar = options.pathVar ?? process.env.PATH ?? '';
  const modelDir = options.modelDir ?? DEFAULT_MODEL_DIR;
  const sphinx = await findOnPath(POCKETSPHINX_PROGRAMS, pathVar);
  const findings: VoiceFinding[] = [
    sphinx
      ? { name: 'pocketsphinx', status: 'ok', detail: `${sphinx} (${flavourOf(sphinx) === 'v5' ? 'pocketsphinx 5' : 'pocketsphinx 0.8/5prealpha'}: speech to intent)` }
      : { name: 'pocketsphinx', status: 'warn', detail: 'not installed: questions cannot be understood by voice', hint: '`sudo apt install pocketsphinx pocketsphinx-en-us`', packages: ['pocketsphinx', 'pocketsphinx-en-us'] },
    existsSync(path.join(modelDir, 'en-us', 'mdef')) && existsSync(path.join(modelDir, 'cmudict-en-us.dict'))
      ? { name: 'speech model', status: 'ok', detail: `${modelDir} (en-us acoustic model and dictionary)` }
      : { name: 'speech model', status: 'warn', detail: `no en-us model in ${modelDir}`, hint: '`sudo apt install pocketsphinx-en-us`', packages: ['pocketsphinx-en-us'] },
    await program('espeak-ng', ['espeak-ng'], ['espeak-ng'], 'spoken answers', pathVar),
  ];
  const arecord = await findOnPath(['arecord'], pathVar);
  const aplay = await findOnPath(['aplay'], pathVar);
  findings.push(await devices('microphone', arecord), await devices('speaker', aplay));
  const packages = [...new Set(findings.flatMap((f) => (f.status === 'ok' ? [] : (f.packages ?? []))))];
  return { findings, aptInstall: packages.length > 0 ? `sudo apt install ${packages.join(' ')}` : null };
}

export function formatVoice(report: VoiceReport): string[] {
  const lines = ['voice (optional: the node runs without it)'];
  for (const f of report.findings) {
    lines.push(`  ${f.name.padEnd(13)} ${f.status === 'ok' ? '' : `${f.status.toUpperCase()}: `}${f.detail}`);
    if (f.hint) lines.push(`    fix: ${f.hint}`);
  }
  if (report.aptInstall) lines.push(`  to install everything voice needs: ${report.aptInstall}`);
  return lines;
}

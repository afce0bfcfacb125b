/**
 * The voice microphone and speaker through the interface real hardware uses:
 * the `arecord` and `aplay` programs. The stand-ins are shell scripts put
 * first on PATH: `arecord` writes the raw 16-bit PCM of the file the test
 * names (as a microphone would, then it ends), `aplay` saves the WAV it is
 * given, one file per answer. Everything else (pocketsphinx, espeak-ng, sox)
 * is the real Debian program.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { chmod, mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

export interface FakeAlsa {
  /** Put first on PATH. */
  readonly bin: string;
  /** Where the stand-in aplay saves what it plays. */
  readonly played: string;
  /** The raw PCM the next arecord run plays (16 kHz mono s16le). */
  setMicrophone(rawFile: string): Promise<void>;
  /** The WAV files played so far, oldest first. */
  playedFiles(): Promise<string[]>;
}

export async function fakeAlsa(dir: string): Promise<FakeAlsa> {
  const bin = path.join(dir, 'bin');
  const played = path.join(dir, 'played');
  const micLink = path.join(dir, 'microphone.raw');
  await mkdir(bin, { recursive: true });
  await mkdir(played, { recursive: true });
  await writeFile(path.join(bin, 'arecord'), `#!/bin/sh\necho "$@" > "${path.join(dir, 'arecord-args')}"\nexec cat "${micLink}"\n`);
  // Unique, time-ordered names: nanoseconds, then the pid.
  await writeFile(path.join(bin, 'aplay'), `#!/bin/sh\necho "$@" > "${path.join(dir, 'aplay-args')}"\nexec cat > "${played}/$(date +%s%N)-$$.wav"\n`);
  await chmod(path.join(bin, 'arecord'), 0o755);
  await chmod(path.join(bin, 'aplay'), 0o755);
  return {
    bin,
    played,
    setMicrophone: async (rawFile) => {
      await rm(micLink, { force: true });
      await symlink(rawFile, micLink);
    },
    playedFiles: async () => (await readdir(played)).filter((f) => f.endsWith('.wav')).sort().map((f) => path.join(played, f)),
  };
}

/**
 * What a push-to-talk microphone hears for `text`: espeak-ng's speech, made
 * 16 kHz by sox (not by the node's own resampler), with 0.5 s before and
 * 1.5 s after at a low noise floor; written as raw s16le to `file`.
 */
export function spokenQuestion(text: string, file: string, voice = 'en-us'): Buffer {
  const wav = execFileSync('espeak-ng', ['--stdout', '-v', voice, '-s', '150', text], { maxBuffer: 16 * 1024 * 1024 });
  const speech = execFileSync('sox', ['-t', 'wav', '-', '-t', 'raw', '-r', '16000', '-c', '1', '-b', '16', '-e', 'signed-integer', '-'], { input: wav, maxBuffer: 16 * 1024 * 1024 });
  const pad = (seconds: number, seed: number) => {
    const b = Buffer.alloc(Math.round(seconds * 16_000) * 2);
    let x = seed;
    for (let i = 0; i < b.length; i += 2) {
      x = (x * 1_103_515_245 + 12_345) % 2_147_483_648;
      b.writeInt16LE(Math.round(((x / 2_147_483_648) - 0.5) * 60), i); // about -60 dBFS
    }
    return b;
  };
  const all = Buffer.concat([pad(0.5, 1), speech, pad(1.5, 2)]);
  writeFileSync(file, all);
  return speech;
}

/**
 * `apiary doctor`'s voice section. Sound cards are hardware: `arecord` and
 * `aplay` are stood in for by scripts printing what they print with and
 * without a card; the programs and the model are looked for for real.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatVoice, soundDevices, voiceReport } from '../../../runtime/cli/doctor-voice.js';

const CARD = `**** List of CAPTURE Hardware Devices ****
card 1: Device [USB PnP Sound Device], device 0: USB Audio [USB Audio]
  Subdevices: 1/1
  Subdevice #0: subdevice #0`;

describe('apiary doctor: voice', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-doctor-voice-'));
  });
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function bin(name: string, files: Record<string, string>): Promise<string> {
    const d = path.join(dir, name);
    await mkdir(d, { recursive: true });
    for (const [file, body] of Object.entries(files)) {
      await writeFile(path.join(d, file), `#!/bin/sh\n${body}\n`);
      await chmod(path.join(d, file), 0o755);
    }
    return d;
  }

  it('with nothing installed, warns about each piece and gives one apt line for all of it', async () => {
    const report = await voiceReport({ pathVar: await bin('empty', {}), modelDir: path.join(dir, 'no-model') });
    expect(report.findings.map((f) => [f.name, f.status])).toEqual([
      ['pocketsphinx', 'warn'], ['speech model', 'warn'], ['espeak-ng', 'warn'], ['microphone', 'unknown'], ['speaker', 'unknown'],
    ]);
    expect(report.aptInstall).toBe('sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng alsa-utils');
    const text = formatVoice(report).join('\n');
    expect(text).toContain('voice (optional: the node runs without it)');
    expect(text).toContain('fix: `sudo apt install pocketsphinx pocketsphinx-en-us`');
    expect(text).toContain('to install everything voice needs: sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng alsa-utils');
  });

  it('lists the microphone and speaker when there are cards, and says to plug one in when there are none', async () => {
    const withCards = await bin('cards', {
      arecord: `cat <<'EOF'\n${CARD}\nEOF`,
      aplay: `cat <<'EOF'\n${CARD.replace('CAPTURE', 'PLAYBACK').replace('card 1', 'card 0')}\nEOF`,
      pocketsphinx_continuous: 'exit 0',
      'espeak-ng': 'exit 0',
    });
    const ok = await voiceReport({ pathVar: withCards });
    expect(ok.findings.find((f) => f.name === 'microphone')).toMatchObject({ status: 'ok', detail: 'card 1: Device [USB PnP Sound Device], device 0: USB Audio [USB Audio]' });
    expect(ok.findings.find((f) => f.name === 'speaker')).toMatchObject({ status: 'ok' });
    expect(ok.findings.find((f) => f.name === 'pocketsphinx')?.detail).toContain('pocketsphinx 0.8/5prealpha');

    const noCards = await bin('nocards', { arecord: 'echo "arecord: device_list:274: no soundcards found..." >&2; exit 0', aplay: 'echo "aplay: device_list:274: no soundcards found..." >&2' });
    const bad = await voiceReport({ pathVar: noCards });
    const mic = bad.findings.find((f) => f.name === 'microphone');
    expect(mic).toMatchObject({ status: 'warn', detail: 'no sound card with a capture device' });
    expect(mic?.hint).toContain('not the in-hive microphone');
    expect(bad.findings.find((f) => f.name === 'speaker')).toMatchObject({ status: 'warn', detail: 'no sound card with a playback device' });
    // No package fixes a missing card: the apt line names only what is not installed.
    expect(bad.aptInstall).toBe('sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng');
  });

  it('reads card lines out of a listing', () => {
    expect(soundDevices(CARD)).toEqual(['card 1: Device [USB PnP Sound Device], device 0: USB Audio [USB Audio]']);
    expect(soundDevices('aplay: device_list:274: no soundcards found...')).toEqual([]);
  });
});

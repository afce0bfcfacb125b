/**
 * A node with voice on where none of the Debian programs is installed (PATH
 * holds none of them): it starts and runs, `voice/status` names what is
 * missing with the apt line, and a listen fails with that fix, not a crash.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extensionsFor } from '../../../../runtime/apps/index.js';
import { parseConfig } from '../../../../runtime/config/load-config.js';
import { ApiaryNode } from '../../../../runtime/core/apiary-node.js';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { waitFor } from '../../../support/mesh-node.js';

describe('voice on, with nothing installed', () => {
  let dir: string;
  let node: ApiaryNode;
  const oldPath = process.env.PATH;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-voice-missing-'));
    await mkdir(path.join(dir, 'empty-bin'));
    process.env.PATH = path.join(dir, 'empty-bin');
    const config = parseConfig({
      node: { dataDir: path.join(dir, 'hive') },
      broker: { port: 0 },
      homeAssistant: { enabled: false },
      device: { simulation: { speed: 600 } },
      voice: { enabled: true, trigger: { button: 'talk' } },
    });
    node = new ApiaryNode(config, pino({ level: 'silent' }), extensionsFor(config));
    await node.start();
  });

  afterAll(async () => {
    process.env.PATH = oldPath;
    await node?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('starts, reads and decides; voice/status names each missing program and the apt line', async () => {
    await waitFor(async () => Object.keys(((await node.status()) as { latest: { readings: object } }).latest.readings).length > 0, 20_000, () => 'a reading');
    const status = await node.commands.run('voice/status', {});
    expect(status.ok).toBe(true);
    const voice = (status as { result: { missing: { purpose: string }[]; fix: string } }).result;
    expect(voice.missing.map((m) => m.purpose)).toEqual(['speech recognition', 'speech out', 'the voice microphone', 'the speaker']);
    expect(voice.fix).toBe('sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng alsa-utils');
    expect(((await node.status()) as { extensions: Record<string, { state: string }> }).extensions.voice).toEqual({ state: 'running' });
  });

  it('a listen fails with APIARY_VOICE_UNAVAILABLE and the apt line, and the node answers on', async () => {
    const listen = await node.commands.run('voice/listen', {});
    expect(listen).toMatchObject({ ok: false, code: ErrorCodes.VOICE_UNAVAILABLE });
    expect((listen as { error: string }).error).toMatch(/pocketsphinx/);
    expect((await node.commands.run('ask', { question: 'how heavy is it' })).ok).toBe(true);
  });
});

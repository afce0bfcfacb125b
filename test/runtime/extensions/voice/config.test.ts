import { describe, expect, it } from 'vitest';
import { voiceSchema } from '../../../../runtime/extensions/voice/config.js';

describe('the voice config section', () => {
  it('is off by default, with the defaults the voice extension uses', () => {
    expect(voiceSchema.parse({})).toEqual({
      enabled: false,
      language: 'en-us',
      input: { device: 'default' },
      output: { device: 'default' },
      trigger: {},
      listenTimeout: 10_000,
      speakAnnouncements: true,
      tts: { engine: 'espeak-ng', voice: 'en-us', speed: 160 },
      pocketsphinx: { timeout: 30_000 },
      wyoming: { enabled: false, host: '127.0.0.1', port: 10_500, mdns: false, maxConnections: 4, maxUtterance: 15_000, idleTimeout: 300_000 },
    });
    expect(voiceSchema.parse({ trigger: { button: 'talk' } }).trigger).toEqual({ button: 'talk' });
  });

  it('names the field that is wrong, and the fix', () => {
    const issues = (value: unknown) => {
      const r = voiceSchema.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ input: { device: 'hw:1; reboot' } })).toEqual([expect.stringMatching(/^input\.device: expected an ALSA device name/) as string]);
    expect(issues({ tts: { speed: 1_000 } })).toEqual([expect.stringMatching(/^tts\.speed: /) as string]);
    expect(issues({ tts: { engine: 'command', command: ['./piper'] } })).toEqual(['tts.command: tts.command[0] must be a program on PATH or an absolute path']);
    expect(issues({ tts: { engine: 'command' } })).toEqual([expect.stringMatching(/^tts: tts\.command: engine is "command", so give the program/) as string]);
    expect(issues({ tts: { command: [] } })).toEqual([expect.stringMatching(/^tts\.command: /) as string]);
    expect(issues({ trigger: { button: 'Talk Button' } })).toEqual([expect.stringMatching(/^trigger\.button: expected the name of a device button/) as string]);
    expect(issues({ trigger: { gpio: { line: 17 } } })).toEqual([expect.stringMatching(/gpio/) as string]);
    expect(issues({ language: 'de' })).toEqual([expect.stringMatching(/^language: expected "en-us"/) as string]);
    expect(issues({ wyoming: { port: 70_000 } })).toEqual([expect.stringMatching(/^wyoming\.port: /) as string]);
    expect(issues({ wakeWord: true })).toEqual([expect.stringMatching(/wakeWord/) as string]);
  });
});

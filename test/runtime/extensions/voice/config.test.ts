import { describe, expect, it } from 'vitest';
import { voiceSchema } from '../../../../runtime/extensions/voice/config.js';

describe('the voice config section (draft)', () => {
  it('is off by default, with the defaults the pipeline uses', () => {
    expect(voiceSchema.parse({})).toEqual({
      enabled: false,
      input: { device: 'default', maxListen: 8_000 },
      output: { device: 'default' },
      trigger: { command: true },
      language: 'en-us',
      voice: 'en-us',
      speed: 160,
      tts: { timeout: 20_000 },
      announce: { severities: ['critical'] },
    });
  });

  it('names the field that is wrong', () => {
    const issues = (value: unknown) => {
      const r = voiceSchema.safeParse(value);
      return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    expect(issues({ input: { device: 'hw:1; reboot' } })).toEqual([expect.stringMatching(/^input\.device: expected an ALSA device name/) as string]);
    expect(issues({ speed: 1_000 })).toEqual([expect.stringMatching(/^speed: /) as string]);
    expect(issues({ tts: { command: ['./piper'] } })).toEqual(['tts.command: tts.command[0] must be a program on PATH or an absolute path']);
    expect(issues({ tts: { command: [] } })).toEqual([expect.stringMatching(/^tts\.command: /) as string]);
    expect(issues({ trigger: { button: { chip: 'gpiochip0' } } })).toEqual([expect.stringMatching(/^trigger\.button\.line: /) as string]);
    expect(issues({ announce: { severities: ['loud'] } })).toEqual([expect.stringMatching(/^announce\.severities\.0: /) as string]);
    expect(issues({ wakeWord: true })).toEqual([expect.stringMatching(/wakeWord/) as string]);
  });
});

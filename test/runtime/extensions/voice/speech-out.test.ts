/**
 * Speech out: espeak-ng and a tts.command hook make WAV, aplay plays it
 * (on ALSA's null device: no speaker needed), and every program the voice
 * path runs is bounded in time and output.
 */
import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import { AplaySink } from '../../../../runtime/extensions/voice/aplay-sink.js';
import { checkTtsCommand, CommandTts } from '../../../../runtime/extensions/voice/command-tts.js';
import { EspeakTts } from '../../../../runtime/extensions/voice/espeak-tts.js';
import { levelDb } from '../../../../runtime/extensions/voice/energy-end-of-speech.js';
import { runProgram } from '../../../../runtime/extensions/voice/run-program.js';
import type { Pcm } from '../../../../runtime/extensions/voice/types.js';
import { missingPrograms } from './speech-tools.js';

const noEspeak = await missingPrograms('espeak-ng');
const noAplay = await missingPrograms('aplay');
const seconds = (p: Pcm) => p.samples.length / p.channels / p.sampleRate;

describe('running speech programs, bounded', () => {
  const limits = { timeoutMs: 5_000, maxStdoutBytes: 1_000, missingHint: 'install it: `sudo apt install thing`' };

  it('passes stdin, returns stdout, and reports a failure with the end of stderr', async () => {
    expect((await runProgram('cat', [], { ...limits, input: 'hello' })).stdout.toString()).toBe('hello');
    await expect(runProgram('sh', ['-c', 'echo one >&2; echo two >&2; exit 3'], limits)).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: 'sh failed (exit 3): one | two' });
  });

  it('stops a program that takes too long, writes too much, or is aborted', async () => {
    await expect(runProgram('sleep', ['10'], { ...limits, timeoutMs: 200 })).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: 'sleep did not finish within 0.2 s' });
    await expect(runProgram('yes', [], limits)).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: 'yes wrote over 1000 bytes' });
    const controller = new AbortController();
    const pending = runProgram('sleep', ['10'], { ...limits, signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ message: 'sleep stopped: aborted' });
  });

  it('says what to install when the program is missing', async () => {
    await expect(runProgram('apiary-no-such-program', [], limits)).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, hint: 'install it: `sudo apt install thing`' });
  });
});

describe.skipIf(noEspeak !== undefined)(`espeak-ng${noEspeak ? ` (${noEspeak})` : ''}`, () => {
  it('speaks an answer as 22,050 Hz mono speech, slower at a lower speed', async () => {
    const text = 'The hive weighs 41.2 kilograms.';
    const normal = await new EspeakTts({ voice: 'en-us', speed: 175 }).synthesise(text);
    const slow = await new EspeakTts({ voice: 'en-gb', speed: 100 }).synthesise(text);
    expect(normal).toMatchObject({ sampleRate: 22_050, channels: 1 });
    expect(seconds(normal)).toBeGreaterThan(1);
    expect(seconds(slow)).toBeGreaterThan(seconds(normal) * 1.4);
    expect(levelDb(normal.samples)).toBeGreaterThan(-30);
  });

  it('reads text as text: an answer starting with a dash is spoken, not taken for an option', async () => {
    const speech = await new EspeakTts().synthesise('--version');
    expect(seconds(speech)).toBeGreaterThan(0.3);
  });

  it('rejects bad settings and text before running anything, and reports a voice it lacks', async () => {
    expect(() => new EspeakTts({ voice: 'en; rm -rf /' })).toThrow(/voice "en; rm -rf \/" is not an espeak-ng voice name/);
    expect(() => new EspeakTts({ voice: '' })).toThrow(expect.objectContaining({ code: ErrorCodes.CONFIG_INVALID }) as object);
    expect(() => new EspeakTts({ speed: 1_000 })).toThrow(/speed 1000 is not a whole number of words per minute in 80..450/);
    await expect(new EspeakTts().synthesise('  \n ')).rejects.toMatchObject({ code: ErrorCodes.USAGE_INVALID });
    await expect(new EspeakTts().synthesise('x'.repeat(2_001))).rejects.toMatchObject({ message: expect.stringContaining('2001 characters') as string });
    await expect(new EspeakTts({ voice: 'xx-nosuchvoice' }).synthesise('hello')).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED, message: expect.stringContaining('voice does not exist') as string });
  });
});

describe('a tts.command hook', () => {
  it('validates the command as a list of strings with an absolute or PATH program', () => {
    for (const [bad, why] of [
      [[], /a list of 1 to 64 strings/],
      ['espeak-ng --stdout', /a list of 1 to 64 strings/],
      [[''], /tts.command\[0\] must be a non-empty string/],
      [['espeak-ng', 3], /tts.command\[1\] must be a non-empty string/],
      [['./my-tts'], /relative path/],
    ] as const) {
      expect(() => checkTtsCommand(bad), JSON.stringify(bad)).toThrow(why);
    }
    expect(checkTtsCommand(['/usr/bin/espeak-ng', '--stdout'])).toEqual(['/usr/bin/espeak-ng', '--stdout']);
  });

  it.skipIf(noEspeak !== undefined)('speaks through the command: text on stdin, WAV on stdout', async () => {
    const speech = await new CommandTts({ command: ['espeak-ng', '--stdin', '--stdout', '-v', 'en-gb'] }).synthesise('Two neighbours, no alerts.');
    expect(speech.sampleRate).toBe(22_050);
    expect(seconds(speech)).toBeGreaterThan(1);
  });

  it('refuses output that is not WAV, and a command that hangs', async () => {
    await expect(new CommandTts({ command: ['cat'] }).synthesise('not audio')).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID, message: expect.stringContaining("tts.command cat's output: not a WAV file") as string });
    await expect(new CommandTts({ command: ['sleep', '10'], timeoutMs: 200 }).synthesise('hi')).rejects.toMatchObject({ code: ErrorCodes.VOICE_FAILED });
    await expect(new CommandTts({ command: ['apiary-no-such-tts'] }).synthesise('hi')).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, hint: expect.stringContaining('absolute path') as string });
  });
});

describe.skipIf(noAplay !== undefined)(`aplay${noAplay ? ` (${noAplay})` : ''}`, () => {
  const beep: Pcm = { sampleRate: 16_000, channels: 1, samples: Int16Array.from({ length: 1_600 }, (_, i) => Math.round(8_000 * Math.sin(i / 3))) };

  it('plays to an ALSA device, telling when it starts', async () => {
    let started = false;
    await new AplaySink({ device: 'null' }).play(beep, { onStart: () => { started = true; } });
    expect(started).toBe(true);
  });

  it('says there is no speaker when the device does not exist, and refuses a device name that is not one', async () => {
    await expect(new AplaySink({ device: 'apiary_no_such_pcm' }).play(beep)).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, hint: expect.stringContaining('aplay -l') as string });
    expect(() => new AplaySink({ device: 'default; reboot' })).toThrow(/voice output device "default; reboot" is not an ALSA device name/);
    await expect(new AplaySink({ device: 'null', program: 'apiary-no-such-aplay' }).play(beep)).rejects.toMatchObject({ code: ErrorCodes.VOICE_UNAVAILABLE, hint: 'install it: `sudo apt install alsa-utils`' });
  });
});

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ApiaryError, ErrorCodes } from '../../../../runtime/errors.js';
import { encodeWav, parseWav, readWavFile, writeWavFile } from '../../../../runtime/extensions/voice/wav.js';

const tone = (n: number, channels = 1) => Int16Array.from({ length: n * channels }, (_, i) => Math.round(Math.sin(i / 7) * 12_000) - (i % 3));

/** A WAV laid out by hand: header fields set one by one, so each rejection is about one field. */
function wavWith(o: { format?: number; channels?: number; rate?: number; blockAlign?: number; bits?: number; dataSize?: number; data?: number; extra?: Buffer; fmtSize?: number } = {}): Buffer {
  const data = Buffer.alloc(o.data ?? 8);
  const fmtSize = o.fmtSize ?? 16;
  const fmt = Buffer.alloc(8 + fmtSize);
  fmt.write('fmt ', 0, 'ascii');
  fmt.writeUInt32LE(fmtSize, 4);
  if (fmtSize >= 16) {
    fmt.writeUInt16LE(o.format ?? 1, 8);
    fmt.writeUInt16LE(o.channels ?? 1, 10);
    fmt.writeUInt32LE(o.rate ?? 16_000, 12);
    fmt.writeUInt32LE((o.rate ?? 16_000) * 2, 16);
    fmt.writeUInt16LE(o.blockAlign ?? (o.channels ?? 1) * 2, 20);
    fmt.writeUInt16LE(o.bits ?? 16, 22);
  }
  const head = Buffer.alloc(8);
  head.write('data', 0, 'ascii');
  head.writeUInt32LE(o.dataSize ?? data.length, 4);
  const body = Buffer.concat([Buffer.from('WAVE'), o.extra ?? Buffer.alloc(0), fmt, head, data]);
  const riff = Buffer.alloc(8);
  riff.write('RIFF', 0, 'ascii');
  riff.writeUInt32LE(body.length, 4);
  return Buffer.concat([riff, body]);
}

function rejects(buf: Uint8Array, pattern: RegExp, streamed = false): void {
  let caught: unknown;
  try {
    parseWav(buf, { streamed, source: 'test.wav' });
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ApiaryError);
  expect((caught as ApiaryError).code).toBe(ErrorCodes.AUDIO_INVALID);
  expect((caught as ApiaryError).message).toMatch(/^test\.wav: /);
  expect((caught as ApiaryError).message).toMatch(pattern);
}

describe('WAV reading and writing', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  it('round-trips mono and stereo 16-bit PCM exactly, through a file too', async () => {
    for (const channels of [1, 2]) {
      const pcm = { sampleRate: 22_050, channels, samples: tone(1_001, channels) };
      const wav = encodeWav(pcm);
      expect(wav.length).toBe(44 + pcm.samples.length * 2);
      expect(parseWav(wav)).toEqual(pcm);
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-wav-'));
    dirs.push(dir);
    const pcm = { sampleRate: 16_000, channels: 1, samples: tone(16_000) };
    await writeWavFile(path.join(dir, 'a.wav'), pcm);
    expect(await readWavFile(path.join(dir, 'a.wav'))).toEqual(pcm);
  });

  it('skips other chunks (with their pad byte) and reads WAVE_FORMAT_EXTENSIBLE PCM', () => {
    const list = Buffer.concat([Buffer.from('LIST'), Buffer.from([3, 0, 0, 0]), Buffer.from('abc'), Buffer.alloc(1)]);
    expect(parseWav(wavWith({ extra: list, data: 4 })).samples).toHaveLength(2);
    const ext = wavWith({ format: 0xfffe, fmtSize: 40 });
    ext.writeUInt16LE(1, 12 + 8 + 24); // sub-format GUID starts with PCM's 1
    expect(parseWav(ext).sampleRate).toBe(16_000);
  });

  it('takes what is there from a pipe whose data size is a placeholder, only when told it is streamed', () => {
    const piped = wavWith({ dataSize: 0x7ffff000, data: 10 });
    expect(parseWav(piped, { streamed: true }).samples).toHaveLength(5);
    rejects(piped, /truncated: the data chunk declares 2147479552 bytes, 10 are there/);
    // An odd byte at the end of a stream is half a sample: dropped, not misread.
    expect(parseWav(wavWith({ dataSize: 0x7ffff000, data: 11 }), { streamed: true }).samples).toHaveLength(5);
  });

  it('rejects malformed and unsupported files with the field that is wrong', () => {
    rejects(new Uint8Array(0), /not a WAV file \(no RIFF\/WAVE header; 0 bytes\)/);
    rejects(Buffer.from('ID3\u0004 an mp3 file, really'), /not a WAV file/);
    rejects(wavWith({ format: 3 }), /audio format 3 is not integer PCM/);
    rejects(wavWith({ bits: 8, blockAlign: 1 }), /8-bit samples; only 16-bit PCM/);
    rejects(wavWith({ bits: 24, blockAlign: 3 }), /24-bit samples/);
    rejects(wavWith({ channels: 0 }), /0 channels/);
    rejects(wavWith({ channels: 9 }), /9 channels/);
    rejects(wavWith({ rate: 100 }), /sample rate 100 Hz is outside/);
    rejects(wavWith({ rate: 10_000_000 }), /sample rate 10000000 Hz/);
    rejects(wavWith({ blockAlign: 4 }), /block align 4 does not match 1 channels/);
    rejects(wavWith({ fmtSize: 12 }), /fmt chunk is 12 bytes/);
    rejects(wavWith().subarray(0, 40), /truncated: the "data" chunk|no data chunk/);
    rejects(wavWith().subarray(0, 36), /no data chunk/);
    const huge = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE'), Buffer.from('junk'), Buffer.from([0xff, 0xff, 0xff, 0xff])]);
    rejects(huge, /truncated: the "junk" chunk declares 4294967295 bytes/);
    const dataFirst = Buffer.concat([Buffer.from('RIFF\0\0\0\0WAVE'), Buffer.from('data'), Buffer.from([2, 0, 0, 0, 1, 2])]);
    rejects(dataFirst, /data chunk comes before any fmt chunk/);
  });

  it('never fails with anything but APIARY_AUDIO_INVALID on damaged files', () => {
    const good = encodeWav({ sampleRate: 16_000, channels: 1, samples: tone(64) });
    let seed = 12_345;
    const rand = () => {
      seed = (seed * 1_103_515_245 + 12_345) >>> 0;
      return seed;
    };
    let rejected = 0;
    for (let n = 0; n < 2_000; n++) {
      const bad = Buffer.from(good.subarray(0, 12 + (rand() % (good.length - 12))));
      for (let k = 0; k < 3; k++) if (bad.length > 0) bad[rand() % bad.length] = rand() & 0xff;
      try {
        parseWav(bad);
      } catch (err) {
        expect(err).toBeInstanceOf(ApiaryError);
        expect((err as ApiaryError).code).toBe(ErrorCodes.AUDIO_INVALID);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(100);
  });

  it('names the path and the fix for a file that is missing or is not audio', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-wav-'));
    dirs.push(dir);
    await expect(readWavFile(path.join(dir, 'nope.wav'))).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID, message: expect.stringContaining('nope.wav: ENOENT') as string });
    await writeFile(path.join(dir, 'text.wav'), 'hello');
    await expect(readWavFile(path.join(dir, 'text.wav'))).rejects.toMatchObject({ code: ErrorCodes.AUDIO_INVALID, hint: expect.stringContaining('sox') as string });
  });

  it('refuses to encode a format it cannot describe', () => {
    expect(() => encodeWav({ sampleRate: 0, channels: 1, samples: new Int16Array(2) })).toThrow(/sample rate 0/);
    expect(() => encodeWav({ sampleRate: 16_000, channels: 2, samples: new Int16Array(3) })).toThrow(/2 channels for 3 samples/);
  });
});

/**
 * WAV (RIFF/WAVE) reading and writing, 16-bit PCM only: what arecord,
 * espeak-ng, sox and pocketsphinx use. Anything else (float, 8/24-bit,
 * compressed) is refused with the sox line that converts it, never guessed at.
 * Every length is checked against the buffer before it is read, so a
 * malformed file is an APIARY_AUDIO_INVALID error, never a crash or a huge
 * allocation.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import type { Pcm } from './types.js';

const FORMAT_PCM = 1;
const FORMAT_EXTENSIBLE = 0xfffe;
export const MIN_RATE = 2_000;
export const MAX_RATE = 192_000;
const MAX_CHANNELS = 8;
const CONVERT_HINT = 'convert it to 16-bit PCM WAV: `sox <in> -b 16 -e signed-integer <out>.wav`';

export interface ParseWavOptions {
  /**
   * Accept a data chunk whose declared size runs past the end, taking what is
   * there. Programs writing WAV to a pipe (`espeak-ng --stdout`) cannot seek
   * back to fill in the size and write a placeholder; a file on disk must be whole.
   */
  readonly streamed?: boolean;
  /** Names the input in errors (a file name, `espeak-ng's output`). */
  readonly source?: string;
}

function invalid(source: string, message: string, hint = CONVERT_HINT): ApiaryError {
  return new ApiaryError(ErrorCodes.AUDIO_INVALID, `${source}: ${message}`, { hint });
}

export function parseWav(buf: Uint8Array, options: ParseWavOptions = {}): Pcm {
  const source = options.source ?? 'WAV data';
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const tag = (at: number) => String.fromCharCode(buf[at] ?? 0, buf[at + 1] ?? 0, buf[at + 2] ?? 0, buf[at + 3] ?? 0);
  if (buf.byteLength < 12 || tag(0) !== 'RIFF' || tag(8) !== 'WAVE') {
    throw invalid(source, `not a WAV file (no RIFF/WAVE header; ${buf.byteLength} bytes)`);
  }
  let fmt: { format: number; channels: number; sampleRate: number; blockAlign: number; bits: number } | undefined;
  let at = 12;
  while (at + 8 <= buf.byteLength) {
    const id = tag(at);
    const size = view.getUint32(at + 4, true);
    const body = at + 8;
    const remaining = buf.byteLength - body;
    if (id === 'data') {
      if (!fmt) throw invalid(source, 'the data chunk comes before any fmt chunk');
      let bytes = size;
      if (size > remaining) {
        if (!options.streamed) throw invalid(source, `truncated: the data chunk declares ${size} bytes, ${remaining} are there`, 'the recording was cut short: record it again');
        bytes = remaining;
      }
      bytes -= bytes % fmt.blockAlign;
      // Copied so the samples are aligned whatever the chunk offset.
      const samples = new Int16Array(bytes / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = view.getInt16(body + i * 2, true);
      return { sampleRate: fmt.sampleRate, channels: fmt.channels, samples };
    }
    if (size > remaining) throw invalid(source, `truncated: the ${JSON.stringify(id)} chunk declares ${size} bytes, ${remaining} are there`);
    if (id === 'fmt ') {
      if (size < 16) throw invalid(source, `the fmt chunk is ${size} bytes, under the 16 of PCM`);
      let format = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const blockAlign = view.getUint16(body + 12, true);
      const bits = view.getUint16(body + 14, true);
      // WAVE_FORMAT_EXTENSIBLE: the real format is the first two bytes of the sub-format GUID.
      if (format === FORMAT_EXTENSIBLE && size >= 40) format = view.getUint16(body + 24, true);
      if (format !== FORMAT_PCM) throw invalid(source, `audio format ${format} is not integer PCM (1)`);
      if (bits !== 16) throw invalid(source, `${bits}-bit samples; only 16-bit PCM is read`);
      if (channels < 1 || channels > MAX_CHANNELS) throw invalid(source, `${channels} channels; 1 to ${MAX_CHANNELS} are read`);
      if (sampleRate < MIN_RATE || sampleRate > MAX_RATE) throw invalid(source, `sample rate ${sampleRate} Hz is outside ${MIN_RATE}..${MAX_RATE}`);
      if (blockAlign !== channels * 2) throw invalid(source, `block align ${blockAlign} does not match ${channels} channels of 16 bits`);
      fmt = { format, channels, sampleRate, blockAlign, bits };
    }
    // Chunks are word-aligned: an odd size is followed by a pad byte.
    at = body + size + (size % 2);
  }
  throw invalid(source, fmt ? 'no data chunk' : 'no fmt chunk');
}

/** A canonical 44-byte-header WAV. */
export function encodeWav(pcm: Pcm): Buffer {
  if (!Number.isInteger(pcm.sampleRate) || pcm.sampleRate < MIN_RATE || pcm.sampleRate > MAX_RATE) {
    throw invalid('encodeWav', `sample rate ${pcm.sampleRate} is outside ${MIN_RATE}..${MAX_RATE}`, 'pass an integer rate in Hz');
  }
  if (!Number.isInteger(pcm.channels) || pcm.channels < 1 || pcm.channels > MAX_CHANNELS || pcm.samples.length % pcm.channels !== 0) {
    throw invalid('encodeWav', `${pcm.channels} channels for ${pcm.samples.length} samples`, 'pass whole frames of 1 to 8 channels');
  }
  const dataBytes = pcm.samples.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(FORMAT_PCM, 20);
  out.writeUInt16LE(pcm.channels, 22);
  out.writeUInt32LE(pcm.sampleRate, 24);
  out.writeUInt32LE(pcm.sampleRate * pcm.channels * 2, 28);
  out.writeUInt16LE(pcm.channels * 2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  for (let i = 0; i < pcm.samples.length; i++) out.writeInt16LE(pcm.samples[i] ?? 0, 44 + i * 2);
  return out;
}

/** Largest WAV file read whole: 10 minutes of 48 kHz stereo. Anything bigger is not a spoken question. */
export const MAX_WAV_FILE_BYTES = 10 * 60 * 48_000 * 2 * 2;

export async function readWavFile(file: string): Promise<Pcm> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ApiaryError(ErrorCodes.AUDIO_INVALID, `cannot read ${file}: ${code ?? (err as Error).message}`, { hint: 'check the path given to --audio', cause: err });
  }
  if (buf.byteLength > MAX_WAV_FILE_BYTES) throw invalid(file, `${buf.byteLength} bytes is over the ${MAX_WAV_FILE_BYTES} read`, 'trim it to the question: `sox <in> <out>.wav trim 0 30`');
  return parseWav(buf, { source: file });
}

export async function writeWavFile(file: string, pcm: Pcm): Promise<void> {
  await writeFile(file, encodeWav(pcm));
}

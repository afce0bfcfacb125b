/**
 * ALSA device names for the voice microphone and speaker, used by
 * arecord-source.ts and aplay-sink.ts (Debian `alsa-utils`): `default`,
 * `plughw:1,0`, `null` for tests, as listed by `arecord -L` / `aplay -L`.
 *
 * The voice microphone is not the in-hive microphone: the colony's hum under
 * speech at -40 dB already breaks recognition (design/field-notes.md, Voice).
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';

export const ALSA_PACKAGE = 'alsa-utils';
const DEVICE = /^[A-Za-z0-9_:,.=-]{1,128}$/;

export function checkDevice(field: string, device: string): string {
  if (!DEVICE.test(device)) {
    throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `${field} ${JSON.stringify(device)} is not an ALSA device name`, { hint: 'use a name from `arecord -L` / `aplay -L`, e.g. default or plughw:1,0' });
  }
  return device;
}

/** ALSA's words for "there is no such device": the fix is hardware or config, not a retry. */
export function noDevice(stderr: string): boolean {
  return /audio open error|no soundcards|No such (file|device)|cannot find card|Unknown PCM/i.test(stderr);
}

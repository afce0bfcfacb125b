/**
 * DRAFT of the `voice` section (issue 14), not registered in the config
 * schema yet: the lead wires it with the triggers and the CLI. Voice is off
 * by default; when on and a program or device is missing, `apiary doctor`
 * says what to install and the node runs on without voice.
 */
import { z } from 'zod';
import { duration } from '../../config/units.js';
import { MAX_SPEED, MIN_SPEED } from './espeak-tts.js';

const alsaDevice = z.string().regex(/^[A-Za-z0-9_:,.=-]{1,128}$/, 'expected an ALSA device name from `arecord -L` / `aplay -L`, e.g. default or plughw:1,0');

export const voiceSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** The voice microphone: a USB microphone near the beekeeper, never the in-hive one (the colony's hum drowns speech). */
  input: z.strictObject({
    device: alsaDevice.default('default'),
    /** Listening gives up after this long without a finished question. */
    maxListen: duration(1_000, 60_000).prefault('8s'),
  }).prefault({}),
  output: z.strictObject({
    device: alsaDevice.default('default'),
  }).prefault({}),
  /** What starts listening. No always-on wake word: on a Pi Zero 2 W the known engines pin a core. */
  trigger: z.strictObject({
    /** A push-to-talk button on a GPIO line, watched with libgpiod's `gpiomon` (Debian `gpiod`). */
    button: z.strictObject({
      chip: z.string().regex(/^gpiochip\d{1,3}$/, 'expected a GPIO chip like gpiochip0 (`gpiodetect` lists them)').default('gpiochip0'),
      line: z.number().int().min(0).max(1_023),
      /** A button to ground with the pull-up on: pressed reads 0. */
      activeLow: z.boolean().default(true),
    }).optional(),
    /** The MQTT `listen` command and `apiary ask --listen`. */
    command: z.boolean().default(true),
  }).prefault({}),
  /** The recogniser's language: the acoustic model Debian ships in pocketsphinx-en-us. */
  language: z.enum(['en-us']).default('en-us'),
  /** espeak-ng voice (`espeak-ng --voices=en`) and words per minute. */
  voice: z.string().regex(/^[a-z0-9][a-z0-9_+-]{0,63}$/i, 'expected an espeak-ng voice name, e.g. en-us or en-gb-x-rp').default('en-us'),
  speed: z.number().int().min(MIN_SPEED).max(MAX_SPEED).default(160),
  tts: z.strictObject({
    /**
     * Another speech engine instead of espeak-ng: a program and its arguments (no shell), given the
     * text on stdin, writing 16-bit PCM WAV to stdout, e.g. [piper, --model, /opt/piper/en_GB.onnx, --output_file, /dev/stdout].
     */
    command: z.array(z.string().min(1).max(4_096).refine((s) => !s.includes('\0'), 'no NUL characters')).min(1).max(64)
      .refine((c) => !(c[0] ?? '').includes('/') || (c[0] ?? '').startsWith('/'), 'tts.command[0] must be a program on PATH or an absolute path')
      .optional(),
    timeout: duration(1_000, 120_000).prefault('20s'),
  }).prefault({}),
  /** Decisions spoken as they are raised, by severity, with their reason. */
  announce: z.strictObject({
    severities: z.array(z.enum(['info', 'warning', 'critical'])).default(['critical']),
  }).prefault({}),
});

export type VoiceConfig = z.infer<typeof voiceSchema>;

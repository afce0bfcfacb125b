/**
 * The `voice` section: speech in and out on the node (runtime/extensions/voice/),
 * and the Wyoming endpoint for Home Assistant. Off by default: it needs a
 * microphone, a speaker and Debian packages (`apiary doctor` lists what is missing).
 * What is answered, and which decisions are announced, is the `ask` section's.
 */
import { z } from 'zod';
import { duration } from '../../config/units.js';
import type { DeepReadonly } from '../../deep-freeze.js';

/** ALSA PCM names as arecord/aplay take them: `default`, `plughw:1,0`, `sysdefault:CARD=Device`. */
const alsaDevice = z.string().regex(/^[A-Za-z0-9_:,.=-]{1,64}$/, { error: 'expected an ALSA device name like "default" or "plughw:1,0" (`arecord -L` / `aplay -L` list them)' });

export const voiceSchema = z.strictObject({
  enabled: z.boolean().default(false),
  /** The recogniser's language: pocketsphinx-en-us is the acoustic model Debian ships. */
  language: z.enum(['en-us'], { error: 'expected "en-us" (the pocketsphinx model Debian ships)' }).default('en-us'),
  /**
   * The voice microphone: a separate one, near where the beekeeper stands, not the
   * in-hive microphone (hive hum under speech, even 40 dB down, breaks recognition).
   */
  input: z.strictObject({ device: alsaDevice.default('default') }).prefault({}),
  /** The speaker answers and announcements are played on. */
  output: z.strictObject({ device: alsaDevice.default('default') }).prefault({}),
  /** What starts listening, besides `apiary ask --listen` and the `voice/listen` command. No always-on wake word. */
  trigger: z.strictObject({
    /**
     * Push-to-talk: the name of a button of the node's device whose press starts a listen. The device owns the
     * GPIO line (`device.linux.button: { line: 17, name: talk }`: a button to ground, watched by libgpiod's gpiomon).
     */
    button: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'expected the name of a device button, like talk (device.linux.button.name)' }).optional(),
  }).prefault({}),
  /** Listening gives up after this long without a finished question. */
  listenTimeout: duration(1_000, 120_000).prefault('10s'),
  /** Speak the decisions the `ask.announce` severities select, as they are raised. */
  speakAnnouncements: z.boolean().default(true),
  tts: z.strictObject({
    /** espeak-ng (Debian), or `command`: a program given the text on stdin that writes a WAV file to stdout. */
    engine: z.enum(['espeak-ng', 'command'], { error: 'expected "espeak-ng" or "command"' }).default('espeak-ng'),
    /** An espeak-ng voice (`espeak-ng --voices=en`). */
    voice: z.string().regex(/^[A-Za-z0-9_+-]{1,40}$/, { error: 'expected an espeak-ng voice name like en-us or en-gb-x-rp' }).default('en-us'),
    /** Words per minute. */
    speed: z.number().int().min(80).max(450).default(160),
    /** For engine: command, the program and its arguments, e.g. [piper, --model, /opt/voice.onnx, --output_file, /dev/stdout]. */
    command: z.array(z.string().min(1).max(4_096).refine((a) => !a.includes('\0'), { error: 'no NUL characters' })).min(1).max(64)
      .refine((c) => !(c[0] ?? '').includes('/') || (c[0] ?? '').startsWith('/'), { error: 'tts.command[0] must be a program on PATH or an absolute path' })
      .optional(),
  }).prefault({}).refine((t) => t.engine !== 'command' || t.command !== undefined, { error: 'tts.command: engine is "command", so give the program and its arguments, like [my-tts, --wav]' }),
  pocketsphinx: z.strictObject({
    /** Holds en-us/ and cmudict-en-us.dict; default /usr/share/pocketsphinx/model/en-us (package pocketsphinx-en-us). */
    modelDir: z.string().min(1).optional(),
    /** One utterance's recognition, at most (a few seconds on a Pi Zero 2 W). */
    timeout: duration(1_000, 120_000).prefault('30s'),
  }).prefault({}),
  /** A Wyoming endpoint (Home Assistant's voice protocol): speech to text, "ask the hive" as a conversation agent, text to speech. */
  wyoming: z.strictObject({
    enabled: z.boolean().default(false),
    /** Loopback by default; a Home Assistant on another machine needs the LAN address or 0.0.0.0. */
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65_535).default(10_500),
    /** Announce `_wyoming._tcp` by mDNS so Home Assistant discovers it. */
    mdns: z.boolean().default(false),
    /** mDNS on one interface's IPv4 address only; default all. */
    mdnsInterface: z.string().min(1).optional(),
    maxConnections: z.number().int().min(1).max(64).default(4),
    /** Longest utterance a peer may send. */
    maxUtterance: duration(1_000, 120_000).prefault('15s'),
    idleTimeout: duration(1_000, 3_600_000).prefault('5m'),
  }).prefault({}),
});

/** As the node holds it: validated, then frozen. */
export type VoiceConfig = DeepReadonly<z.output<typeof voiceSchema>>;

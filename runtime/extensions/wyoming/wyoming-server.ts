/**
 * A Wyoming endpoint (github.com/rhasspy/wyoming, README "Event Flow"), so a
 * Home Assistant voice pipeline or satellite can use the hive as:
 *   - speech to text: transcribe, audio-start, audio-chunk..., audio-stop -> transcript
 *     (recognised against the node's own grammar: out-of-grammar speech gives an empty transcript);
 *   - intent handling ("ask the hive" as a conversation agent): transcript{text} -> handled | not-handled;
 *   - intent recognition: recognize{text} -> intent | not-recognized;
 *   - text to speech: synthesize{text} -> audio-start, audio-chunk..., audio-stop;
 *   - describe -> info, ping -> pong.
 * Audio stays in memory for one utterance and is dropped once answered: the
 * node keeps only the words (issue 14, privacy). Every peer is bounded:
 * connections, bytes per event, seconds of audio per utterance, idle time;
 * what is refused is counted under `voice.wyoming.*`.
 */
import net from 'node:net';
import type { Counters } from '../../counters.js';
import type { Logger } from '../../log.js';
import { DEFAULT_WYOMING_LIMITS, encodeWyomingEvent, WyomingDecoder, WyomingFormatError, type WyomingEvent, type WyomingLimits } from './wyoming-codec.js';

/** PCM as a peer sent it: little-endian signed samples, interleaved channels. */
export interface PcmAudio {
  readonly pcm: Buffer;
  readonly rate: number;
  /** Bytes per sample: 2 (s16le) is what Home Assistant sends. */
  readonly width: number;
  readonly channels: number;
}

export interface WyomingAnswer {
  /** Whether the question was one the node knows (an intent), or the "I don't know that" answer. */
  readonly understood: boolean;
  readonly intent?: string;
  readonly slots?: Readonly<Record<string, string>>;
  /** The answer as written, with units as symbols. */
  readonly text: string;
  /** The answer as spoken: units in words. */
  readonly speech: string;
}

/** What the endpoint does with what it is sent: the node's own voice and ask fronts. */
export interface WyomingHandlers {
  /** Words from an utterance, or an empty string when it was not one of the node's questions. Throws when speech recognition is not available. */
  transcribe(audio: PcmAudio, signal: AbortSignal): Promise<string>;
  /** The answer to a question in words (never invents a number: the `ask` command). */
  ask(text: string): Promise<WyomingAnswer>;
  /** Speech for a text; undefined when this node has no speech out. */
  synthesize?(text: string, signal: AbortSignal): Promise<PcmAudio>;
}

export interface WyomingServerOptions {
  readonly host: string;
  readonly port: number;
  /** Open connections at once; more are closed at once (counted). */
  readonly maxConnections: number;
  /** Longest utterance, in seconds of audio at the format the peer announced; more ends the utterance with an error event. */
  readonly maxUtteranceSeconds: number;
  /** A connection that sends nothing this long is closed. */
  readonly idleTimeoutMs: number;
  /** Language tags announced in `info`. */
  readonly languages: readonly string[];
  /** Announced names: the node's name, shown in Home Assistant. */
  readonly name: string;
  readonly version: string;
  readonly limits?: WyomingLimits;
  readonly handlers: WyomingHandlers;
  readonly counters: Counters;
  readonly logger: Logger;
}

const ATTRIBUTION = { name: 'Apiary', url: 'https://github.com/apiary' };
/** Audio-chunk payloads we send: 1024 samples of s16 mono, as wyoming's own servers chunk. */
const CHUNK_SAMPLES = 1024;

function positiveInt(value: unknown, max: number): number | undefined {
  return typeof value === 'number' && Number.isSafeInteger(value) && value > 0 && value <= max ? value : undefined;
}

export function audioFormat(data: Readonly<Record<string, unknown>>): { rate: number; width: number; channels: number } | undefined {
  const rate = positiveInt(data.rate, 192_000);
  const width = positiveInt(data.width, 4);
  const channels = positiveInt(data.channels, 8);
  // Width 2 (s16le) only: what Home Assistant and every Wyoming satellite send, and what the recogniser reads.
  return rate !== undefined && width === 2 && channels !== undefined ? { rate, width, channels } : undefined;
}

export class WyomingServer {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly aborts = new Set<AbortController>();

  constructor(private readonly options: WyomingServerOptions) {}

  /** The port listened on (the configured one, or the one the OS picked for port 0). */
  get port(): number {
    const address = this.server?.address();
    return typeof address === 'object' && address !== null ? address.port : this.options.port;
  }

  info(): Record<string, unknown> {
    const { name, version, languages } = this.options;
    const artifact = (description: string) => ({ name: `apiary-${name}`, attribution: ATTRIBUTION, installed: true, description, version });
    return {
      asr: [{ ...artifact('speech recognition of the questions this hive understands (pocketsphinx, a grammar of its own)'), models: [{ ...artifact('the hive grammar'), languages }] }],
      handle: [{ ...artifact('ask the hive: answers from its own readings, models and decisions'), models: [{ ...artifact('ask the hive'), languages }] }],
      intent: [{ ...artifact('the questions this hive understands'), models: [{ ...artifact('hive intents'), languages }] }],
      tts: this.options.handlers.synthesize ? [{ ...artifact('espeak-ng'), voices: [{ ...artifact('the hive voice'), languages }] }] : [],
      wake: [],
    };
  }

  async start(): Promise<void> {
    const server = net.createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.options.logger.warn({ err: err.message }, 'Wyoming endpoint error'));
    this.options.logger.info({ host: this.options.host, port: this.port }, 'Wyoming endpoint listening');
  }

  async stop(): Promise<void> {
    for (const abort of this.aborts) abort.abort();
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private accept(socket: net.Socket): void {
    const { counters, logger } = this.options;
    if (this.sockets.size >= this.options.maxConnections) {
      counters.increment('voice.wyoming.refused_connections');
      socket.destroy();
      return;
    }
    counters.increment('voice.wyoming.connections');
    this.sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.options.idleTimeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
    const session = new WyomingSession(this, socket, this.options);
    const decoder = new WyomingDecoder(this.options.limits ?? DEFAULT_WYOMING_LIMITS);
    // Events are handled one after another: a reply never overtakes an earlier one.
    let queue = Promise.resolve();
    socket.on('data', (chunk: Buffer) => {
      let events: WyomingEvent[];
      try {
        events = decoder.push(chunk);
      } catch (err) {
        counters.increment('voice.wyoming.malformed');
        logger.warn({ remote: socket.remoteAddress, err: err instanceof WyomingFormatError ? err.message : String(err) }, 'Wyoming peer sent a malformed event; closed');
        socket.destroy();
        return;
      }
      for (const event of events) {
        queue = queue.then(() => session.handle(event)).catch((err: unknown) => {
          logger.warn({ err: err instanceof Error ? err.message : String(err), type: event.type }, 'Wyoming event failed');
          session.send('error', { text: err instanceof Error ? err.message : String(err), code: 'apiary-error' });
        });
      }
    });
  }

  /** For a session: an AbortController that `stop()` aborts. */
  track(): { signal: AbortSignal; done: () => void } {
    const abort = new AbortController();
    this.aborts.add(abort);
    return { signal: abort.signal, done: () => this.aborts.delete(abort) };
  }
}

/** One connection's state: at most one utterance being received at a time. */
class WyomingSession {
  private audio: { format: { rate: number; width: number; channels: number }; chunks: Buffer[]; bytes: number; maxBytes: number; overflow: boolean } | undefined;

  constructor(private readonly server: WyomingServer, private readonly socket: net.Socket, private readonly options: WyomingServerOptions) {}

  send(type: string, data?: Record<string, unknown>, payload?: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(encodeWyomingEvent({ type, ...(data ? { data } : {}), ...(payload ? { payload } : {}) }));
  }

  async handle(event: WyomingEvent): Promise<void> {
    const { counters, handlers } = this.options;
    counters.increment('voice.wyoming.events');
    switch (event.type) {
      case 'describe':
        this.send('info', this.server.info());
        return;
      case 'ping':
        this.send('pong', typeof event.data.text === 'string' ? { text: event.data.text } : undefined);
        return;
      case 'transcribe':
        // The next audio stream is for speech to text (the only thing audio is for here): nothing to set up.
        return;
      case 'audio-start':
        this.startAudio(event);
        return;
      case 'audio-chunk':
        this.addAudio(event);
        return;
      case 'audio-stop':
        await this.finishAudio();
        return;
      case 'transcript':
      case 'recognize': {
        const text = typeof event.data.text === 'string' ? event.data.text : undefined;
        if (text === undefined) {
          counters.increment('voice.wyoming.malformed');
          this.send('error', { text: `${event.type} needs "text", a string`, code: 'apiary-bad-event' });
          return;
        }
        const answer = await handlers.ask(text);
        counters.increment('voice.wyoming.questions');
        if (event.type === 'transcript') this.send(answer.understood ? 'handled' : 'not-handled', { text: answer.text });
        else if (answer.understood && answer.intent) this.send('intent', { name: answer.intent, entities: Object.entries(answer.slots ?? {}).map(([name, value]) => ({ name, value })), text: answer.text });
        else this.send('not-recognized', { text: answer.text });
        return;
      }
      case 'synthesize':
        await this.synthesize(event);
        return;
      default:
        // Wyoming peers send events for programs we do not have (wake, snd): ignored, as wyoming's own servers do.
        counters.increment('voice.wyoming.ignored');
    }
  }

  private startAudio(event: WyomingEvent): void {
    const format = audioFormat(event.data);
    if (!format) {
      this.options.counters.increment('voice.wyoming.malformed');
      this.send('error', { text: 'audio-start needs rate, width 2 (16-bit PCM) and channels', code: 'apiary-bad-audio' });
      this.audio = undefined;
      return;
    }
    const maxBytes = Math.ceil(this.options.maxUtteranceSeconds * format.rate) * format.width * format.channels;
    this.audio = { format, chunks: [], bytes: 0, maxBytes, overflow: false };
  }

  private addAudio(event: WyomingEvent): void {
    const audio = this.audio;
    if (!audio || audio.overflow || !event.payload) return;
    const format = audioFormat(event.data);
    if (format && (format.rate !== audio.format.rate || format.channels !== audio.format.channels)) {
      this.options.counters.increment('voice.wyoming.malformed');
      this.send('error', { text: 'audio-chunk in another format than its audio-start', code: 'apiary-bad-audio' });
      this.audio = undefined;
      return;
    }
    if (audio.bytes + event.payload.length > audio.maxBytes) {
      // Keep the connection (a satellite that missed its end of speech), drop the utterance.
      audio.overflow = true;
      audio.chunks = [];
      this.options.counters.increment('voice.wyoming.utterance_too_long');
      return;
    }
    audio.chunks.push(event.payload);
    audio.bytes += event.payload.length;
  }

  private async finishAudio(): Promise<void> {
    const audio = this.audio;
    this.audio = undefined;
    if (!audio) return;
    if (audio.overflow) {
      this.send('error', { text: `utterance longer than ${this.options.maxUtteranceSeconds} s`, code: 'apiary-utterance-too-long' });
      return;
    }
    const pcm = Buffer.concat(audio.chunks);
    // An odd trailing byte cannot be a sample: dropped.
    const whole = pcm.subarray(0, pcm.length - (pcm.length % (audio.format.width * audio.format.channels)));
    const tracked = this.server.track();
    try {
      const text = await this.options.handlers.transcribe({ pcm: whole, ...audio.format }, tracked.signal);
      this.options.counters.increment(text ? 'voice.wyoming.transcribed' : 'voice.wyoming.rejected_speech');
      this.send('transcript', { text });
    } finally {
      tracked.done();
    }
  }

  private async synthesize(event: WyomingEvent): Promise<void> {
    const text = typeof event.data.text === 'string' ? event.data.text : undefined;
    const { handlers } = this.options;
    if (text === undefined || !handlers.synthesize) {
      this.send('error', { text: handlers.synthesize ? 'synthesize needs "text", a string' : 'this node has no speech out (voice.tts)', code: 'apiary-no-tts' });
      return;
    }
    const tracked = this.server.track();
    try {
      const audio = await handlers.synthesize(text, tracked.signal);
      const format = { rate: audio.rate, width: audio.width, channels: audio.channels };
      this.send('audio-start', format);
      const step = CHUNK_SAMPLES * audio.width * audio.channels;
      for (let offset = 0; offset < audio.pcm.length; offset += step) this.send('audio-chunk', format, audio.pcm.subarray(offset, offset + step));
      this.send('audio-stop');
      this.options.counters.increment('voice.wyoming.synthesized');
    } finally {
      tracked.done();
    }
  }
}

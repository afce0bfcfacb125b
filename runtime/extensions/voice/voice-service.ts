/**
 * The node's voice: one listen at a time (microphone -> end of speech ->
 * pocketsphinx against the grammar of the node's own intents -> the `ask`
 * command -> espeak-ng -> speaker), speaking (answers, announcements) one
 * sentence at a time, and the same recogniser and speech for the Wyoming
 * endpoint. Questions are answered only through the registry's `ask`
 * command, so a spoken answer is the same as a typed one, and only the words
 * are kept (the ask extension records them); audio is never stored or sent.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import type { CommandRegistry } from '../../commands/command-registry.js';
import type { Counters } from '../../counters.js';
import type { Logger } from '../../log.js';
import type { AskReply } from '../ask/commands.js';
import type { IntentVocabulary } from '../ask/vocabulary.js';
import { AplaySink } from './aplay-sink.js';
import { ArecordSource } from './arecord-source.js';
import { CommandTts } from './command-tts.js';
import type { VoiceConfig } from './config.js';
import { EnergyEndOfSpeech } from './energy-end-of-speech.js';
import { EspeakTts } from './espeak-tts.js';
import { NOT_UNDERSTOOD } from './not-understood.js';
import { PocketsphinxRecogniser } from './pocketsphinx-recogniser.js';
import { resamplePcm } from './resample.js';
import { runSpeechPipeline, type PipelineResult } from './speech-pipeline.js';
import { SPEECH_RATE, type AudioSink, type AudioSource, type Pcm, type Recognition, type TextToSpeech } from './types.js';

export { NOT_UNDERSTOOD } from './not-understood.js';
/** Sentences waiting to be spoken; more are dropped (counted): an alert storm must not queue minutes of speech. */
const MAX_SPEECH_QUEUE = 4;

export interface ListenOutcome {
  readonly heard: string | null;
  readonly intent: string | null;
  readonly answer: string | null;
  /** End of speech to the first sample of the answer, ms (the benchmark's figure). */
  readonly endOfSpeechToAnswerMs: number | null;
  readonly recogniseMs: number | null;
}

export class VoiceService {
  private listening: Promise<ListenOutcome> | undefined;
  private readonly speechQueue: string[] = [];
  private speaking: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private recogniser: { vocabulary: string; recogniser: PocketsphinxRecogniser } | undefined;
  readonly tts: TextToSpeech;

  constructor(private readonly voice: VoiceConfig, private readonly commands: CommandRegistry, private readonly counters: Counters, private readonly logger: Logger) {
    this.tts = voice.tts.engine === 'command' && voice.tts.command
      ? new CommandTts({ command: voice.tts.command })
      : new EspeakTts({ voice: voice.tts.voice, speed: voice.tts.speed });
  }

  get busy(): boolean {
    return this.listening !== undefined;
  }

  /** The recogniser for the node's current vocabulary (channels, rules and neighbours change while it runs): rebuilt only when that changed. */
  async recogniserNow(): Promise<PocketsphinxRecogniser> {
    const outcome = await this.commands.run('intents', {});
    if (!outcome.ok) throw new ApiaryError(ErrorCodes.VOICE_UNAVAILABLE, `the node's intents are not available: ${outcome.error}`, { hint: 'voice needs the ask extension (ask.enabled: true)' });
    const vocabulary = outcome.result as IntentVocabulary;
    const key = JSON.stringify(vocabulary);
    if (this.recogniser?.vocabulary === key) return this.recogniser.recogniser;
    const recogniser = await PocketsphinxRecogniser.create({ vocabulary, ...(this.voice.pocketsphinx.modelDir ? { modelDir: this.voice.pocketsphinx.modelDir } : {}), timeoutMs: this.voice.pocketsphinx.timeout, maxConcurrent: 1 });
    const old = this.recogniser?.recogniser;
    this.recogniser = { vocabulary: key, recogniser };
    await old?.close();
    return recogniser;
  }

  /** The answer to a question in words, through the `ask` command. */
  async ask(question: string): Promise<AskReply> {
    const outcome = await this.commands.run('ask', { question });
    if (!outcome.ok) throw new ApiaryError(ErrorCodes.VOICE_FAILED, `ask: ${outcome.error}`);
    return outcome.result as AskReply;
  }

  /** The words to say for a recognition: its answer, or NOT_UNDERSTOOD. */
  private async answerFor(recognition: Recognition, said: { reply?: AskReply }): Promise<string> {
    if (recognition.kind !== 'intent') {
      this.counters.increment('voice.not_understood');
      return NOT_UNDERSTOOD;
    }
    said.reply = await this.ask(recognition.intent.text);
    return said.reply.speech;
  }

  /**
   * One question from `source` (the voice microphone by default), answered on
   * `sink` (the speaker by default). A second listen while one runs is refused
   * (VOICE_BUSY): there is one microphone.
   */
  listen(options: { source?: AudioSource; sink?: AudioSink | null } = {}): Promise<ListenOutcome> {
    if (this.listening) {
      this.counters.increment('voice.busy');
      return Promise.reject(new ApiaryError(ErrorCodes.VOICE_BUSY, 'the node is already listening', { hint: 'wait for its answer, then ask again' }));
    }
    const run = this.listenOnce(options).finally(() => { this.listening = undefined; });
    this.listening = run;
    return run;
  }

  private async listenOnce(options: { source?: AudioSource; sink?: AudioSink | null }): Promise<ListenOutcome> {
    const recogniser = await this.recogniserNow();
    const source = options.source ?? new ArecordSource({ device: this.voice.input.device, sampleRate: SPEECH_RATE, channels: 1, maxSeconds: this.voice.listenTimeout / 1000 });
    const sink = options.sink === null ? undefined : options.sink ?? new AplaySink({ device: this.voice.output.device });
    const said: { reply?: AskReply } = {};
    this.counters.increment('voice.listens');
    const result: PipelineResult = await runSpeechPipeline(
      { source, endOfSpeech: new EnergyEndOfSpeech(), recogniser, tts: this.tts, ...(sink ? { sink } : {}) },
      (recognition) => this.answerFor(recognition, said),
      { signal: this.abort.signal, maxListenSeconds: this.voice.listenTimeout / 1000 },
    );
    if (result.kind === 'no-speech') {
      this.counters.increment('voice.no_speech');
      return { heard: null, intent: null, answer: null, endOfSpeechToAnswerMs: null, recogniseMs: null };
    }
    const heard = result.recognition.kind === 'intent' ? result.recognition.intent.text : (result.recognition.text ?? null);
    this.logger.info({ heard, intent: said.reply?.intent ?? null, ms: result.timings.endOfSpeechToAnswerMs }, 'voice: answered');
    return {
      heard,
      intent: said.reply?.intent ?? null,
      answer: said.reply?.answer ?? result.answer ?? null,
      endOfSpeechToAnswerMs: result.timings.endOfSpeechToAnswerMs,
      recogniseMs: result.timings.recogniseMs,
    };
  }

  /** Words of a whole utterance (Wyoming): '' when it is not one of the node's questions. */
  async transcribe(audio: Pcm): Promise<string> {
    const recogniser = await this.recogniserNow();
    const mono16k = resamplePcm(audio, SPEECH_RATE);
    const recognition = await recogniser.recognise(mono16k, this.abort.signal);
    return recognition.kind === 'intent' ? recognition.intent.text : '';
  }

  /** Queues `text` to be spoken on the speaker; drops it (counted) when MAX_SPEECH_QUEUE sentences already wait. */
  say(text: string): void {
    if (this.speechQueue.length >= MAX_SPEECH_QUEUE) {
      this.counters.increment('voice.speech_dropped');
      return;
    }
    this.speechQueue.push(text);
    this.speaking ??= this.drain().finally(() => { this.speaking = undefined; });
  }

  private async drain(): Promise<void> {
    const sink = new AplaySink({ device: this.voice.output.device });
    for (let text = this.speechQueue.shift(); text !== undefined; text = this.speechQueue.shift()) {
      if (this.abort.signal.aborted) return;
      try {
        await sink.play(await this.tts.synthesise(text, this.abort.signal), { signal: this.abort.signal });
        this.counters.increment('voice.spoken');
      } catch (err) {
        this.counters.increment('voice.speech_failed');
        this.logger.warn({ err: err instanceof Error ? err.message : String(err) }, 'voice: could not speak');
      }
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.speechQueue.length = 0;
    await Promise.allSettled([this.listening, this.speaking]);
    await this.recogniser?.recogniser.close();
    this.recogniser = undefined;
  }
}

/**
 * `apiary ask`: a question to a running node, typed, spoken into its voice
 * microphone (`--listen`), or from a recording (`--audio file.wav`, the whole
 * speech path run here: end of speech, pocketsphinx against the node's own
 * intents, then the node's `ask` command). `--say` speaks the answer on this
 * machine's speaker, `--out file.wav` writes it. Answers come from the node's
 * `ask` command in every case, so they are the same as over MQTT.
 */
import type { ApiaryConfig } from '../config/schema.js';
import { ApiaryError, ErrorCodes, type ErrorCode } from '../errors.js';
import type { AskReply } from '../extensions/ask/commands.js';
import type { IntentVocabulary } from '../extensions/ask/vocabulary.js';
import { askNode, type NodeOptions } from './node-options.js';

export interface AskCommandOptions extends NodeOptions {
  listen?: boolean;
  audio?: string;
  say?: boolean;
  out?: string;
  json?: boolean;
}

const KNOWN_CODES = new Set<string>(Object.values(ErrorCodes));

/** Speech takes longer than a status: pocketsphinx on a Pi Zero needs seconds. */
const VOICE_TIMEOUT_MS = 60_000;

async function request<T>(options: NodeOptions, command: string, args: Record<string, unknown>): Promise<T> {
  const reply = await askNode(options, command, args);
  if (!reply.ok) throw new ApiaryError(KNOWN_CODES.has(reply.code ?? '') ? (reply.code as ErrorCode) : ErrorCodes.COMMAND_INVALID, reply.error ?? `node ${reply.nodeId} refused ${command}`);
  return reply.result as T;
}

async function speakHere(config: ApiaryConfig, speech: string, options: AskCommandOptions): Promise<void> {
  const { EspeakTts } = await import('../extensions/voice/espeak-tts.js');
  const { CommandTts } = await import('../extensions/voice/command-tts.js');
  const tts = config.voice.tts.engine === 'command' && config.voice.tts.command ? new CommandTts({ command: config.voice.tts.command }) : new EspeakTts({ voice: config.voice.tts.voice, speed: config.voice.tts.speed });
  const pcm = await tts.synthesise(speech);
  if (options.out) {
    const { writeWavFile } = await import('../extensions/voice/wav.js');
    await writeWavFile(options.out, pcm);
    process.stderr.write(`wrote the spoken answer to ${options.out}\n`);
  }
  if (options.say) {
    const { AplaySink } = await import('../extensions/voice/aplay-sink.js');
    await new AplaySink({ device: config.voice.output.device }).play(pcm);
  }
}

export async function askCommand(config: ApiaryConfig, question: string | undefined, options: AskCommandOptions): Promise<void> {
  const modes = [question !== undefined, options.listen === true, options.audio !== undefined].filter(Boolean).length;
  if (modes !== 1) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, modes === 0 ? 'nothing to ask' : 'ask one way at a time', {
      hint: 'apiary ask "how is the hive?" | apiary ask --listen | apiary ask --audio question.wav [--say] [--out answer.wav]',
    });
  }
  const write = (text: string) => process.stdout.write(`${text}\n`);
  if (question !== undefined) {
    const reply = await request<AskReply>(options, 'ask', { question });
    write(options.json ? JSON.stringify(reply, null, 2) : reply.answer);
    if (options.say || options.out) await speakHere(config, reply.speech, options);
    return;
  }
  if (options.listen) {
    if (options.say || options.out) throw new ApiaryError(ErrorCodes.USAGE_INVALID, '--listen answers on the node\'s own speaker', { hint: 'drop --say/--out, or record the question and use --audio' });
    process.stderr.write('listening on the node\'s voice microphone: ask your question\n');
    const outcome = await request<{ heard: string | null; intent: string | null; answer: string | null }>({ ...options, timeout: options.timeout ?? VOICE_TIMEOUT_MS }, 'voice/listen', {});
    write(options.json ? JSON.stringify(outcome, null, 2) : outcome.heard === null && outcome.answer === null ? 'heard nothing' : `heard: ${outcome.heard ?? '(not a question I know)'}\n${outcome.answer ?? ''}`);
    return;
  }
  // --audio: the speech path here, the answer from the node.
  const file = options.audio ?? '';
  const [{ WavFileSource, WavFileSink }, { EnergyEndOfSpeech }, { PocketsphinxRecogniser }, { runSpeechPipeline }, { EspeakTts }, { NOT_UNDERSTOOD }] = await Promise.all([
    import('../extensions/voice/file-audio.js'),
    import('../extensions/voice/energy-end-of-speech.js'),
    import('../extensions/voice/pocketsphinx-recogniser.js'),
    import('../extensions/voice/speech-pipeline.js'),
    import('../extensions/voice/espeak-tts.js'),
    import('../extensions/voice/not-understood.js'),
  ]);
  const source = await WavFileSource.open(file);
  const vocabulary = await request<IntentVocabulary>(options, 'intents', {});
  const recogniser = await PocketsphinxRecogniser.create({ vocabulary, ...(config.voice.pocketsphinx.modelDir ? { modelDir: config.voice.pocketsphinx.modelDir } : {}), timeoutMs: config.voice.pocketsphinx.timeout });
  let reply: AskReply | undefined;
  try {
    process.stderr.write(`recognising ${file}\n`);
    const { AplaySink } = await import('../extensions/voice/aplay-sink.js');
    const sink = options.out ? new WavFileSink(options.out) : options.say ? new AplaySink({ device: config.voice.output.device }) : undefined;
    const result = await runSpeechPipeline(
      { source, endOfSpeech: new EnergyEndOfSpeech(), recogniser, tts: new EspeakTts({ voice: config.voice.tts.voice, speed: config.voice.tts.speed }), ...(sink ? { sink } : {}) },
      async (recognition) => {
        if (recognition.kind !== 'intent') return NOT_UNDERSTOOD;
        reply = await request<AskReply>(options, 'ask', { question: recognition.intent.text });
        return reply.speech;
      },
    );
    if (result.kind === 'no-speech') {
      write(options.json ? JSON.stringify({ heard: null, intent: null, answer: null }, null, 2) : `no speech found in ${file}`);
      process.exitCode = 1;
      return;
    }
    const heard = result.recognition.kind === 'intent' ? result.recognition.intent.text : null;
    const answer = reply?.answer ?? NOT_UNDERSTOOD;
    if (options.json) write(JSON.stringify({ heard, intent: reply?.intent ?? null, answer, timings: result.timings }, null, 2));
    else write(`heard: ${heard ?? '(not a question I know)'}\n${answer}`);
    if (options.out) process.stderr.write(`wrote the spoken answer to ${options.out}\n`);
    if (heard === null) process.exitCode = 1;
  } finally {
    await recogniser.close();
  }
}

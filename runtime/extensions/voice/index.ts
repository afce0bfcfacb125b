/**
 * Talk to the hive (issue 14): speech in and out on the node, push-to-talk,
 * spoken announcements, and a Wyoming endpoint for Home Assistant. Answers
 * come from the `ask` command (the ask extension), so this extension adds
 * only the ears and the mouth. Missing programs or devices are reported
 * (status, doctor) and only what needs them fails: the node runs on.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import { APIARY_VERSION } from '../../core/apiary-node.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { describeError } from '../../errors.js';
import { WyomingAdvert } from '../wyoming/wyoming-mdns.js';
import { WyomingServer } from '../wyoming/wyoming-server.js';
import { declareVoiceCommands } from './commands.js';
import { aptLine, missingVoicePrograms, type VoiceRequirement } from './voice-requirements.js';
import { VoiceService } from './voice-service.js';

const MDNS_PORT = 5353;

export function createVoice(config: ApiaryConfig): Extension {
  const voice = config.voice;
  let service: VoiceService | undefined;
  let wyoming: WyomingServer | undefined;
  let advert: WyomingAdvert | undefined;
  let missing: VoiceRequirement[] = [];
  let lastListen: unknown;

  function status(): Record<string, unknown> {
    return {
      listening: service?.busy ?? false,
      input: voice.input.device,
      output: voice.output.device,
      trigger: voice.trigger.button ? { button: voice.trigger.button } : 'commands only',
      missing: missing.map((m) => ({ purpose: m.purpose, programs: m.programs, packages: m.packages })),
      ...(missing.length > 0 ? { fix: aptLine(missing) } : {}),
      ...(wyoming ? { wyoming: { host: voice.wyoming.host, port: wyoming.port, mdns: voice.wyoming.mdns } } : {}),
      ...(lastListen !== undefined ? { last: lastListen } : {}),
    };
  }

  return {
    name: 'voice',
    async start(ctx: NodeContext) {
      missing = await missingVoicePrograms(voice);
      if (missing.length > 0) ctx.logger.warn({ missing: missing.map((m) => m.purpose), fix: aptLine(missing) }, 'voice: programs missing; what needs them is off (apiary doctor)');
      const s = new VoiceService(voice, ctx.commands, ctx.counters, ctx.logger);
      service = s;
      const listen = async () => {
        const outcome = await s.listen();
        lastListen = { ...outcome, t: ctx.clock.now() };
        return outcome;
      };
      declareVoiceCommands(ctx.commands, { listen, say: (text) => { s.say(text); return { queued: true }; }, status });
      if (voice.speakAnnouncements) ctx.events.on('announcement', (a) => { s.say(a.speech); });
      if (voice.trigger.button) {
        // Push-to-talk: the device's own button (devices/linux/gpio-button.ts owns the GPIO line).
        const name = voice.trigger.button;
        ctx.events.on('button', (event) => {
          if (event.name !== name || event.action !== 'press') return;
          ctx.counters.increment('voice.trigger.presses');
          // A press while listening is refused by listen (counted as voice.busy).
          listen().catch((err: unknown) => ctx.logger.warn({ err: describeError(err) }, 'voice: push-to-talk listen failed'));
        });
      }
      if (voice.wyoming.enabled) {
        const w = voice.wyoming;
        wyoming = new WyomingServer({
          host: w.host,
          port: w.port,
          maxConnections: w.maxConnections,
          maxUtteranceSeconds: w.maxUtterance / 1000,
          idleTimeoutMs: w.idleTimeout,
          languages: ['en'],
          name: ctx.identity.nodeId,
          version: APIARY_VERSION,
          handlers: {
            transcribe: (audio) => s.transcribe({ sampleRate: audio.rate, channels: audio.channels, samples: new Int16Array(audio.pcm.buffer.slice(audio.pcm.byteOffset, audio.pcm.byteOffset + audio.pcm.length)) }),
            ask: async (text) => {
              const reply = await s.ask(text);
              return { understood: reply.intent !== 'unknown', intent: reply.intent, slots: reply.slots, text: reply.answer, speech: reply.speech };
            },
            synthesize: async (text, signal) => {
              const pcm = await s.tts.synthesise(text, signal);
              return { pcm: Buffer.from(pcm.samples.buffer, pcm.samples.byteOffset, pcm.samples.byteLength), rate: pcm.sampleRate, width: 2, channels: pcm.channels };
            },
          },
          counters: ctx.counters,
          logger: ctx.logger,
        });
        await wyoming.start();
        if (w.mdns) {
          advert = new WyomingAdvert({ name: `apiary-${ctx.identity.nodeId}`, port: wyoming.port, nodeId: ctx.identity.nodeId, interface: w.mdnsInterface, mdnsPort: MDNS_PORT, counters: ctx.counters, logger: ctx.logger });
          await advert.start();
        }
      }
    },
    async stop() {
      await advert?.stop();
      await wyoming?.stop();
      await service?.stop();
    },
    status: () => (service ? { voice: status() } : {}),
  };
}

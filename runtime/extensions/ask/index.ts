/**
 * Ask the hive, in text: the `ask` command (and so `apiary ask`, the MQTT
 * `cmd/ask` topic, MCP later) matches a question to an intent of the node's
 * catalogue and answers it from registry commands only. Questions and
 * answers are kept as text in the node's feed where `ask.record` says;
 * decisions of the severities `ask.announce` lists are announced as they are
 * raised (the `announcement` event, for the voice front to speak).
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { announce, announced } from './announce.js';
import { answer } from './answers.js';
import { buildVocabulary, INTENTS, type Catalogue } from './catalogue.js';
import { declareAskCommands, type AskReply } from './commands.js';
import { memberNames, NeighbourDecisions, rangeReadings, recentReadings } from './node-sources.js';
import { TextMatcher } from './text-matcher.js';

/** The feed entry type of a question and its answer (text only). */
export const QUESTION_ENTRY_TYPE = 'question';

export function createAsk(config: ApiaryConfig): Extension {
  /** Built per question: channels, neighbours and models change while the node runs, and this is cheap. */
  function catalogue(context: NodeContext): Catalogue {
    return buildVocabulary({
      channels: context.channels(),
      rules: config.decisions,
      neighbours: [...memberNames(context)].map(([nodeId, name]) => ({ nodeId, name })),
      mesh: context.mesh !== undefined,
      modelLabels: context.models.models().flatMap((m) => m.manifest.outputs.flatMap((o) => o.labels)),
    });
  }

  /** Keeps the question and its answer, as text, where `ask.record` says. */
  async function record(context: NodeContext, reply: AskReply): Promise<void> {
    const { mesh } = context;
    if (!mesh || config.ask.record === 'off') return;
    const t = context.clock.now();
    const body = { question: reply.question, intent: reply.intent, slots: reply.slots, answer: reply.answer, t, time: new Date(t).toISOString() };
    if (config.ask.record === 'shared') await mesh.append(QUESTION_ENTRY_TYPE, body);
    else await mesh.appendPrivate(QUESTION_ENTRY_TYPE, body, []);
    await context.events.emit('feed-append', QUESTION_ENTRY_TYPE);
  }

  return {
    name: 'ask',
    start(context) {
      const neighbours = context.mesh ? new NeighbourDecisions(context) : undefined;
      if (neighbours) {
        context.events.on('feed-entry', (entry) => neighbours.onEntry(entry));
        context.events.on('started', () => context.track(neighbours.seed()));
      }
      declareAskCommands(context.commands, {
        ask: async (question) => {
          const built = catalogue(context);
          const recognised = new TextMatcher(built).match(question);
          const said = await answer(recognised, built, (name, args) => context.commands.run(name, args));
          const reply: AskReply = { question, intent: recognised.intent, slots: recognised.slots, answer: said.text, speech: said.speech, sources: said.sources };
          context.counters.increment('ask.questions');
          if (recognised.intent === INTENTS.unknown) context.counters.increment('ask.unknown');
          await record(context, reply);
          return reply;
        },
        intents: () => catalogue(context).vocabulary,
        recentReadings: (channel, limit) => recentReadings(context, channel, limit),
        rangeReadings: (channel, from, to, limit) => rangeReadings(context, channel, from, to, limit),
        neighbourDecisions: neighbours ? (limit) => Promise.resolve(neighbours.list(limit)) : undefined,
      });
      context.events.on('decision', async (decision) => {
        if (!announced(decision, config.ask.announce)) return;
        const channel = decision.input.startsWith('reading.') ? decision.input.slice('reading.'.length) : undefined;
        const unit = context.channels().find((c) => c.name === channel)?.unit;
        context.counters.increment('ask.announced');
        await context.events.emit('announcement', { rule: decision.rule, severity: decision.severity, t: decision.t, ...announce(decision, unit) });
      });
      return Promise.resolve();
    },
    stop: () => Promise.resolve(),
  };
}

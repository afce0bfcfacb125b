/**
 * `ask`, `intents`, and the two read-only commands answers read besides
 * `status`: `readings/recent` (a channel's recent readings, for trends) and
 * `mesh/decisions` (the neighbours' latest decisions). Light on purpose:
 * `apiary commands` declares them without loading the extension.
 */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';
import type { NeighbourDecision, RecentReadings, Source } from './evidence.js';
import type { IntentVocabulary } from './vocabulary.js';

/** Longest question taken: a spoken sentence, not a document. */
export const MAX_QUESTION_CHARS = 200;
const EXAMPLE = 'like "how is the hive?"';
const CHANNEL = z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, { error: 'channel: a reading channel name, like temperature (see `apiary status`)' });
/** A time as ms since the epoch, or an ISO 8601 string (as the CLI and MCP clients send it). */
const TIME = z.union([z.number().int().nonnegative(), z.iso.datetime({ offset: true }).transform((iso) => Date.parse(iso))], { error: 'expected a time: ms since the epoch, or an ISO time like 2026-12-01T00:00:00Z' });

/** The reply of `ask`. */
export interface AskReply {
  readonly question: string;
  readonly intent: string;
  /** Slot -> spoken value (`channel` -> `brood temperature`). */
  readonly slots: Readonly<Record<string, string>>;
  /** The answer to read. */
  readonly answer: string;
  /** The same answer worded for a speech engine (units spelled out). */
  readonly speech: string;
  /** Each registry command and value the answer used. */
  readonly sources: readonly Source[];
}

export interface AskParts {
  ask(question: string): Promise<AskReply>;
  intents(): IntentVocabulary;
  recentReadings(channel: string, limit: number): Promise<RecentReadings>;
  rangeReadings(channel: string, from: number, to: number, limit: number): Promise<RecentReadings & { truncated: boolean }>;
  /** Undefined when the mesh is off. */
  neighbourDecisions: ((limit: number) => Promise<NeighbourDecision[]>) | undefined;
}

const OFF = 'questions are off on this node (ask.enabled)';

export function declareAskCommands(registry: CommandRegistry, parts?: AskParts): void {
  const unavailable = () => (parts ? undefined : OFF);
  registry.define('ask', {
    description: "answer a question in words (\"how is the hive?\", \"is it going to swarm?\") from the node's own readings, models, decisions and mesh",
    args: z.strictObject({
      question: z.string({ error: `expected the question as text, ${EXAMPLE}` })
        .trim()
        .min(1, { error: `the question is empty: ask one, ${EXAMPLE}` })
        .max(MAX_QUESTION_CHARS, { error: `at most ${MAX_QUESTION_CHARS} characters: ask one short question, ${EXAMPLE}` })
        .describe('the question, in English'),
    }),
    unavailable,
    handler: ({ question }) => parts?.ask(question),
  });
  registry.define('intents', {
    description: 'the questions this node understands: its intents, their phrasings (JSGF) and the channel, rule and neighbour names in them',
    args: z.object({}),
    unavailable,
    handler: () => parts?.intents(),
  });
  registry.define('readings/recent', {
    description: "one channel's most recent stored readings, oldest first (for trends)",
    args: z.strictObject({
      channel: CHANNEL.describe('the channel, like weight'),
      limit: z.number().int().min(1).max(500).default(60).describe('at most this many readings'),
    }),
    unavailable,
    handler: ({ channel, limit }) => parts?.recentReadings(channel, limit),
  });
  registry.define('readings/range', {
    description: "one channel's stored readings within a time range [from, to], oldest first; truncated when there are more",
    args: z.strictObject({
      channel: CHANNEL.describe('the channel, like weight'),
      from: TIME.describe('from this time: ms since the epoch or an ISO time'),
      to: TIME.optional().describe('up to this time (default: now)'),
      limit: z.number().int().min(1).max(2000).default(500).describe('at most this many readings'),
    }).refine((a) => a.to === undefined || a.to >= a.from, { error: 'to: must not be before from', path: ['to'] }),
    unavailable,
    handler: ({ channel, from, to, limit }) => parts?.rangeReadings(channel, from, to ?? Number.MAX_SAFE_INTEGER, limit),
  });
  registry.define('mesh/decisions', {
    description: "each other node's latest decision per rule, from the signed feeds this node holds and may read",
    args: z.strictObject({ limit: z.number().int().min(1).max(500).default(100).describe('at most this many decisions, newest first') }),
    unavailable: () => (!parts ? OFF : parts.neighbourDecisions ? undefined : 'the mesh is off on this node (mesh.enabled), so it holds no other node\'s feed'),
    handler: ({ limit }) => parts?.neighbourDecisions?.(limit),
  });
}

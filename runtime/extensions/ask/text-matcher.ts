/**
 * Typed questions to intents. The phrasings are the vocabulary's JSGF
 * patterns (jsgf.ts), the same the speech front's grammar is made of; what
 * is added here is only what typing adds to speaking: case, punctuation,
 * contractions ("how's"), US spellings, and filler words ("hey hive",
 * "please", "can you tell me"). A question that matches no pattern is
 * `unknown`: nothing is guessed.
 */
import { INTENTS, type Catalogue } from './catalogue.js';
import { matchExpansion, parseExpansion, type Expansion, type SlotWords } from './jsgf.js';
import type { RecognisedIntent } from './vocabulary.js';

const CONTRACTIONS: Readonly<Record<string, string>> = {
  "how's": 'how is', "what's": 'what is', "it's": 'it is', "that's": 'that is', "there's": 'there is', "who's": 'who is',
  "where's": 'where is', "how're": 'how are', "what're": 'what are', "they're": 'they are', "isn't": 'is not', "aren't": 'are not',
  "won't": 'will not', "can't": 'can not', "don't": 'do not', "doesn't": 'does not', "didn't": 'did not', "i'm": 'i am', "what'll": 'what will',
};

/** Spellings typed in place of the vocabulary's. */
const SPELLINGS: Readonly<Record<string, string>> = { neighbor: 'neighbour', neighbors: 'neighbours', temp: 'temperature', alarms: 'alarm', alerts: 'alert', warnings: 'warning' };

/** Words that carry nothing wherever they stand. */
const FILLER_WORDS = new Set(['please', 'pls', 'um', 'uhm', 'uh', 'er', 'erm', 'hmm', 'just', 'actually', 'really', 'currently', 'now', 'today', 'then', 'again', 'exactly', 'thanks']);

/** Ways to start a question, or to address the hive, that carry nothing. */
const LEADING = [
  'hey hive', 'hi hive', 'hello hive', 'ok hive', 'okay hive', 'hive', 'hey', 'hi', 'hello', 'ok', 'okay', 'so', 'well', 'and',
  'can you tell me', 'could you tell me', 'would you tell me', 'tell me', 'do you know', 'i want to know', 'i would like to know', 'i wonder',
  'can you', 'could you', 'say',
].map((phrase) => phrase.split(' '));
const TRAILING = [['thank', 'you'], ['thanks'], ['please']];

/** Lower-case words, contractions opened, possessives and punctuation dropped; commas split the text into parts. */
export function questionParts(text: string): string[][] {
  return text
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc`]/g, "'")
    .split(/[,;:!?.]+|\s-\s/)
    .map((part) => part
      .split(/[\s-]+/)
      .flatMap((raw) => {
        const word = raw.replace(/^'+|[^a-z0-9']/g, '');
        const opened = CONTRACTIONS[word] ?? word.replace(/'s$|'$/, '').replace(/'/g, '');
        return opened.split(' ');
      })
      .map((w) => SPELLINGS[w] ?? w)
      .filter((w) => w !== ''))
    .filter((words) => words.length > 0);
}

const startsWith = (words: readonly string[], phrase: readonly string[]) => phrase.length <= words.length && phrase.every((w, i) => words[i] === w);
const endsWith = (words: readonly string[], phrase: readonly string[]) => phrase.length <= words.length && phrase.every((w, i) => words[words.length - phrase.length + i] === w);

/** Filler words dropped, and the phrases that open or close a question around it. */
function withoutFiller(words: readonly string[]): string[] {
  let rest = words.filter((w) => !FILLER_WORDS.has(w));
  for (let changed = true; changed;) {
    changed = false;
    const lead = LEADING.find((phrase) => phrase.length < rest.length && startsWith(rest, phrase));
    if (lead) { rest = rest.slice(lead.length); changed = true; }
    const trail = TRAILING.find((phrase) => phrase.length < rest.length && endsWith(rest, phrase));
    if (trail) { rest = rest.slice(0, rest.length - trail.length); changed = true; }
  }
  return rest;
}

/** A part between commas that only addresses the hive or is polite ("hey hive,", ", please"). */
const isAddress = (words: readonly string[]) =>
  words.every((w) => FILLER_WORDS.has(w)) || [...LEADING, ...TRAILING].some((phrase) => phrase.length === words.length && startsWith(words, phrase));

interface CompiledIntent {
  readonly name: string;
  readonly patterns: readonly Expansion[];
}

export class TextMatcher {
  private readonly intents: readonly CompiledIntent[];
  private readonly slots: SlotWords;

  constructor(private readonly catalogue: Catalogue) {
    const { vocabulary } = catalogue;
    this.intents = vocabulary.intents.map((intent) => ({ name: intent.name, patterns: intent.patterns.map(parseExpansion) }));
    this.slots = new Map(Object.entries(vocabulary.slots).map(([slot, values]) => [slot, values.map((v) => v.split(' '))]));
  }

  /** The intent of a typed question, or `unknown`; slots hold the spoken values (see `ids`). */
  match(text: string): RecognisedIntent {
    const parts = questionParts(text);
    const spoken = parts.filter((words) => !isAddress(words)).flat();
    // As typed first, then without the address and the filler: the patterns decide, the tolerance only removes.
    const candidates = [parts.flat(), spoken, withoutFiller(spoken)];
    for (const words of candidates) {
      if (words.length === 0) continue;
      for (const intent of this.intents) {
        for (const pattern of intent.patterns) {
          const slots = matchExpansion(pattern, words, this.slots);
          if (slots) return { text: text.trim(), intent: intent.name, slots };
        }
      }
    }
    return { text: text.trim(), intent: INTENTS.unknown, slots: {} };
  }

  /** The id a slot's spoken value stands for (`brood temperature` -> `brood_temp`). */
  idOf(slot: string, spoken: string | undefined): string | undefined {
    return spoken === undefined ? undefined : this.catalogue.ids[slot]?.[spoken];
  }
}

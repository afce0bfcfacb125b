/**
 * From an IntentVocabulary to a JSGF grammar for pocketsphinx, and from a
 * recognised sentence back to its intent and slot values.
 *
 * The grammar has one public rule, `<question>`, the alternatives of one
 * private rule per intent (pocketsphinx decodes against the first public rule
 * only: with one public rule per intent every other intent would be out of
 * grammar), and one private rule per slot. Recognition can only produce a
 * sentence of the grammar, so the way back is exact: every pattern is expanded
 * into its sentences, with the slot values each one used, and the recognised
 * words are looked up.
 *
 * Words the recogniser's dictionary lacks cannot be in the grammar (the
 * decoder refuses it): a slot value or a pattern with such a word (a
 * neighbour called "Bramblewick") is left out and reported in `omitted`, not
 * fatal; only a vocabulary with nothing left to say throws.
 */
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { parseExpansion, SLOT_NAME, WORD, type Expansion } from '../ask/jsgf.js';
import type { IntentVocabulary, RecognisedIntent } from '../ask/vocabulary.js';

/** Sentences per intent beyond which the vocabulary is refused (slots multiply). */
export const MAX_SENTENCES = 20_000;

/** Parses one pattern of the vocabulary's JSGF subset: the text front's parser (runtime/extensions/ask/jsgf.ts). */
export const parsePattern = parseExpansion;

export interface Sentence {
  readonly words: readonly string[];
  readonly slots: Readonly<Record<string, string>>;
}

/** Every sentence `tree` can say, with the slot values it used. */
export function expandTree(tree: Expansion, slots: Readonly<Record<string, readonly string[]>>, limit = MAX_SENTENCES): Sentence[] {
  const go = (e: Expansion): Sentence[] => {
    switch (e.kind) {
      case 'word':
        return [{ words: [e.word], slots: {} }];
      case 'slot': {
        const values = slots[e.slot];
        if (values === undefined) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `intent pattern uses <${e.slot}>, which the vocabulary has no slot for`);
        return values.map((v) => ({ words: v.split(' '), slots: { [e.slot]: v } }));
      }
      case 'opt':
        return [{ words: [], slots: {} }, ...go(e.item)];
      case 'alt':
        return e.options.flatMap(go);
      case 'seq': {
        let acc: Sentence[] = [{ words: [], slots: {} }];
        for (const item of e.items) {
          const next = go(item);
          if (acc.length * next.length > limit) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `an intent pattern expands to over ${limit} sentences`, { hint: 'fewer slot values or optional words' });
          acc = acc.flatMap((a) => next.map((b) => ({ words: [...a.words, ...b.words], slots: { ...a.slots, ...b.slots } })));
        }
        return acc;
      }
    }
  };
  return go(tree);
}

/** The sentences of every pattern of every intent, with the intent's name. */
/** The phrasings of an intent the speech grammar uses (vocabulary.ts, `spoken`). */
export function spokenPatterns(spec: IntentVocabulary['intents'][number]): readonly string[] {
  return spec.spoken ?? spec.patterns;
}

export function expandPatterns(vocabulary: IntentVocabulary): { intent: string; sentence: Sentence }[] {
  return vocabulary.intents.flatMap((spec) => spokenPatterns(spec).flatMap((p) => expandTree(parsePattern(p), vocabulary.slots).map((sentence) => ({ intent: spec.name, sentence }))));
}

export function normaliseWords(text: string): string {
  return text.toLowerCase().replace(/[^a-z'\s]/g, ' ').trim().split(/\s+/).filter(Boolean).join(' ');
}

/** Recognised words -> intent, exact: the grammar only produces its own sentences. The first intent listed wins a sentence two share. */
export class SentenceMatcher {
  private readonly table = new Map<string, { intent: string; slots: Readonly<Record<string, string>> }>();

  constructor(vocabulary: IntentVocabulary) {
    for (const { intent, sentence } of expandPatterns(vocabulary)) {
      const key = sentence.words.join(' ');
      if (!this.table.has(key)) this.table.set(key, { intent, slots: sentence.slots });
    }
  }

  get size(): number {
    return this.table.size;
  }

  match(text: string): RecognisedIntent | undefined {
    const key = normaliseWords(text);
    const hit = this.table.get(key);
    return hit ? { text: key, intent: hit.intent, slots: hit.slots } : undefined;
  }
}

export interface Grammar {
  /** The JSGF text. */
  readonly text: string;
  /** The public rule to decode against. */
  readonly topRule: string;
  /** The vocabulary as it went in: slot values with unknown words removed. */
  readonly vocabulary: IntentVocabulary;
  /** What was left out, and why (for logs and `apiary doctor`). */
  readonly omitted: readonly string[];
}

export const TOP_RULE = 'question';

function toJsgf(e: Expansion, slotRule: (name: string) => string): string {
  switch (e.kind) {
    case 'word':
      return e.word;
    case 'slot':
      return `<${slotRule(e.slot)}>`;
    case 'opt':
      return `[ ${toJsgf(e.item, slotRule)} ]`;
    case 'alt':
      return `( ${e.options.map((o) => toJsgf(o, slotRule)).join(' | ')} )`;
    case 'seq':
      return e.items.map((i) => toJsgf(i, slotRule)).join(' ');
  }
}

function words(e: Expansion): string[] {
  switch (e.kind) {
    case 'word':
      return [e.word];
    case 'slot':
      return [];
    case 'opt':
      return words(e.item);
    case 'alt':
      return e.options.flatMap(words);
    case 'seq':
      return e.items.flatMap(words);
  }
}

/**
 * The grammar for `vocabulary`. `known` says whether the recogniser's
 * dictionary has a word (default: every word is known).
 */
export function buildGrammar(vocabulary: IntentVocabulary, known: (word: string) => boolean = () => true): Grammar {
  const omitted: string[] = [];
  const slots: Record<string, string[]> = {};
  for (const [name, values] of Object.entries(vocabulary.slots)) {
    if (!SLOT_NAME.test(name)) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, `vocabulary slot name ${JSON.stringify(name)} is not lower-case letters, digits, _ and -`);
    const kept = new Set<string>();
    for (const value of values) {
      // Lower case only: dropping a digit or a sign would make "Hive 7" the neighbour "hive".
      const spoken = value.toLowerCase().trim().split(/\s+/).filter(Boolean);
      const notWords = spoken.filter((w) => !WORD.test(w));
      const unknown = spoken.filter((w) => WORD.test(w) && !known(w));
      const why = spoken.length === 0 ? ['no words'] : [];
      if (notWords.length > 0) why.push(`not spoken words: ${notWords.join(', ')}`);
      if (unknown.length > 0) why.push(`not in the dictionary: ${unknown.join(', ')}`);
      if (why.length > 0) omitted.push(`<${name}> ${JSON.stringify(value)}: ${why.join('; ')}`);
      else kept.add(spoken.join(' '));
    }
    slots[name] = [...kept];
  }
  // JSGF rule names are safest as letters, digits and _: a slot may be named with '-'.
  const slotRule = (name: string) => `slot_${name.replace(/-/g, '_')}`;
  const lines = ['#JSGF V1.0;', 'grammar apiary;', ''];
  const intentRules: string[] = [];
  const usedSlots = new Set<string>();
  const intents = vocabulary.intents.flatMap((spec, index) => {
    const patterns = spokenPatterns(spec);
    const trees = patterns.map(parsePattern);
    // A pattern with a word the dictionary lacks cannot be decoded, and one whose slot has no values left can say
    // nothing: each is dropped (and reported) rather than failing the whole grammar.
    const usable = trees.filter((t, i) => {
      const unknown = [...new Set(words(t))].filter((w) => !known(w));
      if (unknown.length > 0) omitted.push(`intent ${spec.name} pattern ${JSON.stringify(patterns[i])}: not in the dictionary: ${unknown.join(', ')}`);
      return unknown.length === 0 && expandTree(t, slots).length > 0;
    });
    if (usable.length === 0) {
      omitted.push(`intent ${spec.name}: no pattern left to say`);
      return [];
    }
    const rule = `intent_${index}`;
    intentRules.push(`<${rule}>`);
    const slotNames = (e: Expansion): string[] => (e.kind === 'slot' ? [e.slot] : e.kind === 'seq' ? e.items.flatMap(slotNames) : e.kind === 'alt' ? e.options.flatMap(slotNames) : e.kind === 'opt' ? slotNames(e.item) : []);
    for (const t of usable) for (const s of slotNames(t)) usedSlots.add(s);
    lines.push(`<${rule}> = ${usable.map((t) => `( ${toJsgf(t, slotRule)} )`).join(' | ')}; // ${spec.name}`);
    // What the grammar holds: the spoken phrasings that could be said, as the intent's patterns.
    return [{ name: spec.name, commands: spec.commands, patterns: patterns.filter((_, i) => usable.includes(trees[i] as Expansion)) }];
  });
  if (intentRules.length === 0) throw new ApiaryError(ErrorCodes.CONFIG_INVALID, 'the vocabulary has no intent that can be said', { hint: omitted.join('; ') });
  for (const name of [...usedSlots].sort()) lines.push(`<${slotRule(name)}> = ${(slots[name] ?? []).join(' | ')};`);
  lines.splice(3, 0, `public <${TOP_RULE}> = ${intentRules.join(' | ')};`);
  return { text: `${lines.join('\n')}\n`, topRule: TOP_RULE, vocabulary: { intents, slots }, omitted };
}

/**
 * The JSGF expansions of vocabulary.ts, parsed once and matched against the
 * words of a typed question. The same patterns make the speech front's
 * grammar, so a question typed as it would be spoken matches exactly what the
 * recogniser would accept; the tolerance for typing (filler words,
 * contractions) is in text-matcher.ts, not here.
 */

import { ApiaryError, ErrorCodes } from '../../errors.js';

export type Expansion =
  | { readonly kind: 'word'; readonly word: string }
  | { readonly kind: 'slot'; readonly slot: string }
  | { readonly kind: 'seq'; readonly items: readonly Expansion[] }
  | { readonly kind: 'alt'; readonly options: readonly Expansion[] }
  | { readonly kind: 'opt'; readonly item: Expansion };

/** A spoken word of a pattern or slot value, and a slot's name. */
export const WORD = /^[a-z][a-z']*$/;
export const SLOT_NAME = /^[a-z][a-z0-9_-]*$/;

function patternError(pattern: string, message: string): ApiaryError {
  return new ApiaryError(ErrorCodes.CONFIG_INVALID, `intent pattern ${JSON.stringify(pattern)}: ${message}`, {
    hint: 'patterns are lower-case words, ( a | b ), [ optional ] and <slot> (runtime/extensions/ask/vocabulary.ts)',
  });
}

/**
 * Parses one pattern of the vocabulary's JSGF subset (both fronts use this
 * one parser); anything outside it is a programming error in the catalogue:
 * APIARY_CONFIG_INVALID naming the pattern.
 */
export function parseExpansion(pattern: string): Expansion {
  const tokens = pattern.match(/<[^<>\s]*>|[()[\]|]|[^\s()[\]|<>]+|[<>]/g) ?? [];
  let i = 0;
  const alt = (close: string | undefined): Expansion => {
    const options: Expansion[] = [seq(close)];
    while (tokens[i] === '|') {
      i++;
      options.push(seq(close));
    }
    if (close !== undefined) {
      if (tokens[i] !== close) throw patternError(pattern, `expected ${JSON.stringify(close)}`);
      i++;
    }
    return options.length === 1 ? (options[0] as Expansion) : { kind: 'alt', options };
  };
  const seq = (close: string | undefined): Expansion => {
    const items: Expansion[] = [];
    for (let t = tokens[i]; t !== undefined && t !== '|' && t !== close; t = tokens[i]) {
      i++;
      if (t === '(') items.push(alt(')'));
      else if (t === '[') items.push({ kind: 'opt', item: alt(']') });
      else if (t.startsWith('<') && t.endsWith('>') && SLOT_NAME.test(t.slice(1, -1))) items.push({ kind: 'slot', slot: t.slice(1, -1) });
      else if (WORD.test(t)) items.push({ kind: 'word', word: t });
      else throw patternError(pattern, `unexpected ${JSON.stringify(t)}`);
    }
    if (items.length === 0) throw patternError(pattern, 'an empty alternative');
    return items.length === 1 ? (items[0] as Expansion) : { kind: 'seq', items };
  };
  const tree = alt(undefined);
  if (i !== tokens.length) throw patternError(pattern, `unexpected ${JSON.stringify(tokens[i])}`);
  return tree;
}

/** Slot name -> its values, each as words. */
export type SlotWords = ReadonlyMap<string, readonly (readonly string[])[]>;

interface State {
  readonly at: number;
  readonly slots: Readonly<Record<string, string>>;
}

/** Every way `e` can consume words from each of `states` (a small grammar: the state sets stay tiny). */
function step(e: Expansion, words: readonly string[], states: readonly State[], slots: SlotWords): State[] {
  switch (e.kind) {
    case 'word':
      return states.filter((s) => words[s.at] === e.word).map((s) => ({ at: s.at + 1, slots: s.slots }));
    case 'slot': {
      const out: State[] = [];
      for (const s of states) {
        for (const value of slots.get(e.slot) ?? []) {
          if (value.length > 0 && value.every((w, k) => words[s.at + k] === w)) out.push({ at: s.at + value.length, slots: { ...s.slots, [e.slot]: value.join(' ') } });
        }
      }
      return out;
    }
    case 'seq':
      return e.items.reduce<State[]>((acc, item) => (acc.length === 0 ? acc : step(item, words, acc, slots)), [...states]);
    case 'alt':
      return e.options.flatMap((option) => step(option, words, states, slots));
    case 'opt':
      return [...states, ...step(e.item, words, states, slots)];
  }
}

/** The slot values if `e` matches all of `words`, else undefined. */
export function matchExpansion(e: Expansion, words: readonly string[], slots: SlotWords): Record<string, string> | undefined {
  const done = step(e, words, [{ at: 0, slots: {} }], slots).find((s) => s.at === words.length);
  return done ? { ...done.slots } : undefined;
}

/** The words an expansion uses (slot values apart): the text front's dictionary of what a question may contain. */
export function wordsOf(e: Expansion, into = new Set<string>()): Set<string> {
  switch (e.kind) {
    case 'word': into.add(e.word); break;
    case 'slot': break;
    case 'seq': for (const item of e.items) wordsOf(item, into); break;
    case 'alt': for (const option of e.options) wordsOf(option, into); break;
    case 'opt': wordsOf(e.item, into); break;
  }
  return into;
}

/**
 * The JSGF expansions of vocabulary.ts, parsed once and matched against the
 * words of a typed question. The same patterns make the speech front's
 * grammar, so a question typed as it would be spoken matches exactly what the
 * recogniser would accept; the tolerance for typing (filler words,
 * contractions) is in text-matcher.ts, not here.
 */

export type Expansion =
  | { readonly kind: 'word'; readonly word: string }
  | { readonly kind: 'slot'; readonly slot: string }
  | { readonly kind: 'seq'; readonly items: readonly Expansion[] }
  | { readonly kind: 'alt'; readonly options: readonly Expansion[] }
  | { readonly kind: 'opt'; readonly item: Expansion };

const TOKEN = /\s*(<[a-z][a-z0-9-]*>|[()[\]|]|[a-z][a-z']*)\s*/y;

/** Parses one expansion; throws (a programming error in the catalogue) on anything outside the subset vocabulary.ts allows. */
export function parseExpansion(pattern: string): Expansion {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < pattern.length) {
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(pattern);
    if (!match?.[1]) {
      if (pattern.slice(at).trim() === '') break;
      throw new Error(`JSGF pattern "${pattern}": unexpected text at ${at}: "${pattern.slice(at)}"`);
    }
    tokens.push(match[1]);
  }
  let i = 0;
  const fail = (why: string): never => { throw new Error(`JSGF pattern "${pattern}": ${why}`); };

  /** alternatives := sequence ( '|' sequence )* */
  function alternatives(): Expansion {
    const options = [sequence()];
    while (tokens[i] === '|') {
      i += 1;
      options.push(sequence());
    }
    return options.length === 1 ? (options[0] as Expansion) : { kind: 'alt', options };
  }

  function sequence(): Expansion {
    const items: Expansion[] = [];
    for (let t = tokens[i]; t !== undefined && t !== '|' && t !== ')' && t !== ']'; t = tokens[i]) {
      i += 1;
      if (t === '(' || t === '[') {
        const inner = alternatives();
        const close = t === '(' ? ')' : ']';
        if (tokens[i] !== close) fail(`"${t}" is not closed by "${close}"`);
        i += 1;
        items.push(t === '(' ? inner : { kind: 'opt', item: inner });
      } else if (t.startsWith('<')) {
        items.push({ kind: 'slot', slot: t.slice(1, -1) });
      } else {
        items.push({ kind: 'word', word: t });
      }
    }
    if (items.length === 0) fail('an empty alternative or group');
    return items.length === 1 ? (items[0] as Expansion) : { kind: 'seq', items };
  }

  const root = alternatives();
  if (i !== tokens.length) fail(`unexpected "${tokens[i] ?? ''}"`);
  return root;
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

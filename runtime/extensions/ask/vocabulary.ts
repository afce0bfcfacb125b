/**
 * What a node can be asked, as data shared by the text front (`apiary ask`,
 * the `ask` command) and the speech front (the recogniser's grammar).
 *
 * Patterns are JSGF rule expansions (W3C "JSpeech Grammar Format", 2000,
 * https://www.w3.org/TR/jsgf/), restricted to what both fronts need:
 *   - lower-case words separated by spaces;
 *   - `( a | b c )` alternatives;
 *   - `[ optional words ]`;
 *   - `<slot>` a reference to a slot of the vocabulary (`<channel>`, `<rule>`, `<neighbour>`),
 *     whose values are the node's own channel, rule and neighbour names as spoken words.
 * The speech front writes them into a JSGF grammar as they are (so out-of-grammar
 * speech is rejected, not forced into a question); the text front turns them into
 * matchers for typed questions.
 */

/** One kind of question: its phrasings, and the registry commands its answer is built from. */
export interface IntentSpec {
  /** Stable name: `hive-status`, `swarm-risk`, `weight`, `why`, `neighbours`, `reading`, ... */
  readonly name: string;
  /** JSGF expansions, as above: every phrasing a typed question may take. */
  readonly patterns: readonly string[];
  /**
   * The phrasings the speech grammar is made of, when fewer than `patterns`
   * (each also matched by `patterns`): a grammar decoder does best on a
   * small grammar, and optional tails or one-word patterns invite it to
   * force unrelated speech into a question. Default: `patterns`.
   */
  readonly spoken?: readonly string[];
  /** Registry commands the answer reads (`status`, `audit/...`): every number in an answer comes from one of them. */
  readonly commands: readonly string[];
}

export interface IntentVocabulary {
  readonly intents: readonly IntentSpec[];
  /** Slot name (without the angle brackets) -> its spoken values, e.g. `channel` -> `['weight', 'brood temperature']`. */
  readonly slots: Readonly<Record<string, readonly string[]>>;
}

/** What either front found in a question: the words, the intent and the slot values. */
export interface RecognisedIntent {
  /** The words as typed or recognised. */
  readonly text: string;
  readonly intent: string;
  readonly slots: Readonly<Record<string, string>>;
}

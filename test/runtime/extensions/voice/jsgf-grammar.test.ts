import { describe, expect, it } from 'vitest';
import { ErrorCodes } from '../../../../runtime/errors.js';
import type { IntentVocabulary } from '../../../../runtime/extensions/ask/vocabulary.js';
import { buildGrammar, expandPatterns, expandTree, parsePattern, SentenceMatcher } from '../../../../runtime/extensions/voice/jsgf-grammar.js';
import { VOCABULARY } from './speech-tools.js';

const words = (p: string, slots: Record<string, string[]> = {}) => expandTree(parsePattern(p), slots).map((s) => s.words.join(' '));

describe('the vocabulary as a JSGF grammar', () => {
  it('expands alternatives, optional words and slots into every sentence, with the slot values used', () => {
    expect(words('how is the hive [doing]')).toEqual(['how is the hive', 'how is the hive doing']);
    expect(words('will ( it | they ) swarm')).toEqual(['will it swarm', 'will they swarm']);
    expect(words('[ please ] ( a | b [ c ] ) d')).toEqual(['a d', 'b d', 'b c d', 'please a d', 'please b d', 'please b c d']);
    const reading = expandTree(parsePattern('what is the <channel>'), { channel: ['weight', 'brood temperature'] });
    expect(reading).toEqual([
      { words: ['what', 'is', 'the', 'weight'], slots: { channel: 'weight' } },
      { words: ['what', 'is', 'the', 'brood', 'temperature'], slots: { channel: 'brood temperature' } },
    ]);
  });

  it('rejects patterns outside the shared subset, naming the pattern', () => {
    for (const [pattern, why] of [
      ['how ( is the hive', /expected "\)"/],
      ['how is ] the hive', /unexpected "\]"/],
      ['How is the hive', /unexpected "How"/],
      ['what is the <Channel>', /unexpected "<Channel>"/],
      ['what is ( | the ) weight', /an empty alternative/],
      ['weight = 3', /unexpected "="/],
      ['', /an empty alternative/],
    ] as const) {
      expect(() => parsePattern(pattern), pattern).toThrow(why);
      try {
        parsePattern(pattern);
      } catch (err) {
        expect(err).toMatchObject({ code: ErrorCodes.CONFIG_INVALID, message: expect.stringContaining(`intent pattern ${JSON.stringify(pattern)}`) as string });
      }
    }
    expect(() => words('what is the <rule>')).toThrow(/<rule>, which the vocabulary has no slot for/);
    const many = { a: Array.from({ length: 200 }, (_, i) => `w${'x'.repeat(i % 5)}`), b: Array.from({ length: 200 }, () => 'y') };
    expect(() => words('<a> <b>', many)).toThrow(/over 20000 sentences/);
  });

  it('writes one public rule over the intents, a rule per intent and per slot used', () => {
    const g = buildGrammar(VOCABULARY);
    expect(g.topRule).toBe('question');
    const lines = g.text.split('\n');
    expect(lines.slice(0, 2)).toEqual(['#JSGF V1.0;', 'grammar apiary;']);
    expect(lines.filter((l) => l.startsWith('public '))).toEqual(['public <question> = <intent_0> | <intent_1> | <intent_2> | <intent_3> | <intent_4> | <intent_5>;']);
    expect(g.text).toContain('<intent_3> = ( what is the <slot_channel> ) | ( how is the <slot_channel> ); // reading');
    expect(g.text).toContain('<intent_1> = ( is it going to swarm ) | ( will ( it | they ) swarm ); // swarm-risk');
    expect(g.text).toContain('<slot_channel> = weight | brood temperature | humidity | outside temperature;');
    expect(g.text).toContain('<slot_neighbour> = the orchard hive | the meadow hive;');
    expect(g.omitted).toEqual([]);
  });

  it('leaves out slot values the dictionary cannot say, and intents left with nothing to say', () => {
    const vocabulary: IntentVocabulary = {
      intents: [
        { name: 'status', patterns: ['how is the hive'], commands: ['status'] },
        { name: 'neighbour', patterns: ['what does <neighbour> say'], commands: ['status'] },
        { name: 'reading', patterns: ['what is the <channel>'], commands: ['status'] },
      ],
      slots: { neighbour: ['bramblewick', 'the orchard hive', 'Hive 7', 'The Meadow  Hive'], channel: ['temp_2'] },
    };
    const dictionary = new Set(['how', 'is', 'the', 'hive', 'what', 'does', 'say', 'orchard', 'meadow']);
    const g = buildGrammar(vocabulary, (w) => dictionary.has(w));
    expect(g.omitted).toEqual([
      '<neighbour> "bramblewick": not in the dictionary: bramblewick',
      '<neighbour> "Hive 7": not spoken words: 7',
      '<channel> "temp_2": not spoken words: temp_2',
      'intent reading: no pattern left to say',
    ]);
    expect(g.text).toContain('<slot_neighbour> = the orchard hive | the meadow hive;');
    expect(g.text).not.toContain('reading');
    expect(g.vocabulary.intents.map((i) => i.name)).toEqual(['status', 'neighbour']);
    const partly = buildGrammar({ intents: [{ name: 'x', patterns: ['frobnicate the hive', 'how is the hive'], commands: [] }], slots: {} }, (w) => dictionary.has(w));
    expect(partly.omitted).toEqual(['intent x pattern "frobnicate the hive": not in the dictionary: frobnicate']);
    expect(partly.text).toContain('<intent_0> = ( how is the hive ); // x');
    expect(() => buildGrammar({ intents: [{ name: 'x', patterns: ['frobnicate the hive'], commands: [] }], slots: {} }, (w) => dictionary.has(w)))
      .toThrow(/the vocabulary has no intent that can be said/);
  });

  it('maps a recognised sentence back to its intent and slots, exactly', () => {
    const m = new SentenceMatcher(VOCABULARY);
    expect(m.match('what is the brood temperature')).toEqual({ text: 'what is the brood temperature', intent: 'reading', slots: { channel: 'brood temperature' } });
    expect(m.match('  How is the HIVE doing ')).toEqual({ text: 'how is the hive doing', intent: 'hive-status', slots: {} });
    expect(m.match('why the cold brood alert')).toEqual({ text: 'why the cold brood alert', intent: 'why', slots: { rule: 'cold brood' } });
    expect(m.match('what does the meadow hive say')).toMatchObject({ intent: 'neighbours', slots: { neighbour: 'the meadow hive' } });
    expect(m.match('what is the')).toBeUndefined();
    expect(m.match('how is the hive today')).toBeUndefined();
    expect(m.size).toBe(expandPatterns(VOCABULARY).length);
  });

  it('gives a sentence two intents share to the first listed', () => {
    const m = new SentenceMatcher({
      intents: [
        { name: 'weight', patterns: ['how heavy is it'], commands: [] },
        { name: 'reading', patterns: ['how heavy is it', 'what is the <channel>'], commands: [] },
      ],
      slots: { channel: ['weight'] },
    });
    expect(m.match('how heavy is it')?.intent).toBe('weight');
    expect(m.match('what is the weight')?.intent).toBe('reading');
  });
});

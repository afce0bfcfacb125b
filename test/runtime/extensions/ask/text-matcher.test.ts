/**
 * The intent catalogue and the text matcher, on a beehive's channels, rules
 * and neighbours: many phrasings of each question, and what must be rejected.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_RULES } from '../../../../runtime/apps/beehive/defaults.js';
import { buildVocabulary, spokenWords, type CatalogueSource } from '../../../../runtime/extensions/ask/catalogue.js';
import { matchExpansion, parseExpansion } from '../../../../runtime/extensions/ask/jsgf.js';
import { TextMatcher } from '../../../../runtime/extensions/ask/text-matcher.js';

const source: CatalogueSource = {
  channels: [
    { name: 'temperature', label: 'Hive temperature' },
    { name: 'humidity', label: 'Hive humidity' },
    { name: 'weight', label: 'Hive weight' },
    { name: 'sound_level', label: 'Hive sound level' },
    { name: 'brood_temp', label: 'brood_temp' },
  ],
  rules: DEFAULT_RULES.map((r) => ({ id: r.id, input: r.input })),
  neighbours: [{ nodeId: 'abcdefghijkl', name: 'North hive' }, { nodeId: 'mnopqrstuvwx', name: 'Apiary beehive' }, { nodeId: 'yzabcdefghij', name: 'Apiary beehive' }],
  mesh: true,
  modelLabels: ['normal', 'pre-swarm', 'swarm', 'strong_colony'],
};
const catalogue = buildVocabulary(source);
const matcher = new TextMatcher(catalogue);

describe('the intent catalogue', () => {
  it('speaks ids as words', () => {
    expect(spokenWords('brood_temp')).toBe('brood temperature');
    expect(spokenWords('hive-overheating')).toBe('hive overheating');
    expect(spokenWords('sensor_2')).toBe('sensor two');
    expect(spokenWords('___')).toBeUndefined();
  });

  it("builds its slots from the node's channels, rules and neighbours, and maps them back to ids", () => {
    const { slots } = catalogue.vocabulary;
    expect(slots.channel).toEqual(expect.arrayContaining(['temperature', 'hive temperature', 'weight', 'sound level', 'brood temperature']));
    expect(slots.rule).toEqual(['swarming', 'pre swarm', 'colony weak', 'hive overheating']);
    // Two neighbours share the default name: it could mean either, so it is not a value.
    expect(slots.neighbour).toEqual(['north hive']);
    expect(catalogue.ids.channel?.['brood temperature']).toBe('brood_temp');
    expect(catalogue.ids.channel?.['hive temperature']).toBe('temperature');
    expect(catalogue.ids.rule?.['pre swarm']).toBe('pre-swarm');
    expect(catalogue.ids.neighbour?.['north hive']).toBe('abcdefghijkl');
    expect(catalogue.vocabulary.intents.map((i) => i.name)).toEqual(['hive-status', 'swarm-risk', 'weight', 'reading', 'why', 'neighbours', 'help']);
  });

  it('leaves out what the node cannot be asked: no weight channel, no swarm rule, no rules', () => {
    const sensorNode = buildVocabulary({ channels: [{ name: 'temperature' }], rules: [], neighbours: [], mesh: false, modelLabels: [] });
    expect(sensorNode.vocabulary.intents.map((i) => i.name)).toEqual(['hive-status', 'reading', 'neighbours', 'help']);
    expect(new TextMatcher(sensorNode).match('how heavy is it').intent).toBe('unknown');
    expect(new TextMatcher(sensorNode).match('is it going to swarm').intent).toBe('unknown');
  });

  it('every sentence of the speech grammar (`spoken`) is understood by the text matcher as the same intent', async () => {
    const { expandPatterns } = await import('../../../../runtime/extensions/voice/jsgf-grammar.js');
    const sentences = expandPatterns(catalogue.vocabulary);
    expect(sentences.length).toBeGreaterThan(50);
    expect(catalogue.vocabulary.intents.filter((i) => i.spoken !== undefined).length).toBeGreaterThanOrEqual(4);
    for (const { intent, sentence } of sentences) {
      const said = sentence.words.join(' ');
      expect(matcher.match(said), said).toMatchObject({ intent, slots: sentence.slots });
    }
  });

  it('keeps the grammar small: a few patterns per intent, every pattern parses', () => {
    for (const intent of catalogue.vocabulary.intents) {
      expect(intent.patterns.length).toBeLessThanOrEqual(5);
      for (const pattern of intent.patterns) expect(() => parseExpansion(pattern)).not.toThrow();
    }
  });
});

describe('JSGF expansions', () => {
  const slots = new Map([['channel', [['brood', 'temperature'], ['weight']]]]);
  it('matches words, alternatives, optional parts and slots', () => {
    const e = parseExpansion('[what is] the (current | latest) <channel>');
    expect(matchExpansion(e, 'what is the current brood temperature'.split(' '), slots)).toEqual({ channel: 'brood temperature' });
    expect(matchExpansion(e, 'the latest weight'.split(' '), slots)).toEqual({ channel: 'weight' });
    expect(matchExpansion(e, 'the weight'.split(' '), slots)).toBeUndefined();
    expect(matchExpansion(e, 'what is the current brood'.split(' '), slots)).toBeUndefined();
  });
  it('refuses what is outside the subset', () => {
    expect(() => parseExpansion('how is (the hive')).toThrow(/expected "\)"/);
    expect(() => parseExpansion('how is the hive*')).toThrow(/unexpected "hive\*"/);
    expect(() => parseExpansion('a | | b')).toThrow(/empty alternative/);
    expect(() => parseExpansion('Hive')).toThrow(/unexpected "Hive"/);
  });
});

describe('the text matcher', () => {
  const cases: [string, string, Record<string, string>?][] = [
    ['how is the hive', 'hive-status'],
    ["How's the hive?", 'hive-status'],
    ['Hey hive, how is the colony doing today?', 'hive-status'],
    ['hive status', 'hive-status'],
    ['What is the status of the hive, please', 'hive-status'],
    ['how are the bees', 'hive-status'],
    ['Is it going to swarm?', 'swarm-risk'],
    ['are the bees about to swarm', 'swarm-risk'],
    ['Will they swarm?', 'swarm-risk'],
    ["what's the swarm risk", 'swarm-risk'],
    ['is the colony swarming', 'swarm-risk'],
    ['How heavy is it?', 'weight'],
    ['hive, how much does the hive weigh', 'weight'],
    ['What does it weigh', 'weight'],
    ['what is the temperature', 'reading', { channel: 'temperature' }],
    ["What's the current brood temp", 'reading', { channel: 'brood temperature' }],
    ["What's the current brood temperature?", 'reading', { channel: 'brood temperature' }],
    ['the hive humidity', 'reading', { channel: 'hive humidity' }],
    ['Sound level', 'reading', { channel: 'sound level' }],
    ['how is the weight', 'reading', { channel: 'weight' }],
    ["What's the temperature in the hive?", 'reading', { channel: 'temperature' }],
    ['the humidity of the hive', 'reading', { channel: 'humidity' }],
    ['can you tell me the temperature please', 'reading', { channel: 'temperature' }],
    ['Why did you raise that alert?', 'why'],
    ['why that alarm', 'why'],
    ['why is there an alert', 'why'],
    ['why swarming', 'why', { rule: 'swarming' }],
    ['Why the hive overheating alert?', 'why', { rule: 'hive overheating' }],
    ['why is pre-swarm raised', 'why', { rule: 'pre swarm' }],
    ["What do the neighbours' hives say?", 'neighbours'],
    ['what do the neighbors say', 'neighbours'],
    ['How are the other hives?', 'neighbours'],
    ['any news from the neighbours', 'neighbours'],
    ['what does North Hive say', 'neighbours', { neighbour: 'north hive' }],
    ['What can I ask?', 'help'],
    ['help', 'help'],
    ['what can you do', 'help'],
    ['HOW IS THE HIVE!!!', 'hive-status'],
    ['  how   is the   hive  ', 'hive-status'],
  ];
  it.each(cases)('"%s" -> %s', (text, intent, slots = {}) => {
    const found = matcher.match(text);
    expect(found.intent).toBe(intent);
    expect(found.slots).toEqual(slots);
    expect(found.text).toBe(text.trim());
  });

  const rejected = [
    'how is the weather',
    'what is the capital of france',
    'is it going to rain',
    'how heavy is the truck',
    'what is the pressure',
    'why',
    'hive',
    'hey hive',
    'please',
    '',
    '???',
    'what does Apiary beehive say',
    'how is the hive and is it going to swarm',
    'tell me a joke',
    'delete all the data',
    'what is the temperature of the sun',
    'what is the temperature of the hive of the hive',
  ];
  it.each(rejected)('rejects "%s"', (text) => {
    expect(matcher.match(text)).toEqual({ text: text.trim(), intent: 'unknown', slots: {} });
  });

  it('maps a spoken slot value back to its id', () => {
    expect(matcher.idOf('channel', matcher.match('what is the brood temperature').slots.channel)).toBe('brood_temp');
    expect(matcher.idOf('channel', 'nothing')).toBeUndefined();
  });
});

/**
 * The intent catalogue: what this node can be asked, built from its own
 * state (its reading channels, rules, neighbours and models), as the
 * IntentVocabulary both fronts read. A few natural phrasings per intent, and
 * one or two spoken forms per channel, rule and neighbour: the speech front
 * turns this into its grammar, which must stay small to recognise well.
 */
import type { IntentSpec, IntentVocabulary } from './vocabulary.js';

/** What the catalogue is built from; the extension reads it off the running node. */
export interface CatalogueSource {
  readonly channels: readonly { readonly name: string; readonly label?: string | undefined }[];
  readonly rules: readonly { readonly id: string; readonly input: string }[];
  /** Other nodes of the mesh this node knows, with the name in their certificate. */
  readonly neighbours: readonly { readonly nodeId: string; readonly name?: string | undefined }[];
  /** Whether this node has a mesh at all (a neighbours question is still understood without one, and answered so). */
  readonly mesh: boolean;
  /** Model names this node runs, and output labels it has seen (a swarm label makes the swarm question). */
  readonly modelLabels: readonly string[];
}

/** The vocabulary, and each slot's spoken values mapped back to the ids they stand for. */
export interface Catalogue {
  readonly vocabulary: IntentVocabulary;
  /** Slot -> spoken value -> id (`channel` -> `brood temperature` -> `brood_temp`). */
  readonly ids: Readonly<Record<string, Readonly<Record<string, string>>>>;
}

/** Intent names: the `intent` of a RecognisedIntent, and `unknown` when nothing matched. */
export const INTENTS = {
  hiveStatus: 'hive-status',
  swarmRisk: 'swarm-risk',
  weight: 'weight',
  reading: 'reading',
  why: 'why',
  neighbours: 'neighbours',
  help: 'help',
  unknown: 'unknown',
} as const;

const ABBREVIATIONS: Readonly<Record<string, string>> = {
  temp: 'temperature', hum: 'humidity', rh: 'humidity', pres: 'pressure', press: 'pressure', wt: 'weight', lvl: 'level',
  ext: 'outside', int: 'inside', avg: 'average', min: 'minimum', max: 'maximum', bat: 'battery', batt: 'battery', co2: 'carbon dioxide',
};
const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve'];

/**
 * An id or label as words a person says: `brood_temp` -> `brood temperature`,
 * `hive-overheating` -> `hive overheating`, `sensor_2` -> `sensor two`.
 * Undefined when nothing speakable is left.
 */
export function spokenWords(id: string): string | undefined {
  const words = id
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '')
    .map((w) => ABBREVIATIONS[w] ?? (/^\d+$/.test(w) ? NUMBERS[Number(w)] ?? '' : w))
    .filter((w) => /^[a-z ]+$/.test(w));
  const text = words.join(' ').trim();
  return text === '' ? undefined : text;
}

/** Values of a slot, the first spelling of each id kept, and a spelling two ids share dropped (it could mean either). */
function slotValues(entries: readonly { id: string; spoken: readonly (string | undefined)[] }[]): Record<string, string> {
  const owner = new Map<string, string | null>();
  for (const { id, spoken } of entries) {
    for (const words of new Set(spoken)) {
      if (words === undefined) continue;
      const had = owner.get(words);
      owner.set(words, had === undefined || had === id ? id : null);
    }
  }
  return Object.fromEntries([...owner].filter((e): e is [string, string] => e[1] !== null));
}

export function buildVocabulary(source: CatalogueSource): Catalogue {
  const channel = slotValues(source.channels.map((c) => ({
    id: c.name,
    // A label that is the name with its node's kind in front ("Hive temperature") is said both ways.
    spoken: [spokenWords(c.name), c.label === undefined ? undefined : spokenWords(c.label)],
  })));
  const rule = slotValues(source.rules.map((r) => ({ id: r.id, spoken: [spokenWords(r.id)] })));
  const neighbour = slotValues(source.neighbours.map((n) => ({ id: n.nodeId, spoken: [n.name === undefined ? undefined : spokenWords(n.name)] })));
  const has = (values: Record<string, string>) => Object.keys(values).length > 0;
  const swarm = source.rules.some((r) => /swarm/.test(r.input) || /swarm/.test(r.id)) || source.modelLabels.some((l) => /swarm/.test(l));

  const intents: IntentSpec[] = [
    {
      name: INTENTS.hiveStatus,
      patterns: [
        'how is the (hive | colony) [doing]',
        'how are the bees [doing]',
        '[what is the] (hive | colony) status',
        'what is the status [of the (hive | colony)]',
      ],
      spoken: ['how is the (hive | colony) [doing]', 'how are the bees [doing]', 'what is the (hive | colony) status'],
      commands: ['status'],
    },
  ];
  if (swarm) {
    intents.push({
      name: INTENTS.swarmRisk,
      patterns: [
        'is (it | the colony | the hive) (going to swarm | swarming | about to swarm)',
        'are (they | the bees) (going to swarm | swarming | about to swarm)',
        'will (it | they | the bees | the colony) swarm',
        '(is there a | what is the) swarm (risk | warning)',
      ],
      spoken: ['is (it | the hive | the colony) (going to swarm | swarming)', 'are the bees going to swarm', 'will (it | they | the bees) swarm', 'is there a swarm (risk | warning)'],
      commands: ['status'],
    });
  }
  if (Object.values(channel).includes('weight')) {
    intents.push({
      name: INTENTS.weight,
      patterns: ['how heavy is (it | the hive)', 'how much does (it | the hive) weigh', 'what does (it | the hive) weigh'],
      commands: ['status', 'readings/recent'],
    });
  }
  if (has(channel)) {
    intents.push({
      name: INTENTS.reading,
      patterns: ['[what is] the [current] <channel> [(of | in) the hive]', 'how is the <channel>', '<channel>'],
      // No optional tail and no bare channel name for speech: both invite the decoder to stop or force a match mid-sentence.
      spoken: ['what is the <channel>', 'how is the <channel>'],
      commands: ['status', 'readings/recent'],
    });
  }
  if (source.rules.length > 0) {
    intents.push({
      name: INTENTS.why,
      patterns: [
        'why did you (raise | send | give) (that | the | this) (alert | alarm | warning)',
        'why (that | the | this | an) (alert | alarm | warning)',
        'why is there an (alert | alarm | warning)',
        ...(has(rule) ? ['why [the] <rule> [alert | alarm | warning]', 'why is <rule> (raised | on | active)'] : []),
      ],
      spoken: ['why did you raise (that | the | this) (alert | alarm | warning)', 'why is there an (alert | alarm | warning)', ...(has(rule) ? ['why [the] <rule> alert'] : [])],
      commands: ['status'],
    });
  }
  intents.push({
    name: INTENTS.neighbours,
    patterns: [
      'what do the (neighbours | neighbours hives | other hives) say',
      'how are the (neighbours | neighbours hives | other hives)',
      '(any | what) news from the (neighbours | other hives)',
      ...(has(neighbour) ? ['what does <neighbour> say', 'how is <neighbour>'] : []),
    ],
      spoken: ['what do the (neighbours | other hives) say', 'how are the (neighbours | other hives)', ...(has(neighbour) ? ['what does <neighbour> say'] : [])],
    commands: source.mesh ? ['status', 'mesh/decisions'] : ['status'],
  });
  intents.push({
    name: INTENTS.help,
    patterns: ['what can i ask [you]', 'what can you (do | tell me | answer)', 'help'],
    spoken: ['what can i ask [you]', 'what can you (do | tell me)'],
    commands: [],
  });

  const slots: Record<string, string[]> = {};
  if (has(channel)) slots.channel = Object.keys(channel);
  if (has(rule)) slots.rule = Object.keys(rule);
  if (has(neighbour)) slots.neighbour = Object.keys(neighbour);
  return { vocabulary: { intents, slots }, ids: { channel, rule, neighbour } };
}

/** One example question per intent, for "what can I ask" and the "I don't know that" hint. */
export const EXAMPLES: Readonly<Record<string, string>> = {
  [INTENTS.hiveStatus]: 'how is the hive',
  [INTENTS.swarmRisk]: 'is it going to swarm',
  [INTENTS.weight]: 'how heavy is it',
  [INTENTS.reading]: 'what is the <channel>',
  [INTENTS.why]: 'why did you raise that alert',
  [INTENTS.neighbours]: "what do the neighbours' hives say",
};

/**
 * The answer to each intent, built only from registry commands (evidence.ts):
 * `status` for readings, model outputs and decisions, `readings/recent` for a
 * trend, `mesh/decisions` for the neighbours' alerts. Short, in two forms
 * (spoken.ts), and "I don't know that" rather than a guess.
 */
import { isApiaryError } from '../../errors.js';
import { EXAMPLES, INTENTS, spokenWords, type Catalogue } from './catalogue.js';
import { Evidence, type DecisionView, type ModelView, type RunCommand, type Source, type StatusView } from './evidence.js';
import { list, percent, plain, quantity, sentences, span, trendOf, type Said } from './spoken.js';
import type { RecognisedIntent } from './vocabulary.js';

export interface Answer extends Said {
  readonly sources: readonly Source[];
}

/** Readings a trend is read over: up to an hour of node time, at most this many. */
const TREND_READINGS = 60;
const TREND_WINDOW_MS = 3_600_000;
const CHANNEL_ORDER = ['temperature', 'humidity', 'weight'];
const SEVERITY_ORDER = ['critical', 'warning', 'info'];

export const I_DONT_KNOW = "I don't know that.";

const words = (id: string) => spokenWords(id) ?? id;
const capital = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const sentence = (s: string) => (/[.!?]$/.test(s) ? s : `${s}.`);

/** What can be asked, from the intents this node has (the help answer and the "I don't know" hint). */
export function askable(catalogue: Catalogue): string[] {
  const channels = catalogue.vocabulary.slots.channel ?? [];
  return catalogue.vocabulary.intents.flatMap((intent) => {
    const example = EXAMPLES[intent.name];
    if (example === undefined) return [];
    return [intent.name === INTENTS.reading ? example.replace('<channel>', channels[0] ?? 'temperature') : example];
  });
}

export async function answer(recognised: RecognisedIntent, catalogue: Catalogue, run: RunCommand): Promise<Answer> {
  const evidence = new Evidence(run);
  const slotId = (slot: string) => {
    const spoken = recognised.slots[slot];
    return spoken === undefined ? undefined : catalogue.ids[slot]?.[spoken];
  };
  let said: Said;
  try {
    switch (recognised.intent) {
      case INTENTS.hiveStatus: said = await hiveStatus(evidence); break;
      case INTENTS.swarmRisk: said = await swarmRisk(evidence); break;
      case INTENTS.weight: said = await reading(evidence, 'weight'); break;
      case INTENTS.reading: said = await reading(evidence, slotId('channel') ?? ''); break;
      case INTENTS.why: said = await why(evidence, slotId('rule')); break;
      case INTENTS.neighbours: said = await neighbours(evidence, slotId('neighbour')); break;
      case INTENTS.help: said = plain(`You can ask: ${list(askable(catalogue))}.`); break;
      default: said = plain(`${I_DONT_KNOW} You can ask: ${list(askable(catalogue))}.`);
    }
  } catch (err) {
    // A command this answer needs is refused here (no node parts, the mesh off): say so, with no number.
    if (!isApiaryError(err)) throw err;
    said = plain(`${I_DONT_KNOW} ${sentence(capital(err.message))}`);
  }
  return { ...said, sources: evidence.sources };
}

async function hiveStatus(evidence: Evidence): Promise<Said> {
  const status = await evidence.snapshot();
  const channels = Object.keys(status.latest.readings).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const readings = channels.map((channel) => {
    const r = status.latest.readings[channel] as { value: number; unit: string };
    const q = quantity(evidence.use('status', `latest.readings.${channel}.value`, r.value), r.unit);
    return { text: `${words(channel)} ${q.text}`, speech: `${words(channel)} ${q.speech}` };
  });
  const parts: Said[] = [readings.length > 0 ? { text: `${capital(list(readings.map((r) => r.text)))}.`, speech: `${capital(list(readings.map((r) => r.speech)))}.` } : plain('No readings yet.')];
  const models = Object.values(status.latest.models).map((m) => modelSays(evidence, m));
  if (models.length > 0) parts.push({ text: `${capital(list(models.map((m) => m.text)))}.`, speech: `${capital(list(models.map((m) => m.speech)))}.` });
  parts.push(alerts(evidence, status));
  return sentences(parts);
}

const rank = (channel: string) => {
  const i = CHANNEL_ORDER.indexOf(channel);
  return i < 0 ? CHANNEL_ORDER.length : i;
};

/** "the hive sound model says normal (96%)". */
function modelSays(evidence: Evidence, m: ModelView): Said {
  const p = evidence.use('status', `latest.models.${m.model}.probabilities.${m.label}`, m.probabilities[m.label] ?? 0);
  const pc = percent(p);
  return { text: `the ${words(m.model)} model says ${words(m.label)} (${pc.text})`, speech: `the ${words(m.model)} model says ${words(m.label)}, ${pc.speech}` };
}

function activeDecisions(status: StatusView): DecisionView[] {
  return Object.values(status.latest.decisions)
    .filter((d) => d.active)
    .sort((a, b) => SEVERITY_ORDER.indexOf(a.severity) - SEVERITY_ORDER.indexOf(b.severity) || b.t - a.t);
}

function alerts(evidence: Evidence, status: StatusView): Said {
  const active = activeDecisions(status);
  if (active.length === 0) return plain('No alerts.');
  for (const d of active) evidence.use('status', `latest.decisions.${d.rule}.active`, d.active);
  return plain(`${active.length === 1 ? 'One alert' : `${active.length} alerts`}: ${active.map((d) => sentence(d.message)).join(' ')}`);
}

async function swarmRisk(evidence: Evidence): Promise<Said> {
  const status = await evidence.snapshot();
  const raised = activeDecisions(status).filter((d) => /swarm/.test(d.input) || /swarm/.test(d.rule));
  if (raised[0]) return sentences([plain('Yes.'), explain(evidence, status, raised[0])]);
  const model = Object.values(status.latest.models).find((m) => 'swarm' in m.probabilities);
  if (!model) return plain(`${I_DONT_KNOW} No swarm model has given an output, and no swarm alert is raised.`);
  const scores = Object.keys(model.probabilities).filter((label) => /swarm/.test(label)).map((label) => {
    const pc = percent(evidence.use('status', `latest.models.${model.model}.probabilities.${label}`, model.probabilities[label] ?? 0));
    return { text: `${words(label)} ${pc.text}`, speech: `${words(label)} ${pc.speech}` };
  });
  const label = evidence.use('status', `latest.models.${model.model}.label`, model.label);
  const detail = { text: ` (${list(scores.map((s) => s.text))})`, speech: `: ${list(scores.map((s) => s.speech))}` };
  const sounds = label === 'normal' ? 'the colony sounds normal' : `the colony sounds like ${words(label)}`;
  if (/swarm/.test(label)) {
    return { text: `Maybe: ${sounds}${detail.text}, but no alert is raised yet.`, speech: `Maybe. ${capital(sounds)}${detail.speech}. No alert is raised yet.` };
  }
  return { text: `No sign of it: ${sounds}${detail.text}.`, speech: `No sign of it. ${capital(sounds)}${detail.speech}.` };
}

async function reading(evidence: Evidence, channel: string): Promise<Said> {
  const status = await evidence.snapshot();
  const latest = status.latest.readings[channel];
  const name = words(channel);
  if (!latest) return plain(`${I_DONT_KNOW} There is no ${name} reading yet.`);
  const value = evidence.use('status', `latest.readings.${channel}.value`, latest.value);
  const q = quantity(value, latest.unit);
  const now = { text: `The ${name} is ${q.text}`, speech: `The ${name} is ${q.speech}` };
  const recent = await evidence.recentReadings(channel, TREND_READINGS);
  const within = recent.readings.filter((r) => r.t > latest.t - TREND_WINDOW_MS && r.t <= latest.t);
  const trend = trendOf(within);
  if (!trend) return { text: `${now.text}.`, speech: `${now.speech}.` };
  evidence.use('readings/recent', 'readings', { count: within.length, from: within[0], to: within.at(-1) }, { channel, limit: TREND_READINGS });
  const over = `over the last ${span(trend.spanMs)}`;
  if (trend.direction === 'steady') return { text: `${now.text}, steady ${over}.`, speech: `${now.speech}, steady ${over}.` };
  const change = quantity(Math.abs(trend.change), latest.unit);
  const way = trend.direction === 'rising' ? 'up' : 'down';
  return { text: `${now.text}, ${trend.direction}: ${way} ${change.text} ${over}.`, speech: `${now.speech}, ${trend.direction}, ${way} ${change.speech} ${over}.` };
}

/** A decision with its reason: the recorded reason as text, and the same facts in words for speech. */
export function explainDecision(d: DecisionView, unit?: string): Said {
  const [kind, source, label] = d.input.split('.');
  // The side and level the recorded reason names: the threshold when raised, the clear level when cleared.
  const side = /\s>\s/.test(d.reason) ? 'above' : 'below';
  const level = d.active ? d.threshold : d.clearAt;
  const value = kind === 'model' ? percent(d.value).speech : quantity(d.value, unit ?? '').speech;
  const threshold = kind === 'model' ? percent(level).speech : quantity(level, unit ?? '').speech;
  const what = kind === 'model' ? `the ${words(source ?? '')} model's ${words(label ?? '')} score` : `the ${words(source ?? d.input)}`;
  const held = d.active && d.t > d.since ? `, for ${span(d.t - d.since)}` : '';
  const state = d.active ? 'raised' : 'cleared';
  return {
    text: `${sentence(d.message)} ${capital(words(d.rule))} (${d.severity}) was ${state} because ${d.reason}.`,
    speech: `${sentence(d.message)} It was ${state} because ${what} was ${value}, ${side} ${threshold}${held}.`,
  };
}

function explain(evidence: Evidence, status: StatusView, d: DecisionView): Said {
  for (const key of ['reason', 'value', d.active ? 'threshold' : 'clearAt'] as const) evidence.use('status', `latest.decisions.${d.rule}.${key}`, d[key]);
  const channel = d.input.startsWith('reading.') ? d.input.slice('reading.'.length) : undefined;
  return explainDecision(d, channel === undefined ? undefined : status.latest.readings[channel]?.unit);
}

async function why(evidence: Evidence, rule: string | undefined): Promise<Said> {
  const status = await evidence.snapshot();
  if (rule !== undefined) {
    const d = status.latest.decisions[rule];
    return d ? explain(evidence, status, d) : plain(`The ${words(rule)} rule has raised nothing since the node started.`);
  }
  const active = activeDecisions(status);
  if (active[0]) return explain(evidence, status, active[0]);
  const last = Object.values(status.latest.decisions).sort((a, b) => b.t - a.t)[0];
  return last ? sentences([plain('No alert is raised now. The last one:'), explain(evidence, status, last)]) : plain('No alert has been raised since the node started.');
}

async function neighbours(evidence: Evidence, only: string | undefined): Promise<Said> {
  const status = await evidence.snapshot();
  if (!status.mesh) return plain('The mesh is off on this node, so I hear nothing from neighbours.');
  const peers = status.mesh.peers.filter((p) => only === undefined || p.nodeId === only);
  const linked = evidence.use('status', 'mesh.peers[link=up]', peers.filter((p) => p.link === 'up').map((p) => p.nodeId));
  const named = (id: string, name?: string) => (name !== undefined ? words(name) : `node ${id}`);
  const decisions = (await evidence.neighbourDecisions()).filter((d) => d.active && d.origin !== status.mesh?.nodeId && (only === undefined || d.origin === only));
  evidence.use('mesh/decisions', '[active]', decisions.map((d) => ({ origin: d.origin, rule: d.rule })));
  // One neighbour asked for: its alerts as this node's own are told; all of them: each alert with whose it is.
  const heard = only !== undefined
    ? (decisions.length === 0 ? [] : [`${decisions.length === 1 ? 'One alert' : `${decisions.length} alerts`}: ${decisions.map((d) => sentence(d.message)).join(' ')}`])
    : decisions.map((d) => `${capital(named(d.origin, d.name ?? peers.find((p) => p.nodeId === d.origin)?.name))}: ${sentence(d.message)}`);
  const intro = only !== undefined
    ? `${capital(named(only, peers[0]?.name))} is ${linked.length > 0 ? 'linked' : 'not linked now'}.`
    : `${linked.length === 0 ? 'No neighbour is' : linked.length === 1 ? 'One neighbour is' : `${linked.length} neighbours are`} linked${peers.length > linked.length ? `, of ${peers.length} known` : ''}.`;
  if (heard.length === 0) return plain(`${intro} ${only !== undefined ? 'It has no alert.' : linked.length + peers.length === 0 ? '' : 'None has an alert.'}`.trim());
  return plain(`${intro} ${heard.join(' ')}`);
}

/**
 * A decision told as it is raised: the message and its reason, in text and
 * in words for a speech engine. Pure: the ask extension emits it as an
 * `announcement` event for the severities `ask.announce` lists; the voice
 * front speaks it.
 */
import type { Decision } from '../../decide/rule-engine.js';
import { explainDecision } from './answers.js';
import type { Said } from './spoken.js';

const HEADS: Readonly<Record<string, string>> = { critical: 'Alert', warning: 'Warning', info: 'Note' };

/** `unit`: the unit of the reading a rule watches (a model's score is spoken as a percentage). */
export function announce(decision: Decision, unit?: string): Said {
  const head = decision.active ? (HEADS[decision.severity] ?? 'Alert') : 'Cleared';
  const said = explainDecision(decision, unit);
  return { text: `${head}: ${said.text}`, speech: `${head}. ${said.speech}` };
}

/** Whether `ask.announce` asks for this decision: raised, and of a listed severity. */
export function announced(decision: Decision, severities: readonly string[]): boolean {
  return decision.state === 'raised' && severities.includes(decision.severity);
}

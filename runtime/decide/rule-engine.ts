/**
 * Decisions: rules over readings and model outputs with a threshold, a
 * minimum duration and hysteresis. Each decision carries the reason and the
 * values behind it, so a person (or a neighbour) can see why it was taken.
 *
 * A rule is pending from the first observation past its threshold, raised
 * once the condition has held for `for` ms (measured between observations,
 * in node time), and cleared only when the input passes `clearAt`.
 */
import type { RuleConfig } from '../config/schema.js';

export type DecisionState = 'raised' | 'cleared';

export interface Decision {
  readonly rule: string;
  readonly state: DecisionState;
  readonly active: boolean;
  readonly severity: RuleConfig['severity'];
  readonly message: string;
  /** Why, in words: input, value, threshold, and how long it held. */
  readonly reason: string;
  readonly input: string;
  readonly value: number;
  readonly threshold: number;
  readonly clearAt: number;
  /** When the condition was first seen (raised) or when it cleared. */
  readonly since: number;
  readonly t: number;
}

/** Per-rule state, kept in the node's state store so an alert survives a restart. */
export interface RuleState {
  active: boolean;
  pendingSince: number | null;
  since: number | null;
  lastValue: number | null;
  lastT: number | null;
}

export class RuleEngine {
  private readonly states = new Map<string, RuleState>();
  private readonly byInput = new Map<string, RuleConfig[]>();

  /**
   * `restored`: the state saved by an earlier run. It comes frozen from the
   * state store (and from disk, so unchecked): each rule gets its own mutable
   * copy of a well-formed entry, and a fresh state otherwise.
   */
  constructor(private readonly rules: readonly RuleConfig[], restored: Readonly<Record<string, Readonly<RuleState>>> = {}) {
    for (const rule of rules) {
      const list = this.byInput.get(rule.input) ?? [];
      list.push(rule);
      this.byInput.set(rule.input, list);
      this.states.set(rule.id, restoredRuleState(restored[rule.id]));
    }
  }

  /** Inputs some rule listens to, e.g. "reading.temperature". */
  get inputs(): string[] {
    return [...this.byInput.keys()];
  }

  /** Feeds one observation; returns the decisions it caused (raised or cleared). */
  observe(input: string, value: number, t: number): Decision[] {
    const decisions: Decision[] = [];
    if (!Number.isFinite(value)) return decisions;
    for (const rule of this.byInput.get(input) ?? []) {
      const state = this.states.get(rule.id);
      if (!state) continue;
      state.lastValue = value;
      state.lastT = t;
      const threshold = rule.above ?? rule.below ?? 0;
      const clearAt = rule.clearAt ?? threshold;
      const upward = rule.above !== undefined;
      const breach = upward ? value > threshold : value < threshold;
      if (!state.active) {
        if (!breach) {
          state.pendingSince = null;
          continue;
        }
        state.pendingSince ??= t;
        const heldMs = t - state.pendingSince;
        if (heldMs < rule.for) continue;
        state.active = true;
        state.since = state.pendingSince;
        const comparison = `${input} = ${round(value)} ${upward ? '>' : '<'} ${threshold}`;
        const reason = rule.for > 0 ? `${comparison}, held for ${formatSpan(heldMs)} (at least ${formatSpan(rule.for)})` : comparison;
        decisions.push(this.decision(rule, 'raised', value, threshold, clearAt, state.since, t, reason));
      } else {
        const cleared = upward ? value < clearAt : value > clearAt;
        if (!cleared) continue;
        state.active = false;
        state.pendingSince = null;
        state.since = t;
        decisions.push(this.decision(rule, 'cleared', value, threshold, clearAt, t, t, `${input} = ${round(value)} ${upward ? '<' : '>'} ${clearAt} (clear level)`));
      }
    }
    return decisions;
  }

  snapshot(): Record<string, RuleState> {
    return Object.fromEntries([...this.states].map(([id, state]) => [id, { ...state }]));
  }

  active(): string[] {
    return [...this.states].filter(([, s]) => s.active).map(([id]) => id);
  }

  private decision(rule: RuleConfig, state: DecisionState, value: number, threshold: number, clearAt: number, since: number, t: number, reason: string): Decision {
    return { rule: rule.id, state, active: state === 'raised', severity: rule.severity, message: rule.message, reason, input: rule.input, value, threshold, clearAt, since, t };
  }
}

function restoredRuleState(saved: Readonly<RuleState> | undefined): RuleState {
  const fresh: RuleState = { active: false, pendingSince: null, since: null, lastValue: null, lastT: null };
  if (saved === null || typeof saved !== 'object') return fresh;
  const time = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    active: saved.active === true,
    pendingSince: time(saved.pendingSince),
    since: time(saved.since),
    lastValue: time(saved.lastValue),
    lastT: time(saved.lastT),
  };
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}

function formatSpan(ms: number): string {
  if (ms >= 3_600_000) return `${(ms / 3_600_000).toFixed(1)} h`;
  if (ms >= 60_000) return `${(ms / 60_000).toFixed(1)} min`;
  return `${Math.round(ms / 1000)} s`;
}

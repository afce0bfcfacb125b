/**
 * The `decisions` section: the rules the node decides by. Each rule watches
 * one input, with a threshold, hysteresis and a hold time. The default list
 * comes from the application (runtime/apps/<app>/defaults.ts).
 */
import { z } from 'zod';
import { duration } from '../../config/units.js';

const idPattern = /^[a-z0-9][a-z0-9-]{0,47}$/;
const idMessage = 'use 1-48 lower-case letters, digits or dashes, starting with a letter or digit';

/** Inputs a rule can watch: `reading.<channel>` or `model.<model>.<label>`. */
export const RULE_INPUT_PATTERN = /^(reading\.[a-z][a-z0-9_]*|model\.[a-z0-9][a-z0-9-]*\.[a-z][a-z0-9_-]*)$/;

export const ruleSchema = z.strictObject({
  id: z.string().regex(idPattern, { error: idMessage }),
  input: z.string().regex(RULE_INPUT_PATTERN, {
    error: 'expected "reading.<channel>" (like reading.temperature) or "model.<model>.<label>" (like model.hive-sound.swarm)',
  }),
  above: z.number().optional(),
  below: z.number().optional(),
  /** Hysteresis: once raised, the decision clears only when the value passes this level. */
  clearAt: z.number().optional(),
  /** The condition must hold this long before the decision is raised. */
  for: duration(0).default(0),
  severity: z.enum(['info', 'warning', 'critical']).default('warning'),
  message: z.string().min(1).max(200),
}).superRefine((rule, ctx) => {
  if ((rule.above === undefined) === (rule.below === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['above'], message: 'give exactly one of "above" or "below"' });
    return;
  }
  if (rule.clearAt !== undefined) {
    const wrongSide = rule.above !== undefined ? rule.clearAt > rule.above : rule.clearAt < (rule.below ?? 0);
    if (wrongSide) {
      ctx.addIssue({
        code: 'custom',
        path: ['clearAt'],
        message: `clearAt must be on the safe side of the threshold (${rule.above !== undefined ? 'at most "above"' : 'at least "below"'})`,
      });
    }
  }
});

export const rulesSchema = z.array(ruleSchema).max(64);
export type RuleInput = z.input<typeof ruleSchema>;

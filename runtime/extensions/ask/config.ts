/** The `ask` section: questions in text (`apiary ask`, the `ask` command), and which decisions are announced as they are raised. */
import { z } from 'zod';

export const ASK_SEVERITIES = ['info', 'warning', 'critical'] as const;

export const askSchema = z.strictObject({
  /** Answer questions (the `ask` command). Small and text-only: on by default. */
  enabled: z.boolean().default(true),
  /** Severities of the decisions announced when raised (an `announcement` event, with the reason; the voice front speaks it). */
  announce: z.array(z.enum(ASK_SEVERITIES, { error: 'expected "info", "warning" or "critical" (a rule\'s severity)' })).max(3).default(['warning', 'critical']),
  /**
   * Where questions and answers are kept, as text (never audio): "private" in this
   * node's feed sealed to itself (its owner reads it there), "shared" in its feed
   * for every trusted node, "off" nowhere. Needs the mesh (its feed).
   */
  record: z.enum(['private', 'shared', 'off'], { error: 'expected "private" (sealed in this node\'s feed), "shared" (its feed, readable by trusted nodes) or "off"' }).default('private'),
});

export type AskConfig = z.output<typeof askSchema>;

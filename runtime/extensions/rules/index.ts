/**
 * Local rules over readings and model outputs (runtime/decide/rule-engine.ts):
 * each decision comes with its reason and, for a model input, the inference
 * behind it. A decision's rule state is saved before the decision is
 * announced, so a node killed right after restarts with the state its last
 * announcement reflects.
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { DecisionRecord, ModelEvidence } from '../../core/model-types.js';
import type { NodeContext } from '../../core/node-context.js';
import { RuleEngine } from '../../decide/rule-engine.js';

export function createRules(config: ApiaryConfig): Extension {
  let ctx: NodeContext | undefined;
  let engine: RuleEngine | undefined;

  async function decide(input: string, value: number, t: number, evidence?: ModelEvidence): Promise<void> {
    if (!ctx || !engine) return;
    const { storage, logger, events } = ctx;
    for (const decision of engine.observe(input, value, t)) {
      const record: DecisionRecord = { ...decision, time: new Date(decision.t).toISOString(), ...(evidence ? { evidence } : {}) };
      const log = decision.active ? logger.warn.bind(logger) : logger.info.bind(logger);
      log({ rule: decision.rule, reason: decision.reason }, `${decision.state}: ${decision.message}`);
      const rules = engine.snapshot();
      await storage.state.update((s) => { s.rules = rules; });
      await events.emit('decision', record);
    }
  }

  /** A rule watching a model output that no loaded model has would never fire: say so at start (after a model update renamed a label, say). */
  function checkRuleInputs(context: NodeContext): void {
    const labels = context.models.labels();
    for (const rule of config.decisions) {
      const [kind, model, label] = rule.input.split('.');
      if (kind !== 'model' || model === undefined || label === undefined) continue;
      if (labels[model]?.includes(label)) continue;
      context.counters.increment('decisions.rule_input_unknown');
      const known = Object.entries(labels).flatMap(([m, ls]) => ls.map((l) => `model.${m}.${l}`));
      context.logger.warn({ rule: rule.id, input: rule.input, known }, `decision rule "${rule.id}" watches ${rule.input}, which no loaded model outputs: it will never fire (known: ${known.join(', ') || 'none'})`);
    }
  }

  return {
    name: 'rules',
    start(context) {
      ctx = context;
      engine = new RuleEngine(config.decisions, context.storage.state.get().rules);
      context.events.on('reading', (reading) => decide(`reading.${reading.channel}`, reading.value, reading.t));
      context.events.on('model-output', async (output) => {
        const { model, version, sha256, inputHash, features, probabilities, t } = output;
        const evidence: ModelEvidence = { model, version, sha256, inputHash, features, probabilities, t };
        for (const [label, p] of Object.entries(probabilities)) await decide(`model.${model}.${label}`, p, t, evidence);
      });
      context.events.on('started', () => checkRuleInputs(context));
      return Promise.resolve();
    },
    async stop() {
      if (ctx && engine) {
        const rules = engine.snapshot();
        await ctx.storage.state.update((s) => { s.rules = rules; });
      }
      ctx = undefined;
    },
    status: () => ({ activeDecisions: engine?.active() ?? [] }),
  };
}

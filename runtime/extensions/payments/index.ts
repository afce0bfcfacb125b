/**
 * Offline micro-payments between nodes (issue 15): per (payer, payee, unit)
 * a one-way channel of cumulative vouchers signed by the payer, carried as
 * feed entries sealed to the payee; a credit limit per peer; settlements
 * recorded by the payee. Used only through its commands (commands.ts).
 */
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import { declarePaymentCommands } from './commands.js';
import { IssuedState } from './issued-state.js';
import { PaymentService } from './payment-service.js';

export function createPayments(config: ApiaryConfig): Extension {
  let service: PaymentService | undefined;
  return {
    name: 'payments',
    async start(context) {
      const { mesh } = context;
      if (!mesh) throw new Error('payments need the mesh (mesh.enabled)');
      const created = new PaymentService({
        mesh, identity: context.identity, config: config.payments, counters: context.counters, logger: context.logger,
        state: new IssuedState(IssuedState.fileIn(config.node.dataDir)),
        appended: (type) => context.events.emit('feed-append', type),
      });
      service = created;
      await created.open();
      context.events.on('feed-entry', (entry) => created.onEntry(entry));
      declarePaymentCommands(context.commands, created);
    },
    async stop() {
      await service?.idle();
    },
    status: () => (service ? { payments: service.status() } : {}),
  };
}

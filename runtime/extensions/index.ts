/**
 * The extension list: one line per capability. Each is imported only when
 * enabled (RAM on a 512 MB board); `declareCommands` lists its commands
 * without loading it. Order matters where `after` does not say: listeners run
 * in start order, so the recorder stores a reading before the rules decide on it.
 */
import type { ExtensionEntry } from '../core/extension.js';
import { declareAuditCommands } from './decision-audit/commands.js';
import { declareModelUpdateCommands } from './model-updates/commands.js';
import { declareRuntimeUpdateCommands } from './runtime-updates/commands.js';
import { declareFlowsCommands } from './flows/commands.js';
import { declareVoiceCommands } from './voice/commands.js';
import { declareAskCommands } from './ask/commands.js';
import { declarePaymentCommands } from './payments/commands.js';
import { declareTasksCommands } from './tasks/commands.js';
import { systemdNotifyEnabled } from './systemd/config.js';

export const EXTENSIONS: readonly ExtensionEntry[] = [
  { name: 'recorder', enabled: () => true, load: async () => (await import('./recorder/index.js')).createRecorder },
  { name: 'rules', after: ['recorder'], enabled: () => true, load: async () => (await import('./rules/index.js')).createRules },
  {
    name: 'model-updates',
    enabled: (c) => c.mesh.enabled && c.broker.enabled && c.models.meshUpdates,
    load: async () => (await import('./model-updates/index.js')).createModelUpdates,
    declareCommands: (registry) => declareModelUpdateCommands(registry),
  },
  { name: 'decision-audit', enabled: () => true, load: async () => (await import('./decision-audit/index.js')).createDecisionAudit, declareCommands: (registry) => declareAuditCommands(registry) },
  // Small and text-only (voice is its own extension): on unless ask.enabled is false. After the rules, so it announces a decision once it is stored.
  { name: 'ask', after: ['rules'], enabled: (c) => c.ask.enabled, load: async () => (await import('./ask/index.js')).createAsk, declareCommands: (registry) => declareAskCommands(registry) },
  { name: 'uplink', enabled: (c) => c.mesh.enabled && c.broker.enabled && c.mesh.uplink !== undefined, load: async () => (await import('./uplink/index.js')).createUplink },
  { name: 'home-assistant', after: ['rules'], enabled: (c) => c.homeAssistant.enabled, load: async () => (await import('./home-assistant/index.js')).createHomeAssistant },
  { name: 'mqtt-commands', enabled: () => true, load: async () => (await import('./mqtt-commands/index.js')).createMqttCommands },
  {
    name: 'runtime-updates',
    // Small, and inert outside the launcher (/usr/bin/apiary from the .deb): a checkout has no releases to confirm or roll back.
    enabled: (c) => c.updates.enabled,
    load: async () => (await import('./runtime-updates/index.js')).createRuntimeUpdates,
    declareCommands: (registry) => declareRuntimeUpdateCommands(registry),
  },
  // Node-RED in its own supervised process: off unless flows.enabled (it is not a runtime dependency).
  { name: 'flows', enabled: (c) => c.flows.enabled, load: async () => (await import('./flows/index.js')).createFlows, declareCommands: (registry) => declareFlowsCommands(registry) },
  // Speech in and out (answers through the ask extension's `ask` command) and the Wyoming endpoint: off unless voice.enabled.
  { name: 'voice', after: ['ask'], enabled: (c) => c.voice.enabled, load: async () => (await import('./voice/index.js')).createVoice, declareCommands: (registry) => declareVoiceCommands(registry) },
  // Offline micro-payments (vouchers sealed in the feeds): off unless payments.enabled, and only with the mesh.
  {
    name: 'payments',
    enabled: (c) => c.payments.enabled && c.mesh.enabled && c.broker.enabled,
    load: async () => (await import('./payments/index.js')).createPayments,
    declareCommands: (registry) => declarePaymentCommands(registry),
  },
  // The node's own MCP endpoint (loopback and read-only, or owner tokens): off unless mcp.http.enabled; the SDK loads only then.
  { name: 'mcp-http', enabled: (c) => c.mcp.http.enabled, load: async () => (await import('./mcp-http/index.js')).createMcpHttp },
  // Work between nodes by contract net, within the owner's mandate: off unless tasks.enabled; needs the mesh.
  { name: 'tasks', after: ['rules'], enabled: (c) => c.tasks.enabled && c.mesh.enabled, load: async () => (await import('./tasks/index.js')).createTasks, declareCommands: (registry) => declareTasksCommands(registry) },
  // Last: it says READY once every other extension has started, and STOPPING before any of them stops.
  { name: 'systemd', enabled: (c) => systemdNotifyEnabled(c.systemd.notify, process.env), load: async () => (await import('./systemd/index.js')).createSystemd },
];

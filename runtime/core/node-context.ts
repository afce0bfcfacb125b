/**
 * What the kernel hands each extension: the node's services, built once and
 * frozen. Libraries (the broker, the mesh, the feed store) keep their own
 * explicit options; this is for features only.
 */
import type { ChannelSpec, Device, Reading } from '../../devices/device.js';
import type { EmbeddedBroker } from '../broker/embedded-broker.js';
import type { Bus } from '../bus/bus.js';
import type { NodeTopics } from '../bus/topics.js';
import type { Clock } from '../clock.js';
import type { CommandRegistry } from '../commands/command-registry.js';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import type { Decision } from '../decide/rule-engine.js';
import type { NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import type { Mesh } from '../mesh/mesh.js';
import type { ModelHost } from './model-host.js';
import type { ModelOutput } from './model-types.js';
import type { NodeEventMap, NodeEventName } from './node-events.js';
import type { NodeStorage } from './node-storage.js';

/** The last value of each reading channel, model and rule (for `apiary status`). */
export interface LatestValues {
  readings: Record<string, Reading>;
  models: Record<string, ModelOutput>;
  decisions: Record<string, Decision>;
}

/** The node's events as one extension sees them: what it adds is removed when it stops. */
export interface ExtensionEvents {
  on<E extends NodeEventName>(event: E, listener: (...args: NodeEventMap[E]) => unknown): void;
  emit<E extends NodeEventName>(event: E, ...args: NodeEventMap[E]): Promise<void>;
}

export interface NodeContext {
  readonly config: ApiaryConfig;
  /** Bound to the extension's name (`ext`). */
  readonly logger: Logger;
  readonly clock: Clock;
  readonly counters: Counters;
  readonly identity: NodeIdentity;
  readonly topics: NodeTopics;
  readonly events: ExtensionEvents;
  readonly commands: CommandRegistry;
  readonly storage: NodeStorage;
  readonly bus: Bus;
  /** Built, and opened once every extension has started (so none misses a reading). */
  readonly device: Device;
  /** The device's channels and those extensions derive from other input (a sound level from audio). */
  channels(): readonly ChannelSpec[];
  /** Declares a derived reading channel (at start), published like a sensor's. */
  addChannel(channel: ChannelSpec): void;
  readonly models: ModelHost;
  /** Settles once the models are loaded (after the first reading is out, or a second). */
  readonly modelsReady: Promise<unknown>;
  readonly broker: EmbeddedBroker | undefined;
  /** Created and its local state open; it goes on the network once every extension has started. */
  readonly mesh: Mesh | undefined;
  readonly latest: Readonly<LatestValues>;
  /** Keeps hold of async work so stop() waits for it; errors are counted (`node.pipeline_errors`), never thrown. */
  track(work: Promise<unknown>): void;
  /** Calls `fn` every `intervalMs` of node time; the kernel clears it when the node stops (before the extensions stop), or when this extension fails to start. */
  every(intervalMs: number, fn: () => void): void;
}

/**
 * The kernel: the one place that builds a node. It starts the core services
 * in dependency order (data dir, identity, storage, mesh, broker, bus, model
 * host, device), then the extensions (runtime/extensions, and the
 * application's), and bridges the device to the node's typed events. Every
 * feature is an extension; this file does not grow with them. Constructors
 * only assign; `start()` and `stop()` do the work, and `stop()` closes
 * everything `start()` opened, also when it arrives during start.
 */
import type { ChannelSpec, Device } from '../../devices/device.js';
import { clockSpeed } from '../../devices/config.js';
import { createDevice } from '../../devices/create-device.js';
import { SelectedInferenceBackend } from '../../models/inference/select-backend.js';
import { EmbeddedBroker } from '../broker/embedded-broker.js';
import { localTopicRulesFor } from '../broker/topic-acl.js';
import type { Bus } from '../bus/bus.js';
import { EmbeddedBus } from '../bus/embedded-bus.js';
import { MqttBus } from '../bus/mqtt-bus.js';
import { nodeTopics, type NodeTopics } from '../bus/topics.js';
import { ScaledClock, type Clock } from '../clock.js';
import { CommandRegistry } from '../commands/command-registry.js';
import type { ApiaryConfig } from '../config/schema.js';
import { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes, describeError, isApiaryError } from '../errors.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import { createMesh, type MeshParts } from '../mesh/create-mesh.js';
import type { Mesh } from '../mesh/mesh.js';
import { anonymousPolicy } from '../mesh/mesh-access.js';
import type { DataDirLock } from '../storage/data-dir-lock.js';
import { brokerOptions } from './broker-options.js';
import { declareCoreCommands } from './core-commands.js';
import type { ExtensionEntry } from './extension.js';
import { ExtensionRunner } from './extension-runner.js';
import { ModelHost } from './model-host.js';
import { modelTrustFromConfig } from './model-trust.js';
import type { LatestValues, NodeContext } from './node-context.js';
import { NodeEvents } from './node-events.js';
import { NodeWork } from './node-work.js';
import { acquireDataDir } from './node-preflight.js';
import { NodeStorage } from './node-storage.js';
import { ownFeed } from './feed-index.js';
import { saveCountersPeriodically, savedCounters } from './persisted-counters.js';
import { nodeInfo, nodeStatus, trackLatest } from './node-status.js';

export { APIARY_VERSION } from './node-status.js';

export type { LatestValues, NodeContext } from './node-context.js';

export class ApiaryNode {
  readonly counters = new Counters();
  readonly clock: Clock;
  readonly latest: LatestValues = { readings: {}, models: {}, decisions: {} };
  readonly commands = new CommandRegistry();
  private readonly events: NodeEvents;
  private readonly extensions: ExtensionRunner;
  private readonly abort = new AbortController();
  private readonly work: NodeWork;
  private core: Omit<NodeContext, 'logger' | 'events' | 'track' | 'every'> | undefined;
  private readonly derivedChannels: ChannelSpec[] = [];
  private storage: NodeStorage | undefined;
  private broker: EmbeddedBroker | undefined;
  private bus: Bus | undefined;
  private device: Device | undefined;
  private models: ModelHost | undefined;
  private backend: SelectedInferenceBackend | undefined;
  private meshParts: MeshParts | undefined;
  private dataDirLock: DataDirLock | undefined;
  private startedAtReal = 0;
  private countersSince = 0;
  private modelsReady: Promise<unknown> = Promise.resolve();
  private onFirstReading: (() => void) | undefined;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: ApiaryConfig, private readonly logger: Logger, extensions: readonly ExtensionEntry[] = []) {
    this.clock = new ScaledClock({ speed: clockSpeed(config.device) });
    this.events = new NodeEvents(this.counters, logger);
    this.extensions = new ExtensionRunner(extensions, config, this.counters, logger);
    this.work = new NodeWork(this.counters, logger);
  }

  get nodeId(): string { return this.ctx.identity.nodeId; }
  get identity(): NodeIdentity { return this.ctx.identity; }
  get topics(): NodeTopics { return this.ctx.topics; }
  /** The port the embedded broker listens on (useful with --port 0). */
  get brokerPort(): number | undefined { return this.broker?.port; }
  get brokerUrl(): string | undefined { return this.config.bus.url ?? this.broker?.url; }
  /** The mesh, when enabled (tests and the demo look inside). */
  get mesh(): Mesh | undefined { return this.meshParts?.mesh; }

  /** How many node-event listeners `owner` (an extension's name, or 'kernel') holds: read-only, for tests and status. */
  listenerCount(owner: string): number {
    return this.events.count(owner);
  }

  /** Starts the node; a stop() meanwhile makes it reject with START_ABORTED once the running phase is done. */
  start(): Promise<void> {
    if (this.starting) return Promise.reject(new Error('start() was already called'));
    this.starting = this.startUp();
    return this.starting;
  }

  private async startUp(): Promise<void> {
    const { config, logger, counters, clock } = this;
    const signal = this.abort.signal;
    this.startedAtReal = Date.now();
    // Start-up phases at debug level: start-up time matters on a 1 GHz board. Each is a point where a stop() takes effect.
    let phaseStart = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      logger.debug({ ms: Math.round(now - phaseStart) }, `start-up: ${name}`);
      phaseStart = now;
      if (signal.aborted) throw new ApiaryError(ErrorCodes.START_ABORTED, `start-up stopped after "${name}"`);
    };
    phase('begin');
    // Everything that can fail is checked before anything is written (no identity left by a failed start).
    this.dataDirLock = await acquireDataDir(config, logger, counters);
    phase('data dir locked, ports free');
    const { identity, created } = await loadOrCreateIdentity(config.node.dataDir);
    if (created) logger.info({ nodeId: identity.nodeId }, 'created a new node identity');
    const topics = nodeTopics(config.bus.topicPrefix, identity.nodeId);
    const storage = (this.storage = new NodeStorage(config, counters));
    this.countersSince = await storage.startRun(logger, clock);
    this.work.hold('kernel', saveCountersPeriodically(storage, counters, this.countersSince));
    phase('identity and storage');

    // Chosen at the first model load (probing onnxruntime-node in a child process if needed), so only when a model is used.
    this.backend = new SelectedInferenceBackend({ preference: config.models.backend, dataDir: config.node.dataDir, logger, counters });
    // The mesh first: on a first start it creates the owner key, whose signed models this node trusts.
    this.meshParts = config.mesh.enabled && config.broker.enabled ? await createMesh(config, identity, counters, logger) : undefined;
    phase('mesh created');
    const models = (this.models = new ModelHost(this.backend, { dir: config.models.dir, trust: await modelTrustFromConfig(config), logger, counters, dataDir: config.node.dataDir }));
    if (config.broker.enabled) {
      const access = this.meshParts?.access ?? anonymousPolicy(config.broker.anonymous, localTopicRulesFor(config, identity.nodeId, counters));
      this.broker = new EmbeddedBroker(await brokerOptions(config, logger, counters, access));
      await this.broker.start();
      logger.info({ url: this.broker.url, ...(config.broker.tls ? { tlsPort: this.broker.tlsPort } : {}) }, 'MQTT broker listening');
      phase('broker listening');
    }
    const mesh = this.broker ? this.meshParts?.mesh : undefined;
    const feedCut = mesh && `storage.feed.${mesh.nodeId}.dropped_corrupt`;
    const cutBefore = feedCut ? counters.get(feedCut) : 0;
    await mesh?.open(); // local state only: on the network once the extensions listen
    if (mesh && feedCut) {
      // Shared streams are written once, into the node's own feed, and indexed from it (feed-index.ts).
      storage.attachFeed(ownFeed(mesh));
      // Their torn tail after a crash is the feed's: said like the streams' (node-storage.ts).
      const cut = counters.get(feedCut) - cutBefore;
      if (cut > 0) logger.warn({ cut: [{ stream: 'feed', records: cut }] }, `recovery cut feed (this node's, where its shared streams are): ${cut} torn record${cut === 1 ? '' : 's'}; every record before is kept`);
    }
    this.bus = config.bus.url !== undefined || !this.broker
      ? new MqttBus({ url: config.bus.url ?? '', clientId: `apiary-${identity.nodeId}`, stateTopic: topics.state, logger, counters })
      : new EmbeddedBus(this.broker, topics.state, counters);
    await this.bus.start();
    phase('broker and bus');

    this.device = createDevice(config.device, clock);
    // Models load once the first reading is out (or after a second): loading onnxruntime
    // blocks the event loop for tens of ms, and the first reading is the user's first sign
    // of life. Not loaded at all for a start that is being stopped.
    const firstReadingOut = new Promise<void>((resolve) => {
      this.onFirstReading = resolve;
      const fallback = setTimeout(resolve, 1_000);
      this.work.hold('kernel', () => clearTimeout(fallback));
    });
    this.modelsReady = firstReadingOut.then(async () => {
      if (signal.aborted) return;
      await models.start();
      logger.debug('start-up: models loaded and verified');
    });
    this.modelsReady.catch(() => undefined); // awaited below; this only prevents an early unhandled-rejection crash
    this.core = Object.freeze({
      config, clock, counters, identity, topics, storage, models, mesh, commands: this.commands, latest: this.latest,
      bus: this.bus, device: this.device, broker: this.broker, modelsReady: this.modelsReady,
      channels: () => [...(this.device?.channels ?? []), ...this.derivedChannels],
      addChannel: (channel: ChannelSpec) => { if (!this.derivedChannels.some((c) => c.name === channel.name)) this.derivedChannels.push(channel); },
    });
    declareCoreCommands(this.commands, { status: () => this.status(), mesh, counters, logger });
    this.extensions.declareDisabled(this.commands);
    trackLatest(this.events, this.latest);
    await this.extensions.start((name) => this.contextFor(name), signal, (name) => this.release(name));
    phase('extensions');

    if (mesh) {
      mesh.on('entry', (entry) => this.work.track(this.events.emit('feed-entry', entry)));
      await mesh.start(this.broker as EmbeddedBroker);
      logger.info({ owner: this.meshParts?.identity.certificate.owner, neighbours: config.mesh.neighbours.length }, 'mesh started');
      phase('mesh started');
    }
    const device = this.device;
    device.on('reading', (reading) => this.work.track(this.events.emit('reading', reading).then(() => this.firstReadingOut())));
    device.on('audio', (frame) => this.work.track(this.events.emit('audio', frame)));
    device.on('button', (event) => this.work.track(this.events.emit('button', event)));
    device.on('warning', (err) => logger.warn({ err: describeError(err) }, 'device warning'));
    device.on('state', (state) => { logger.info({ device: device.kind, state }, `device ${state}`); this.work.track(this.events.emit('device-state', state)); });
    await device.open();
    phase('device open');
    await this.modelsReady;
    phase('models ready');
    await this.bus.publishJson(topics.info, nodeInfo(config, identity, this.models), { retain: true, qos: 1 });
    await this.events.emit('started');
    phase('started');
    logger.info({ nodeId: identity.nodeId, device: device.kind, speed: clock.speed, dataDir: config.node.dataDir }, 'Apiary node started');
  }

  /** Stops the node, or a start in progress (at its next phase); closes all start() opened. Calls after the first share its result. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    this.abort.abort();
    this.work.clear();
    this.firstReadingOut(); // a start() still waiting for its first reading goes on and sees the stop
    // Nothing is closed under a phase still running: start gives up at its next phase.
    let refusedToStart = false;
    await this.starting?.catch((err: unknown) => {
      if (isApiaryError(err, ErrorCodes.START_ABORTED)) return;
      this.logger.debug({ err: describeError(err) }, 'start-up had failed');
      refusedToStart = !this.dataDirLock; // it never took the data dir: nothing ran, nothing "stopped"
    });
    await this.modelsReady.catch(() => undefined);
    this.work.clear();
    await this.device?.close().catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'device close failed'));
    await this.work.settle();
    await this.extensions.stop((name) => this.release(name));
    await this.work.settle();
    if (this.storage && this.dataDirLock) {
      const counters = savedCounters(this.counters, this.countersSince);
      await this.storage.state.update((s) => { s.lastStopAt = this.clock.now(); s.cleanShutdown = true; s.counters = counters; });
    }
    await this.meshParts?.mesh.stop().catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'mesh stop failed'));
    await this.bus?.stop().catch(() => undefined);
    await this.broker?.stop();
    await this.models?.stop();
    await this.storage?.close();
    await this.dataDirLock?.release();
    this.device = undefined;
    this.bus = undefined;
    this.broker = undefined;
    if (this.starting && !refusedToStart) this.logger.info('Apiary node stopped');
  }

  /** The kernel's status with each extension's merged in (`apiary status`). */
  async status(): Promise<Record<string, unknown>> {
    const { identity } = this.ctx;
    return this.extensions.status(await nodeStatus({
      config: this.config, identity, clock: this.clock, counters: this.counters, countersSince: this.countersSince, startedAtReal: this.startedAtReal,
      latest: this.latest, storage: this.storage, device: this.device, broker: this.broker, mesh: this.meshParts?.mesh, backend: this.backend, models: this.models,
    }));
  }

  private get ctx(): NonNullable<ApiaryNode['core']> {
    if (!this.core) throw new Error('the node is not started');
    return this.core;
  }

  /** An extension's view: its own logger, and listeners held under its name. */
  private contextFor(name: string): NodeContext {
    const events = this.events;
    return Object.freeze({
      ...this.ctx,
      logger: this.logger.child({ ext: name }),
      commands: this.commands.forOwner(name),
      events: {
        on: (event, listener) => events.on(name, event, listener),
        emit: (event, ...args) => events.emit(event, ...args),
      },
      track: (work: Promise<unknown>) => this.work.track(work),
      every: (intervalMs: number, fn: () => void) => this.work.hold(name, this.clock.every(intervalMs, fn)),
    } satisfies NodeContext);
  }

  /** What the kernel holds for an extension that stopped or failed to start: its listeners and timers. */
  private release(name: string): void {
    this.events.removeAll(name);
    // After a failed start (its commands were defined, but it is not running), they answer that it is unavailable.
    if (!this.stopping && this.commands.removeOwner(name).length > 0) this.extensions.declareFailed(name, this.commands);
    this.work.clear(name);
  }

  private firstReadingOut(): void {
    this.onFirstReading?.();
    this.onFirstReading = undefined;
  }
}

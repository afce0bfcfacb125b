/**
 * The one place that builds a node. It hands each part a small context and
 * wires the loop: sense (device) -> store -> infer (models) -> decide (rules)
 * -> publish (MQTT). Constructors only assign; `start()` and `stop()` do the
 * work, in dependency order, and `stop()` closes everything `start()` opened.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { AudioFrame, Device, Reading } from '../../devices/device.js';
import { createDevice } from '../../devices/create-device.js';
import { SelectedInferenceBackend } from '../../models/inference/select-backend.js';
import { EmbeddedBroker } from '../broker/embedded-broker.js';
import { localTopicRulesFor } from '../broker/topic-acl.js';
import type { Bus } from '../bus/bus.js';
import { EmbeddedBus } from '../bus/embedded-bus.js';
import { MqttBus } from '../bus/mqtt-bus.js';
import { discoveryMessages } from '../bus/home-assistant.js';
import { nodeTopics, type NodeTopics } from '../bus/topics.js';
import { ScaledClock, type Clock } from '../clock.js';
import type { ApiaryConfig } from '../config/schema.js';
import { Counters } from '../counters.js';
import { RuleEngine, type Decision } from '../decide/rule-engine.js';
import { ApiaryError, ErrorCodes, describeError, isApiaryError } from '../errors.js';
import { loadOrCreateIdentity, type NodeIdentity } from '../identity/identity.js';
import type { Logger } from '../log.js';
import { CommandHandler } from './commands.js';
import { nodeCommands } from './node-commands.js';
import { ModelUpdates, pendingReleasesFile } from './model-updates.js';
import type { DecisionRecord, ModelEvidence } from './decision-audit.js';
import { modelTrustFromConfig, releasePolicyFromConfig } from './model-trust.js';
import { HiveInference, SOUND_LEVEL_CHANNEL, THERMAL_MODEL, type ModelOutput } from './hive-inference.js';
import { NodeStorage } from './node-storage.js';
import { acquireDataDir } from './node-preflight.js';
import { describeRecovery } from './recovery-report.js';
import { restoreCounters, saveCountersPeriodically, savedCounters } from './persisted-counters.js';
import { sharedDigest } from './shared-digest.js';
import type { DataDirLock } from '../storage/data-dir-lock.js';
import { packagePath } from '../package-root.js';
import { createMesh, readBrokerTls } from '../mesh/create-mesh.js';
import type { Mesh } from '../mesh/mesh.js';
import { Uplink } from '../mesh/uplink.js';
import { anonymousPolicy } from '../mesh/mesh-access.js';

export const APIARY_VERSION = (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string }).version;

/** What every part of the node may know about it. */
export interface NodeContext {
  readonly config: ApiaryConfig;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly counters: Counters;
  readonly identity: NodeIdentity;
  readonly topics: NodeTopics;
}

export interface LatestValues {
  readings: Record<string, Reading>;
  models: Record<string, ModelOutput>;
  decisions: Record<string, Decision>;
}

export class ApiaryNode {
  readonly counters = new Counters();
  readonly clock: Clock;
  readonly latest: LatestValues = { readings: {}, models: {}, decisions: {} };
  private context: NodeContext | undefined;
  private storage: NodeStorage | undefined;
  private broker: EmbeddedBroker | undefined;
  private bus: Bus | undefined;
  private device: Device | undefined;
  private inference: HiveInference | undefined;
  private backend: SelectedInferenceBackend | undefined;
  private rules: RuleEngine | undefined;
  private meshPart: Mesh | undefined;
  private uplink: Uplink | undefined;
  private modelUpdates: ModelUpdates | undefined;
  private readonly stops: (() => void)[] = [];
  private readonly inFlight = new Set<Promise<unknown>>();
  private startedAtReal = 0;
  private countersSince = 0;
  private modelsReady: Promise<unknown> = Promise.resolve();
  private onFirstReading: (() => void) | undefined;
  private running = false;
  private dataDirLock: DataDirLock | undefined;
  /** Set by stop(): start() gives up at its next phase, and stop() waits for that before closing anything. */
  private stopRequested = false;
  private starting: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;

  constructor(private readonly config: ApiaryConfig, private readonly logger: Logger) {
    this.clock = new ScaledClock({ speed: config.device.kind === 'simulated-beehive' ? config.device.simulation.speed : 1 });
  }

  get nodeId(): string {
    return this.ctx.identity.nodeId;
  }

  get identity(): NodeIdentity {
    return this.ctx.identity;
  }

  get topics(): NodeTopics {
    return this.ctx.topics;
  }

  /** The port the embedded broker listens on (useful with --port 0). */
  get brokerPort(): number | undefined {
    return this.broker?.port;
  }

  get brokerUrl(): string | undefined {
    return this.config.bus.url ?? this.broker?.url;
  }

  /** Starts the node; a stop() meanwhile makes it reject with START_ABORTED once the running phase is done. */
  start(): Promise<void> {
    if (this.starting) return Promise.reject(new Error('start() was already called'));
    this.starting = this.startUp();
    return this.starting;
  }

  private async startUp(): Promise<void> {
    const { config, logger, counters, clock } = this;
    this.startedAtReal = Date.now();
    // Start-up phases at debug level: start-up time matters on a 1 GHz board. Each is a point where a stop() takes effect.
    let phaseStart = performance.now();
    const phase = (name: string) => {
      const now = performance.now();
      logger.debug({ ms: Math.round(now - phaseStart) }, `start-up: ${name}`);
      phaseStart = now;
      if (this.stopRequested) throw new ApiaryError(ErrorCodes.START_ABORTED, `start-up stopped after "${name}"`);
    };
    phase('begin');
    // Everything that can fail is checked before anything is written (no identity left by a failed start).
    this.dataDirLock = await acquireDataDir(config, logger, counters);
    phase('data dir locked, ports free');
    const { identity, created } = await loadOrCreateIdentity(config.node.dataDir);
    if (created) logger.info({ nodeId: identity.nodeId }, 'created a new node identity');
    const topics = nodeTopics(config.bus.topicPrefix, identity.nodeId);
    this.context = Object.freeze({ config, logger, clock, counters, identity, topics });

    this.storage = new NodeStorage(config, counters);
    await this.storage.start();
    const previous = this.storage.state.get();
    if (!previous.cleanShutdown) {
      const recovery = describeRecovery(await this.storage.stats());
      logger.warn({ cut: recovery.streams }, `the last run did not shut down cleanly; ${recovery.text}`);
    }
    this.countersSince = restoreCounters(counters, previous);
    const since = this.countersSince;
    await this.storage.state.update((s) => { s.boots += 1; s.lastStartAt = clock.now(); s.cleanShutdown = false; s.counters = savedCounters(counters, since); });
    this.stops.push(saveCountersPeriodically(this.storage, counters, since));
    this.rules = new RuleEngine(config.decisions, previous.rules);
    phase('identity and storage');

    // Models load once the first reading is out (or after a second): loading onnxruntime
    // blocks the event loop for tens of ms, and the first reading is the user's first sign
    // of life. Sound frames wait for the models; readings do not.
    // Chosen at the first model load (probing onnxruntime-node in a child process if needed), so only when a model is enabled.
    this.backend = new SelectedInferenceBackend({ preference: config.models.backend, dataDir: config.node.dataDir, logger, counters });
    // The mesh first: on a first start it creates the owner key, whose signed models this node trusts.
    const meshParts = config.mesh.enabled && config.broker.enabled ? await createMesh(config, identity, counters, logger) : undefined;
    phase('mesh created');
    const trust = await modelTrustFromConfig(config);
    const inference = new HiveInference(config.models, this.backend, {
      trust, logger, counters, dataDir: config.node.dataDir,
      onInvalidOutput: (model, err) => this.modelUpdates?.onInvalidOutput(model, err),
    });
    this.inference = inference;
    const firstReadingOut = new Promise<void>((resolve) => {
      this.onFirstReading = resolve;
      const fallback = setTimeout(resolve, 1_000);
      this.stops.push(() => clearTimeout(fallback));
    });
    // Not loaded at all for a start that is being stopped.
    const modelsLoaded = firstReadingOut.then(async () => {
      if (this.stopRequested) return;
      await inference.start();
      logger.debug('start-up: models loaded and verified');
    });
    this.modelsReady = modelsLoaded;
    modelsLoaded.catch(() => undefined); // awaited below; this only prevents an early unhandled-rejection crash
    if (config.broker.enabled) {
      const access = meshParts?.access ?? anonymousPolicy(config.broker.anonymous, localTopicRulesFor(config, identity.nodeId, counters));
      const { host, port, tls, maxQueuedMessages, maxQueuedBytes, stallTimeout, connectTimeout, maxConnectBytes, maxConnections, maxConnectionsPerAddress, maxInflightQos2, maxTopicLevels } = config.broker;
      const { maxRetainedPerClient, maxRetainedBytesPerClient, maxRetained, maxRetainedBytes, maxOfflineQueuedBytes, maxSubscriptionsPerClient } = config.broker;
      this.broker = new EmbeddedBroker({
        host, port, logger, counters, access, maxQueuedMessages, maxQueuedBytes, stallTimeoutMs: stallTimeout, maxTopicLevels,
        connectTimeoutMs: connectTimeout, maxConnectBytes, maxConnections, maxConnectionsPerAddress, maxInflightQos2, maxOfflineQueuedBytes, maxSubscriptionsPerClient,
        retained: { perClientMessages: maxRetainedPerClient, perClientBytes: maxRetainedBytesPerClient, totalMessages: maxRetained, totalBytes: maxRetainedBytes },
        ...(tls ? { tlsListener: { host: tls.host ?? host, port: tls.port, tls: await readBrokerTls(tls) } } : {}),
      });
      await this.broker.start();
      logger.info({ url: this.broker.url, ...(tls ? { tlsPort: this.broker.tlsPort } : {}) }, 'MQTT broker listening');
      phase('broker listening');
    }
    if (meshParts && this.broker) {
      this.meshPart = meshParts.mesh;
      if (config.models.meshUpdates) {
        // Listening before the mesh starts, so no release that arrives early is missed; handled once the models are loaded.
        this.modelUpdates = new ModelUpdates({ mesh: meshParts.mesh, host: inference, trust, policy: releasePolicyFromConfig(config, trust), counters, logger, pendingFile: pendingReleasesFile(config.node.dataDir) });
        this.modelUpdates.start(modelsLoaded);
      }
      await meshParts.mesh.start(this.broker);
      logger.info({ owner: meshParts.identity.certificate.owner, neighbours: config.mesh.neighbours.length }, 'mesh started');
      phase('mesh started');
      const uplinkConfig = config.mesh.uplink;
      if (uplinkConfig) {
        const uplink = new Uplink({
          ...uplinkConfig,
          clientId: `apiary-uplink-${identity.nodeId}`,
          store: meshParts.mesh.store,
          stateFile: path.join(config.node.dataDir, 'mesh', 'uplink-cursor.json'),
          ownNodeId: identity.nodeId,
          topicPrefix: config.bus.topicPrefix,
          counters,
          logger,
        });
        this.uplink = uplink;
        meshParts.mesh.on('entry', () => uplink.notify());
        await uplink.start();
      }
    }
    this.bus = config.bus.url !== undefined || !this.broker
      ? new MqttBus({ url: config.bus.url ?? '', clientId: `apiary-${identity.nodeId}`, stateTopic: topics.state, logger, counters })
      : new EmbeddedBus(this.broker, topics.state, counters);
    await this.bus.start();
    phase('broker and bus');
    const commands = new CommandHandler(this.ctx, this.bus, nodeCommands({
      status: () => this.status(), injectSwarm: () => this.injectSwarm(), mesh: meshParts?.mesh, modelUpdates: this.modelUpdates,
      modelFor: (sha256, version) => inference.modelFor(sha256, version), modelsReady: () => this.modelsReady, counters, logger,
    }));
    await commands.start();
    phase('commands');

    this.device = createDevice(config.device, clock);
    this.device.on('reading', (reading) => this.track(this.onReading(reading)));
    this.device.on('audio', (frame) => this.track(this.onAudio(frame)));
    this.device.on('warning', (err) => logger.warn({ err: describeError(err) }, 'device warning'));
    await this.device.open();
    phase('device open');
    await modelsLoaded;
    phase('models ready');
    this.checkRuleInputs();
    await this.publishInfo();
    await this.publishDiscovery();
    phase('discovery published');

    if (config.models.thermal.enabled) {
      this.track(this.restoreThermalWindow());
      this.stops.push(clock.every(config.models.thermal.every, () => this.track(this.onThermalTick())));
    }
    this.running = true;
    logger.info({ nodeId: identity.nodeId, device: this.device.kind, speed: clock.speed, dataDir: config.node.dataDir }, 'Apiary node started');
  }

  /** Stops the node, or a start in progress (at its next phase); closes all start() opened. Calls after the first share its result. */
  stop(): Promise<void> {
    this.stopping ??= this.shutDown();
    return this.stopping;
  }

  private async shutDown(): Promise<void> {
    this.stopRequested = true;
    this.running = false;
    for (const stop of this.stops.splice(0)) stop();
    this.onFirstReading?.(); // a start() still waiting for its first reading goes on and sees the stop
    // Nothing is closed under a phase still running: start gives up at its next phase.
    let refusedToStart = false;
    await this.starting?.catch((err: unknown) => {
      if (isApiaryError(err, ErrorCodes.START_ABORTED)) return;
      this.logger.debug({ err: describeError(err) }, 'start-up had failed');
      refusedToStart = !this.dataDirLock; // it never took the data dir: nothing ran, nothing "stopped"
    });
    await this.modelsReady.catch(() => undefined);
    for (const stop of this.stops.splice(0)) stop();
    await this.device?.close().catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'device close failed'));
    await Promise.allSettled([...this.inFlight]);
    if (this.storage && this.rules) {
      const rules = this.rules.snapshot();
      const counters = savedCounters(this.counters, this.countersSince);
      await this.storage.state.update((s) => { s.rules = rules; s.lastStopAt = this.clock.now(); s.cleanShutdown = true; s.counters = counters; });
    }
    await this.uplink?.stop().catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'uplink stop failed'));
    await this.modelUpdates?.stop();
    await this.meshPart?.stop().catch((err: unknown) => this.logger.warn({ err: describeError(err) }, 'mesh stop failed'));
    await this.bus?.stop().catch(() => undefined);
    await this.broker?.stop();
    await this.inference?.stop();
    await this.storage?.close();
    await this.dataDirLock?.release();
    this.device = undefined;
    this.bus = undefined;
    this.broker = undefined;
    if (this.starting && !refusedToStart) this.logger.info('Apiary node stopped');
  }

  async status(): Promise<Record<string, unknown>> {
    const streams = (await this.storage?.stats()) ?? [];
    return {
      nodeId: this.ctx.identity.nodeId,
      publicKey: this.ctx.identity.publicKey,
      name: this.config.node.name,
      version: APIARY_VERSION,
      device: this.device?.kind ?? this.config.device.kind,
      soundState: this.device?.simulation?.soundState(),
      speed: this.clock.speed,
      uptimeS: Math.round((Date.now() - this.startedAtReal) / 1000),
      nodeTime: this.clock.now(),
      latest: this.latest,
      activeDecisions: this.rules?.active() ?? [],
      storage: { dataDir: this.config.node.dataDir, bytes: streams.reduce((sum, s) => sum + s.bytes, 0), streams },
      counters: this.counters.snapshot(),
      countersSince: new Date(this.countersSince).toISOString(),
      deviceCounters: this.device?.stats() ?? {},
      broker: this.broker ? { url: this.broker.url, clients: this.broker.connectedClients, connections: this.broker.openConnections } : undefined,
      mesh: this.meshPart ? { ...this.meshPart.status(), shared: sharedDigest(this.meshPart.state), uplink: this.uplink?.status() } : undefined,
      inference: this.backend?.selection,
      models: {
        dir: this.inference?.modelsDir,
        loaded: this.inference?.models().map((m) => ({ name: m.manifest.name, version: m.manifest.version, sha256: m.sha256, signer: m.signer })) ?? [],
        refused: this.inference?.refused ?? [],
        updates: this.modelUpdates?.recent ?? [],
      },
    };
  }

  /** Makes a simulated colony swarm (undefined on real hardware). */
  /**
   * A rule watching a model output that no loaded model has would never
   * fire: say so at start (after a model update renamed a label, say).
   */
  private checkRuleInputs(): void {
    const labels = this.inference?.labels() ?? {};
    for (const rule of this.config.decisions) {
      const [kind, model, label] = rule.input.split('.');
      if (kind !== 'model' || model === undefined || label === undefined) continue;
      if (labels[model]?.includes(label)) continue;
      this.ctx.counters.increment('decisions.rule_input_unknown');
      const known = Object.entries(labels).flatMap(([m, ls]) => ls.map((l) => `model.${m}.${l}`));
      this.ctx.logger.warn({ rule: rule.id, input: rule.input, known }, `decision rule "${rule.id}" watches ${rule.input}, which no loaded model outputs: it will never fire (known: ${known.join(', ') || 'none'})`);
    }
  }

  injectSwarm(): { preSwarmFrom: number; swarmFrom: number; swarmUntil: number } | undefined {
    return this.device?.simulation?.injectSwarm();
  }

  /** The mesh, when enabled (tests and the demo look inside). */
  get mesh(): Mesh | undefined {
    return this.meshPart;
  }

  /**
   * Appends to this node's feed if the config shares that stream, sealed if
   * it is private. `always`: decisions go into the signed feed even when not
   * shared (sealed to this node alone), so the node's own record of why it
   * acted is signed and append-only like everything it shares.
   */
  private async share(stream: 'readings' | 'models' | 'decisions', body: unknown, { always = false } = {}): Promise<void> {
    if (!this.meshPart) return;
    const type = stream.replace(/s$/, '');
    const sealed = this.config.mesh.private.find((p) => p.stream === stream);
    if (sealed) await this.meshPart.appendPrivate(type, body, sealed.recipients);
    else if (this.config.mesh.share.includes(stream)) await this.meshPart.append(type, body);
    else if (always) await this.meshPart.appendPrivate(type, body, []);
    this.uplink?.notify();
  }

  private get ctx(): NodeContext {
    if (!this.context) throw new Error('the node is not started');
    return this.context;
  }

  /** Keeps hold of async work so stop() can wait for it; errors are counted, never thrown. */
  private track(work: Promise<unknown>): void {
    const tracked = work.catch((err: unknown) => {
      this.counters.increment('node.pipeline_errors');
      this.logger.error({ err: describeError(err) }, 'pipeline step failed');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private async onReading(reading: Reading): Promise<void> {
    this.latest.readings[reading.channel] = reading;
    this.inference?.onReading(reading);
    // A new node runs the thermal model as soon as it has enough readings, not a full period later.
    if (this.inference?.windowSize === this.config.models.thermal.minReadings && !this.latest.models[THERMAL_MODEL]) this.track(this.onThermalTick());
    const record = { ...reading, time: new Date(reading.t).toISOString() };
    // One stream for all channels: fewer files, so fewer 4 KiB pages rewritten per fsync.
    await this.storage?.append('readings', record);
    await this.share('readings', record);
    await this.bus?.publishJson(this.ctx.topics.reading(reading.channel), record);
    this.onFirstReading?.();
    this.onFirstReading = undefined;
    await this.decide(`reading.${reading.channel}`, reading.value, reading.t);
  }

  private async onAudio(frame: AudioFrame): Promise<void> {
    await this.modelsReady;
    const result = await this.inference?.onAudio(frame);
    if (!result) return;
    await this.onReading(result.soundLevel);
    if (result.output) await this.onModelOutput(result.output);
  }

  /** After a restart, refills the thermal model's window from the readings on disk (in the background). */
  private async restoreThermalWindow(): Promise<void> {
    if (!this.storage || !this.inference) return;
    const stream = await this.storage.stream('readings');
    const stats = stream.stats();
    // Enough records to cover the window even with every channel interleaved, at most 50,000.
    const sensors = this.config.device.sensors;
    const perWindow = Math.ceil(this.config.models.thermal.window / Math.min(sensors.temperature.interval, sensors.sound.interval)) * 4;
    const from = Math.max(stats.firstSeq, stats.nextSeq - Math.min(perWindow, 50_000));
    const stored: Reading[] = [];
    for await (const record of stream.read(from)) {
      try {
        const r = JSON.parse(record.payload.toString('utf8')) as Partial<Reading>;
        if ((r.channel === 'temperature' || r.channel === 'humidity') && typeof r.value === 'number' && typeof r.t === 'number') {
          stored.push({ channel: r.channel, value: r.value, unit: r.unit ?? '', t: r.t });
        }
      } catch {
        this.counters.increment('storage.unreadable_records');
      }
    }
    const restored = this.inference.restoreWindow(stored, this.clock.now());
    if (restored > 0) this.logger.info({ readings: restored }, 'thermal window restored from disk');
  }

  private async onThermalTick(): Promise<void> {
    const output = await this.inference?.runThermal(this.clock.now());
    if (output) await this.onModelOutput(output);
  }

  private async onModelOutput(output: ModelOutput): Promise<void> {
    this.latest.models[output.model] = output;
    const record = { ...output, time: new Date(output.t).toISOString() };
    await this.storage?.append(`models.${output.model}`, record);
    await this.share('models', record);
    await this.bus?.publishJson(this.ctx.topics.model(output.model), record);
    const { model, version, sha256, inputHash, features, probabilities, t } = output;
    const evidence: ModelEvidence = { model, version, sha256, inputHash, features, probabilities, t };
    for (const [label, p] of Object.entries(output.probabilities)) await this.decide(`model.${output.model}.${label}`, p, output.t, evidence);
  }

  /** `evidence`: the inference behind a model input, written with the decision so it can be audited. */
  private async decide(input: string, value: number, t: number, evidence?: ModelEvidence): Promise<void> {
    for (const decision of this.rules?.observe(input, value, t) ?? []) {
      this.latest.decisions[decision.rule] = decision;
      const record: DecisionRecord = { ...decision, time: new Date(decision.t).toISOString(), ...(evidence ? { evidence } : {}) };
      const log = decision.active ? this.logger.warn.bind(this.logger) : this.logger.info.bind(this.logger);
      log({ rule: decision.rule, reason: decision.reason }, `${decision.state}: ${decision.message}`);
      await this.storage?.append('decisions', record);
      // The rule state is saved before the decision is announced: whoever saw it
      // can rely on a node killed right after to restart with it.
      if (this.storage && this.rules) {
        const rules = this.rules.snapshot();
        await this.storage.state.update((s) => { s.rules = rules; });
      }
      await this.share('decisions', record, { always: true });
      await this.bus?.publishJson(this.ctx.topics.decision(decision.rule), record, { retain: true, qos: 1 });
    }
  }

  private async publishInfo(): Promise<void> {
    const { identity, topics } = this.ctx;
    await this.bus?.publishJson(topics.info, {
      nodeId: identity.nodeId,
      publicKey: identity.publicKey,
      name: this.config.node.name,
      version: APIARY_VERSION,
      device: this.config.device.kind,
      models: this.inference?.models().map((m) => ({ name: m.manifest.name, version: m.manifest.version, sha256: m.sha256 })) ?? [],
      rules: this.config.decisions.map((r) => ({ id: r.id, input: r.input, severity: r.severity, message: r.message })),
    }, { retain: true, qos: 1 });
  }

  private async publishDiscovery(): Promise<void> {
    if (!this.config.homeAssistant.enabled || !this.bus || !this.device) return;
    const channels = [...this.device.channels];
    if (this.device.hasAudio) channels.push(SOUND_LEVEL_CHANNEL);
    const messages = discoveryMessages({
      discoveryPrefix: this.config.homeAssistant.discoveryPrefix,
      nodeId: this.ctx.identity.nodeId,
      nodeName: this.config.node.name,
      deviceKind: this.device.kind,
      version: APIARY_VERSION,
      topics: this.ctx.topics,
      channels,
      models: this.inference?.labels() ?? {},
      rules: this.config.decisions,
    });
    const bus = this.bus;
    await Promise.all(messages.map((message) => bus.publishJson(message.topic, message.config, { retain: true, qos: 1 })));
  }
}

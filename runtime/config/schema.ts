/**
 * The config schema: the single source of truth for what a config file may
 * say, its defaults and its bounds. Strict objects, so a misspelt field is an
 * error rather than silently ignored.
 */
import { z } from 'zod';
import { nodeIdFromPublicKey } from '../identity/identity.js';
import { duration, size } from './units.js';
import { topicFilterProblem } from '../broker/mqtt-guard.js';
import type { DeepReadonly } from '../deep-freeze.js';
import { deviceSchema } from '../../devices/config.js';
import { hiveModelSections } from '../apps/beehive/config.js';
import { BEEHIVE_NAME, DEFAULT_RULES } from '../apps/beehive/defaults.js';
import { SENSOR_NODE_NAME, SENSOR_NODE_RULES } from '../apps/sensor-node/defaults.js';
import { homeAssistantSchema } from '../extensions/home-assistant/config.js';
import { rulesSchema, type RuleInput } from '../extensions/rules/config.js';
import { uplinkSchema } from '../extensions/uplink/config.js';
import { systemdSchema } from '../extensions/systemd/config.js';
import { updatesSchema } from '../extensions/runtime-updates/config.js';
import { flowsSchema } from '../extensions/flows/config.js';
import { mcpSchema } from '../extensions/mcp-http/config.js';
import { askSchema } from '../extensions/ask/config.js';
import { tasksSchema } from '../extensions/tasks/config.js';
import { voiceSchema } from '../extensions/voice/config.js';
import { paymentsSchema } from '../extensions/payments/config.js';
import { CONFIG_VERSION } from './migrations.js';
import { replicateSchema } from '../mesh/sparse-replication.js';

/** Each application's defaults: what a config that does not say gets. */
const APP_DEFAULTS: Record<'beehive' | 'sensor-node', { name: string; rules: RuleInput[] }> = {
  beehive: { name: BEEHIVE_NAME, rules: DEFAULT_RULES },
  'sensor-node': { name: SENSOR_NODE_NAME, rules: SENSOR_NODE_RULES },
};


const publicKeySchema = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'expected a base64url Ed25519 public key of 43 characters (see `apiary id`)' });

const modelsSchema = z.strictObject({
  /**
   * Folder holding one sub-folder per model (model.onnx + manifest.json), where
   * `apiary models install` and mesh updates put them; default <dataDir>/models.
   * A model it does not hold comes from the shipped set.
   */
  dir: z.string().min(1).optional(),
  /** Install newer versions that a trusted owner publishes to the mesh (see runtime/extensions/model-updates/). */
  meshUpdates: z.boolean().default(true),
  /**
   * Whose signed models this node runs, apart from its own owner: separate
   * from mesh.trust (trusting an owner's data is not trusting its models).
   */
  trust: z.strictObject({
    owners: z.array(z.strictObject({ name: z.string().min(1).max(64), publicKey: publicKeySchema })).max(256).default([]),
    /** Model name -> the only signer accepted for it; without an entry, the first signer that installed it is pinned. */
    signers: z.record(z.string().regex(/^[a-z0-9][a-z0-9-]*$/), publicKeySchema).default({}),
  }).prefault({}),
  /**
   * Which ONNX runtime runs the models. auto: onnxruntime-node if a probe in a
   * child process shows it works on this CPU (run once per platform, cached in
   * the data dir), else onnxruntime-web (WebAssembly). See `apiary doctor`.
   */
  backend: z.enum(['auto', 'onnxruntime-node', 'onnxruntime-web'], {
    error: 'expected "auto" (probe, then native or WASM), "onnxruntime-node" (native) or "onnxruntime-web" (WASM)',
  }).default('auto'),
  ...hiveModelSections,
});

const nodeIdSchema = z.string().regex(/^[a-z2-7]{12}$/, { error: 'expected a 12-character node id (see `apiary id` on that node)' });
const streamNameSchema = z.enum(['readings', 'models', 'decisions'], { error: 'expected "readings", "models" or "decisions"' });

/** Who may write a map of the shared document (runtime/mesh/shared-state-rules.ts). */
const mapWritersSchema = z.union([
  z.enum(['key-node', 'my-owner', 'any-trusted'], { error: 'expected "key-node", "my-owner", "any-trusted" or a list of owner keys' }),
  z.array(publicKeySchema).min(1).max(64),
]);
const sharedMapName = z.string().regex(/^(?!members$)[a-z][a-z0-9-]{0,31}$/, { error: 'a map name: 1-32 lower-case letters, digits or dashes, not "members" (each node always writes only its own record)' });

const meshSchema = z.strictObject({
  /** Share this node's feed and shared state with neighbours. Needs the embedded broker. */
  enabled: z.boolean().default(true),
  /** Neighbours to link to: their broker URL and node id, and optionally the node key to pin (`apiary id` on that node). */
  neighbours: z.array(z.strictObject({
    url: z.url({ protocol: /^mqtts?$/, error: 'expected a URL like mqtt://192.168.1.20:1883' }),
    nodeId: nodeIdSchema,
    /** When given, only this node key is accepted for nodeId, whoever signed another. */
    publicKey: publicKeySchema.optional(),
    /** For an mqtts URL: the neighbour broker's certificate (PEM file), pinned: no other is accepted. */
    tlsCertificate: z.string().min(1).optional(),
  })).max(64).default([]),
  /** A node that links to us, but is not in our list, is linked back (at the address it came from). */
  dialBack: z.boolean().default(true),
  discovery: z.strictObject({
    /** Announce this node and find neighbours on the LAN by mDNS (multicast: off unless the owner turns it on). */
    mdns: z.boolean().default(false),
    /** IPv4 address of the one interface to use for mDNS; default: every interface. */
    interface: z.ipv4({ error: 'expected the IPv4 address of one of this board\'s interfaces, like 192.168.1.20' }).optional(),
    /** UDP port of mDNS; change only to keep test meshes apart. */
    port: z.number().int().min(1).max(65_535).default(5353),
  }).prefault({}),
  owner: z.strictObject({
    /** The owner key that signs this node's certificate; default <dataDir>/owner.json, made on first start. */
    keyFile: z.string().min(1).optional(),
    /** A certificate signed elsewhere (`apiary owner sign`); then no owner key is needed on the board. */
    certificateFile: z.string().min(1).optional(),
  }).prefault({}),
  trust: z.strictObject({
    /** Owners whose nodes this node accepts, besides its own owner. */
    owners: z.array(z.strictObject({ name: z.string().min(1).max(64), publicKey: publicKeySchema })).max(256).default([]),
    /** Node or owner keys refused whatever signed them. */
    revoked: z.array(publicKeySchema).max(1024).default([]),
  }).prefault({}),
  /** Which of this node's streams go into its feed (and so to every trusted node). */
  share: z.array(streamNameSchema).default(['readings', 'models', 'decisions']),
  /** Streams shared sealed: only the listed nodes (and this one) can read them; relays carry ciphertext. */
  private: z.array(z.strictObject({ stream: streamNameSchema, recipients: z.array(nodeIdSchema).min(1).max(63) })).max(3).default([]),
  /** Node id -> streams it may subscribe to on this node's broker. */
  grants: z.record(nodeIdSchema, z.array(streamNameSchema)).default({}),
  /** Shared-state updates are forwarded at most this many hops (feed entries follow their origin's broadcast tree to every node). */
  maxHops: z.number().int().min(1).max(16).default(4),
  /** Own entries are made durable, then sent, in groups this often. */
  commitInterval: duration(10, 10_000).prefault('200ms'),
  /** Every link re-states what it holds this often, so nothing missed stays missed. */
  antiEntropyInterval: duration(1_000).prefault('30s'),
  /** Broadcast tree: an entry announced on a lazy link but not come by the tree this long after is grafted from the announcer (default: 5 commit intervals, at least 1 s). */
  graftTimeout: duration(100, 600_000).optional(),
  retention: z.strictObject({
    maxBytesPerOrigin: size(64 * 1024, 4 * 1024 ** 3).prefault('16MiB'),
    maxAge: duration(60_000).prefault('30d'),
  }).prefault({}),
  /**
   * Accept a neighbour's plain (non-TLS) link whose token was made for another
   * address than this broker's own: through a TCP proxy, port forwarding or
   * NAT. Off: such a token is refused, so a device that relays tokens gets
   * nowhere. Prefer TLS (always bound to its session) over turning this on.
   */
  acceptRelayedPlainLinks: z.boolean().default(false),
  /** A link counts as up only once the neighbour's broker proves its node key; a link without that proof by then is closed and counted. */
  linkProofTimeout: duration(500, 120_000).prefault('10s'),
  /**
   * What trusted peers may make this node store or do (every refusal counted in `apiary status`).
   * Own feed and own edits are never refused or evicted by these.
   */
  budgets: z.strictObject({
    /** Feeds (node ids) kept per owner key: an owner minting node ids cannot multiply its share of the disk. */
    originsPerOwner: z.number().int().min(1).max(65_536).default(64),
    /** All feeds of other origins together; past it the oldest entries of the owner (then origin) using the most go first. */
    maxFeedBytes: size(1024 ** 2, 1024 ** 4).prefault('1GiB'),
    /** Keys (over all maps) of the shared document; updates that would add more are refused. */
    sharedKeys: z.number().int().min(16).max(1_000_000).default(4096),
    /** Encoded size of the shared document; updates that would grow it past this are refused. */
    sharedBytes: size(16 * 1024, 256 * 1024 ** 2).prefault('2MiB'),
    /** Catch-up requests (wants) answered per peer and second, with this burst: each costs up to one batch of disk reads. */
    wantsPerSecond: z.number().min(0.1).max(10_000).default(20),
    wantBurst: z.number().int().min(1).max(100_000).default(40),
    /** Blob chunk requests (blob-want, up to 192 KiB read and sent each) answered per peer and second, with this burst. */
    blobChunksPerSecond: z.number().min(0.1).max(10_000).default(16),
    blobChunkBurst: z.number().int().min(1).max(100_000).default(32),
  }).prefault({}),
  /** How far apart two boards' clocks may be for a link token to be accepted. */
  tokenMaxSkew: duration(10_000, 3_600_000).prefault('5m'),
  /** Feed entries and shared-state edits stamped further ahead of this board's clock are refused (counted). */
  clockSkew: duration(1_000, 3_600_000).prefault('60s'),
  /** Who may write each map of the shared document; every node should use the same rules to read the same document. */
  sharedState: z.strictObject({
    /** Per map: "key-node" (only the node the key names), "my-owner" (nodes of this node's owner), "any-trusted", or owner keys. */
    maps: z.record(sharedMapName, mapWritersSchema).default({ capabilities: 'key-node' }),
    /** Maps not listed (thresholds, catalogue, ...). */
    otherMaps: mapWritersSchema.default('my-owner'),
  }).prefault({}),
  /**
   * What this node keeps of other nodes' feeds: a list of rules, each with any
   * of origins (node ids), owners (owner keys), types (entry types, `alert*` a
   * prefix) and maxAge; an entry is kept if it is this node's own, a
   * revocation, sealed for this node, or any rule matches. Entries not kept
   * are still checked and passed on (mesh.relay).
   * Absent: every entry is kept (runtime/mesh/sparse-replication.ts).
   */
  replicate: replicateSchema.optional(),
  relay: z.strictObject({
    /** Entries passed on but not kept are held in memory up to this, oldest dropped first (counted as mesh.relay.dropped). */
    maxBytes: size(64 * 1024, 256 * 1024 ** 2).prefault('4MiB'),
  }).prefault({}),
  /** Optional bridge of feed entries to an external broker (EMQX, Mosquitto, HiveMQ); nothing is lost while it is down. */
  uplink: uplinkSchema.optional(),
});

export const configSchema = z.strictObject({
  /** The config format version: checked, and older files migrated, before the schema runs (migrations.ts). */
  version: z.number().int().min(1).default(CONFIG_VERSION),
  /** What the node is for: a bundle of extensions with its own defaults (runtime/apps). */
  app: z.enum(['beehive', 'sensor-node'], { error: 'expected "beehive" (the hive models, rules and swarm simulation) or "sensor-node" (readings and rules, no models)' }).default('beehive'),
  node: z.strictObject({
    /** A human name for this node, shown in Home Assistant; default: the application's. */
    name: z.string().min(1).max(64).optional(),
    dataDir: z.string().min(1).default('./.apiary'),
  }).prefault({}),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }).prefault({}),
  broker: z.strictObject({
    /** Run the embedded aedes broker. Off = publish to `bus.url` instead. */
    enabled: z.boolean().default(true),
    host: z.string().min(1).default('127.0.0.1'),
    /** 0 picks any free port (printed at start). */
    port: z.number().int().min(0).max(65_535).default(1883),
    /** Clients without credentials: from this machine only (default), never, or from anywhere (a trusted LAN). */
    anonymous: z.enum(['loopback', 'never', 'any'], { error: 'expected "loopback", "never" or "any"' }).default('loopback'),
    /** Messages held for one subscriber that has stopped reading, or for a persistent session while its client is away; beyond this they are dropped and counted (mosquitto's max_queued_messages). 0 = no limit. */
    maxQueuedMessages: z.number().int().min(0).max(1_000_000).default(1000),
    /** Bytes held for one such subscriber (mosquitto's max_queued_bytes). 0 = no limit. */
    maxQueuedBytes: size(0, 1024 ** 3).prefault('4MiB'),
    /** A subscriber that takes nothing for this long while messages wait is disconnected, and what it missed counted. 0 = never. */
    stallTimeout: duration(0, 3_600_000).prefault('30s'),
    /** A socket that has not completed its CONNECT this long after connecting is closed (TLS handshake included). */
    connectTimeout: duration(100, 120_000).prefault('5s'),
    /** Largest CONNECT packet (credentials and will included); refused from its header, before it is buffered. */
    maxConnectBytes: size(1024, 256 * 1024).prefault('16KiB'),
    /** Open connections, over all listeners; more are closed at once and counted. 0 = no limit. */
    maxConnections: z.number().int().min(0).max(100_000).default(256),
    /** Open connections from one address (loopback included); more are closed at once and counted. 0 = no limit. */
    maxConnectionsPerAddress: z.number().int().min(0).max(100_000).default(32),
    /** QoS 2 messages one client may have awaiting its PUBREL; one more closes its connection (counted). 0 = no limit. */
    maxInflightQos2: z.number().int().min(0).max(65_535).default(100),
    /** Topic filters one client connection may hold; one more is refused (SUBACK 0x80) and counted. 0 = no limit. */
    maxSubscriptionsPerClient: z.number().int().min(0).max(1_000_000).default(1000),
    /** Bytes queued for all persistent sessions whose clients are away (each session also within maxQueuedMessages and maxQueuedBytes); more are dropped and counted. 0 = no limit. */
    maxOfflineQueuedBytes: size(0, 4 * 1024 ** 3).prefault('32MiB'),
    /** Retained messages one client may keep on this broker (a peer: all its connections), and all clients together; the node's own are not counted. */
    maxRetainedPerClient: z.number().int().min(0).max(1_000_000).default(1000),
    maxRetainedBytesPerClient: size(0, 1024 ** 3).prefault('4MiB'),
    maxRetained: z.number().int().min(0).max(10_000_000).default(10_000),
    maxRetainedBytes: size(0, 4 * 1024 ** 3).prefault('16MiB'),
    /**
     * Topic access for clients without credentials (first matching rule decides). Never opens mesh
     * topics or other nodes' namespaces; can open the node's own namespace beyond cmd/, or close any topic.
     */
    acl: z.array(z.strictObject({
      action: z.enum(['allow', 'deny']),
      access: z.enum(['publish', 'subscribe', 'all']).default('all'),
      /** An MQTT topic filter; {prefix} and {nodeId} stand for bus.topicPrefix and this node's id. */
      topic: z.string().min(1).max(1024).refine((t) => topicFilterProblem(t) === undefined, { error: 'expected an MQTT topic filter (+ for one level, # last)' }),
      /** Client ids this rule is for; omitted = every client without credentials. */
      clients: z.array(z.string().min(1).max(256)).min(1).max(1000).optional(),
    })).max(256).default([]),
    /** Deepest topic (levels) a client may publish or subscribe to; deeper closes the connection, counted. MQTT sets no limit; mosquitto allows 200. */
    maxTopicLevels: z.number().int().min(1).max(1000).default(200),
    /** A second listener with TLS, for links from other machines (neighbours pin its certificate). */
    tls: z.strictObject({
      port: z.number().int().min(0).max(65_535).default(8883),
      /** Listen address; default: broker.host. */
      host: z.string().min(1).optional(),
      certificateFile: z.string().min(1),
      keyFile: z.string().min(1),
      /** Neighbour nodes may link only over this TLS listener; the plain one stays for local tools. */
      peersOnly: z.boolean().default(true),
    }).optional(),
  }).prefault({}),
  bus: z.strictObject({
    /** An external broker to publish to, like mqtt://192.168.1.10:1883; omitted = the embedded broker. */
    url: z.url({ protocol: /^mqtts?$/, error: 'expected a URL like mqtt://host:1883 or mqtts://host:8883' }).optional(),
    topicPrefix: z.string().regex(/^[a-zA-Z0-9_-]+$/, { error: 'use letters, digits, _ or -: it becomes the first topic level' }).default('apiary'),
  }).prefault({}),
  /** Who may run write commands: `owner-signed` refuses writes without the owner's signature (runtime/commands/command-auth.ts). */
  commands: z.strictObject({
    writes: z.enum(['any', 'owner-signed'], { error: 'expected "any" (plain MQTT writes from clients the broker admits, as before) or "owner-signed" (only writes signed with the owner key, as apiary mcp sends)' }).default('any'),
  }).prefault({}),
  homeAssistant: homeAssistantSchema.prefault({}),
  /** The node's own MCP endpoint (Streamable HTTP: loopback and read-only, or owner tokens over TLS); `apiary mcp` needs none. */
  mcp: mcpSchema.prefault({}),
  device: deviceSchema.prefault({}),
  models: modelsSchema.prefault({}),
  storage: z.strictObject({
    segmentBytes: size(4 * 1024, 64 * 1024 ** 2).prefault('1MiB'),
    /** Bound on each stream's disk use; the oldest segments go first, and are counted. */
    streamMaxBytes: size(16 * 1024, 4 * 1024 ** 3).prefault('16MiB'),
    /** How often appended records are forced to the SD card (fsync); 5 s matches ext4's default journal commit. */
    fsyncInterval: duration(0, 3_600_000).prefault('5s'),
  }).prefault({}),
  /** The rules the node decides by; default: the application's (runtime/apps/<app>/defaults.ts). */
  decisions: rulesSchema.optional(),
  mesh: meshSchema.prefault({}),
  /** Readiness and watchdog notifications when run as a systemd service. */
  systemd: systemdSchema.prefault({}),
  /** Runtime updates with rollback, when run from the .deb (its launcher). */
  updates: updatesSchema.prefault({}),
  /** An optional Node-RED beside the node, in its own supervised process. */
  flows: flowsSchema.prefault({}),
  /** Questions in text (`apiary ask`), kept as text in the feed; which decisions are announced as they are raised. */
  ask: askSchema.prefault({}),
  /** Tasks between nodes (contract net) within the owner's signed mandate: off by default, needs the mesh. */
  tasks: tasksSchema.prefault({}),
  /** Speech in and out (pocketsphinx, espeak-ng), push-to-talk, and a Wyoming endpoint for Home Assistant. */
  voice: voiceSchema.prefault({}),
  /** Offline micro-payments between nodes: cumulative signed vouchers in the feeds, a credit limit per peer. */
  payments: paymentsSchema.prefault({}),
}).superRefine((config, ctx) => {
  const seen = new Set<string>();
  (config.decisions ?? []).forEach((rule, index) => {
    if (seen.has(rule.id)) ctx.addIssue({ code: 'custom', path: ['decisions', index, 'id'], message: `duplicate rule id "${rule.id}": ids must be unique` });
    seen.add(rule.id);
  });
  if (!config.broker.enabled && config.bus.url === undefined) {
    ctx.addIssue({ code: 'custom', path: ['bus', 'url'], message: 'the embedded broker is off, so bus.url must name a broker to publish to' });
  }
  const neighbourIds = new Set<string>();
  config.mesh.neighbours.forEach((neighbour, index) => {
    if (neighbourIds.has(neighbour.nodeId)) ctx.addIssue({ code: 'custom', path: ['mesh', 'neighbours', index, 'nodeId'], message: `node ${neighbour.nodeId} is listed twice: keep one entry per neighbour` });
    neighbourIds.add(neighbour.nodeId);
    if (neighbour.tlsCertificate !== undefined && !neighbour.url.startsWith('mqtts:')) {
      ctx.addIssue({ code: 'custom', path: ['mesh', 'neighbours', index, 'tlsCertificate'], message: 'a pinned certificate needs an mqtts:// URL (the TLS listener of that node, broker.tls.port, 8883 by default)' });
    }
    if (neighbour.publicKey !== undefined && nodeIdFromPublicKey(Buffer.from(neighbour.publicKey, 'base64url')) !== neighbour.nodeId) {
      ctx.addIssue({ code: 'custom', path: ['mesh', 'neighbours', index, 'publicKey'], message: `this key belongs to another node than ${neighbour.nodeId}: copy both from \`apiary id\` on that node` });
    }
  });
  if (config.mesh.enabled && !config.broker.enabled && config.mesh.neighbours.length > 0) {
    ctx.addIssue({ code: 'custom', path: ['mesh', 'enabled'], message: 'the mesh needs the embedded broker (neighbours publish to it): set broker.enabled: true, or mesh.enabled: false' });
  }
}).transform((config) => {
  // The application's defaults, for what the file does not say.
  const defaults = APP_DEFAULTS[config.app];
  return { ...config, node: { ...config.node, name: config.node.name ?? defaults.name }, decisions: config.decisions ?? rulesSchema.parse(defaults.rules) };
});

export type ApiaryConfig = DeepReadonly<z.output<typeof configSchema>>;
export type ConfigInput = z.input<typeof configSchema>;
export type RuleConfig = ApiaryConfig['decisions'][number];
export type { DeviceConfig, SensorName } from '../../devices/config.js';

/**
 * The commented config that `apiary init` writes. A test checks that it
 * parses to exactly the built-in defaults, so the two cannot drift apart.
 */
export const DEFAULT_CONFIG_YAML = `# Apiary node configuration. Every field is optional: a missing field takes the
# default shown here. Durations: 500ms, 30s, 15m, 24h. Sizes: 64KiB, 16MiB.
# Relative paths are relative to this file.

version: 1                    # the config format of this file, not Apiary's version (absent = 1).
                              # A later Apiary migrates an older format as it reads it, leaving the
                              # file as it is (\`apiary config migrate\` updates it); an earlier one
                              # refuses a newer format.

app: beehive                  # what the node is for: beehive (hive models, swarm alerts, simulated
                              # colony) | sensor-node (readings, dew point and rules, no models).
                              # The app gives the defaults of node.name and decisions below.

node:
  name: Apiary beehive        # shown in Home Assistant (default: the app's name)
  dataDir: ./.apiary          # identity key, state and stream logs live here

log:
  level: info                 # fatal | error | warn | info | debug | trace | silent

broker:                       # the embedded MQTT broker (aedes)
  enabled: true
  host: 127.0.0.1             # 0.0.0.0 to let neighbours (and other machines) connect
  port: 1883                  # 0 = any free port (printed at start)
  anonymous: loopback         # clients without credentials: loopback | never | any
  maxQueuedMessages: 1000     # held for a subscriber that stopped reading, or is away with a persistent session; more are dropped and counted (0 = no limit)
  maxQueuedBytes: 4MiB
  stallTimeout: 30s           # a subscriber that reads nothing this long is cut, and what it missed counted (0 = never)
  maxTopicLevels: 200         # deepest topic a client may use (mosquitto's limit too); deeper is refused and counted (1-1000)
  connectTimeout: 5s          # a socket that has not completed its CONNECT by then is closed
  maxConnectBytes: 16KiB      # larger CONNECT packets are refused from their header (a link token is ~1 KiB)
  maxConnections: 256         # open sockets in all; more are closed at accept and counted (0 = no limit)
  maxConnectionsPerAddress: 32  # open sockets from one address, loopback included (0 = no limit)
  maxInflightQos2: 100        # QoS 2 messages a client may leave awaiting PUBREL; one more closes it (0 = no limit)
  maxSubscriptionsPerClient: 1000  # topic filters per connection; more are refused (SUBACK 0x80) and counted
  maxOfflineQueuedBytes: 32MiB  # held for all persistent sessions whose clients are away
  maxRetainedPerClient: 1000  # retained messages one client (a peer: all its links) may keep here
  maxRetainedBytesPerClient: 4MiB
  maxRetained: 10000          # retained messages of all clients together (the node's own not counted)
  maxRetainedBytes: 16MiB
  acl: []                     # topic rules for clients without credentials, first match decides, e.g.
  #  - { action: deny, topic: 'secret/#' }                       # access: publish | subscribe | all (default)
  #  - { action: allow, access: publish, topic: '{prefix}/{nodeId}/notes/#', clients: [my-tool] }
  # Never opened by any rule: mesh topics and other nodes' namespaces. Default: the node's own
  # namespace takes only commands (cmd/...) from clients, and its Home Assistant configs none.
  # tls: { port: 8883, certificateFile: broker-cert.pem, keyFile: broker-key.pem }   # a TLS listener for neighbours
  #   (with it, peersOnly: true accepts neighbours on the TLS listener only; the plain one stays for local tools)

bus:
  # url: mqtt://192.168.1.10:1883   # publish to an external broker instead
  topicPrefix: apiary         # topics are <topicPrefix>/<nodeId>/...

commands:
  writes: any                 # any: write commands from any client the broker admits | owner-signed: only signed with the owner key (apiary mcp)

mcp:                          # AI assistants use \`apiary mcp\` (stdio, over MQTT: no port here); this is the node's own endpoint
  http:
    enabled: false            # Streamable HTTP at http://<host>:<port>/mcp, read-only (writes: apiary mcp --owner-key)
    host: 127.0.0.1           # loopback, unless auth: owner-token and tls are set (then e.g. 0.0.0.0)
    port: 8765
    auth: none                # none | owner-token: every request needs a token from \`apiary owner mcp-token\` (write scope: writes too)
    revokedTokens: []         # ids of tokens refused before they expire
    # tls: { certificateFile: mcp-cert.pem, keyFile: mcp-key.pem }   # HTTPS, needed off loopback (README, MCP)

homeAssistant:
  enabled: true               # publish MQTT discovery configs (retained)
  discoveryPrefix: homeassistant

device:
  kind: simulated-beehive     # simulated-beehive | firmata
  # port: /dev/ttyACM0        # firmata only; omitted = auto-detect
  sht31Address: 0x44          # SHT31-D temperature/humidity sensor on I2C
  sensors:
    temperature: { enabled: true, interval: 1m }
    humidity: { enabled: true, interval: 1m }
    weight: { enabled: true, interval: 1m, pin: A0, kgPerCount: 0.1, offsetKg: 0 }
    sound: { enabled: true, interval: 10s, frameSeconds: 1 }
  simulation:
    speed: 1                  # time factor: 60 = one simulated minute per second
    seed: 1
    startWeightKg: 38
    preSwarm: 10m             # after \`apiary sim swarm\`: this long pre-swarm,
    swarm: 5m                 # then this long swarming

models:
  # dir: ./models             # default: <dataDir>/models; a model not there comes from the shipped set
  meshUpdates: true           # install newer versions a trusted owner publishes to the mesh (rolled back if they fail)
  trust:                      # whose models run here: your own owner, plus these (mesh.trust is for data only)
    owners: []                # - { name: Ana, publicKey: <43-char owner key> }
    signers: {}               # hive-sound: <owner key>  (else the first signer that installed a model is pinned)
  backend: auto               # auto | onnxruntime-node | onnxruntime-web (WASM); auto probes the native one once per platform
  thermal:                    # hive-thermal: "is this a strong colony?", over 24 h of readings
    enabled: true
    every: 15m
    window: 24h
    minReadings: 4
  sound:                      # normal / pre-swarm / swarm, on every sound sample
    enabled: true

storage:
  segmentBytes: 1MiB
  streamMaxBytes: 16MiB       # per stream; oldest segments are dropped (and counted)
  fsyncInterval: 5s           # a power cut loses at most this much; kill -9 loses nothing

# Decisions: a rule raises when its input stays past the threshold for "for",
# and clears when the input passes "clearAt" (hysteresis).
# input: reading.<channel> or model.<model>.<label>
decisions:                    # default: the app's rules (these are the beehive's)
  - id: swarming
    input: model.hive-sound.swarm
    above: 0.8
    clearAt: 0.5
    for: 30s
    severity: critical
    message: The colony sounds like it is swarming
  - id: pre-swarm
    input: model.hive-sound.pre-swarm
    above: 0.8
    clearAt: 0.5
    for: 1m
    severity: warning
    message: The colony sounds like it is preparing to swarm
  - id: colony-weak
    input: model.hive-thermal.strong_colony
    below: 0.3
    clearAt: 0.6
    for: 6h
    severity: warning
    message: "The hive temperature looks like a weak colony: have a look inside"
  - id: hive-overheating
    input: reading.temperature
    above: 38
    clearAt: 37
    for: 10m
    severity: critical
    message: The hive is overheating

mesh:                         # share with neighbouring nodes (see README, "The mesh")
  enabled: true
  neighbours: []              # - { url: mqtt://192.168.1.20:1883, nodeId: abcdefghijkl, publicKey: <43-char node key, optional pin> }
  dialBack: true              # link back to a trusted node that links to us unlisted
  discovery:
    mdns: false               # announce and find nodes on the LAN by mDNS (multicast)
    port: 5353                # interface: 192.168.1.20 keeps mDNS to one interface
  owner: {}                   # keyFile: owner.json signs this node's certificate (default <dataDir>/owner.json)
  trust:
    owners: []                # - { name: Ana, publicKey: <43-char owner key> }
    revoked: []               # node or owner keys refused whatever signed them
  share: [readings, models, decisions]
  private: []                 # - { stream: readings, recipients: [abcdefghijkl] }
  grants: {}                  # abcdefghijkl: [readings]   (topics that node may subscribe to here)
  maxHops: 4
  commitInterval: 200ms
  antiEntropyInterval: 30s
  # graftTimeout: 1s          # broadcast tree: announced but not come by the tree this long after: grafted (default 5 commit intervals, at least 1s)
  retention:
    maxBytesPerOrigin: 16MiB
    maxAge: 30d
  # replicate:                # keep only part of other nodes' feeds (absent: everything; own entries always)
  #   - { owners: [<owner key>] }                      # every entry of that owner's nodes
  #   - { types: [decision, model-update, runtime-release], maxAge: 30d }   # of everyone else: alerts and releases, a month
  relay:
    maxBytes: 4MiB            # entries passed on but not kept, held in memory (oldest dropped first, counted)
  tokenMaxSkew: 5m            # clock difference allowed for link tokens, and how far ahead a certificate may be dated
  linkProofTimeout: 10s       # a neighbour's broker must prove its node key on a new link within this
  acceptRelayedPlainLinks: false   # true: accept plain links through NAT, port forwarding or a TCP proxy (prefer TLS)
  clockSkew: 60s              # entries and shared-state edits stamped further ahead of this clock are refused
  sharedState:                # who may write each map of the shared document (members: always each node its own)
    maps:                     # key-node | my-owner | any-trusted | [<owner key>, ...]; use the same rules on every node
      capabilities: key-node
    otherMaps: my-owner       # thresholds, catalogue, ...: nodes of this node's owner
  budgets:                    # what trusted peers may make this node hold (refusals counted in apiary status)
    originsPerOwner: 64       # feeds kept per owner key
    maxFeedBytes: 1GiB        # all other origins' feeds together (own feed never evicted)
    sharedKeys: 4096          # keys of the shared document
    sharedBytes: 2MiB         # encoded size of the shared document
    wantsPerSecond: 20        # catch-up requests answered per peer and second
    wantBurst: 40
    blobChunksPerSecond: 16   # chunks of served files (a runtime release) sent per peer and second
    blobChunkBurst: 32

systemd:                      # when run as a systemd service (the .deb's apiary.service)
  notify: auto                # auto (when systemd asks: NOTIFY_SOCKET) | on | off: READY, WATCHDOG, STOPPING

flows:                        # Node-RED in its own process, supervised by the node (npm install node-red@4.1)
  enabled: false
  host: 127.0.0.1             # the editor; any other address needs \`apiary flows passwd\` first
  port: 1880
  heapMb: 128                 # Node-RED's heap cap (it shares a 512 MB board with the node)

ask:                          # questions in text: apiary ask "how is the hive?", MQTT cmd/ask
  enabled: true
  announce: [warning, critical]  # severities of the decisions announced as they are raised, with the reason
  record: private             # questions and answers as text in this node's feed: private (sealed to itself) | shared | off

voice:                        # talk to the hive: sudo apt install pocketsphinx pocketsphinx-en-us espeak-ng alsa-utils
  enabled: false
  input: { device: default }  # the voice microphone (not the in-hive one: hive hum drowns speech); arecord -L lists them
  output: { device: default } # the speaker; aplay -L lists them
  # trigger: { button: talk }   # push-to-talk: the device's button named talk (device.linux.button: { line: 17, name: talk })
  speakAnnouncements: true    # speak the decisions ask.announce selects, as they are raised
  tts: { engine: espeak-ng, voice: en-us, speed: 160 }
  wyoming:                    # Home Assistant's voice protocol: add the node in HA's Wyoming integration
    enabled: false
    host: 127.0.0.1           # 0.0.0.0 for a Home Assistant on another machine
    port: 10500
    mdns: false               # announce _wyoming._tcp so Home Assistant discovers it

payments:                     # offline micro-payments: cumulative signed vouchers (IOUs) sealed in the feeds
  enabled: false
  creditLimit: 100            # what any peer may owe this node per unit before it refuses more work from it
  perPeer: {}                 # node id -> its own credit limit, like { abcdefghijkl: 20 }
  units: [credit]
tasks:                        # work between nodes (contract net) within the owner's mandate; needs the mesh
  enabled: false
  # mandate: mandate.signed.json   # from \`apiary owner mandate sign\`; without one nothing is sold and every request waits for the owner
  offers: []                  # - { kind: hive-sound, price: 0, unit: credit, eta: 2s }   (kinds: hive-sound | reading-at)
  bidWindow: 2s               # how long a call for proposals collects bids
  ackTimeout: 5s              # a winner that does not acknowledge by then is passed over (next bidder)
  grace: 5s                   # added to the winner's ETA before its result counts as missed
  maxConcurrent: 2            # tasks worked on at once; more calls are refused as busy
  spotCheck: 0.2              # share of inference results re-run here when this node has the same model
  minReputation: 0.3          # providers below this local score get no more awards
`;

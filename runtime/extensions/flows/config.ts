/** The `flows` section: an optional Node-RED, run and supervised by the node as a child process (runtime/extensions/flows/). */
import { z } from 'zod';
import { duration } from '../../config/units.js';

export const flowsSchema = z.strictObject({
  /** Run Node-RED beside the node. Off by default: Node-RED is not a runtime dependency (`npm install node-red@4.1`). */
  enabled: z.boolean().default(false),
  /** Where the editor listens. Loopback by default; any other address needs `apiary flows passwd` first. */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(1).max(65_535).default(1880),
  /** Node-RED's user directory (flows, credentials, context); default <dataDir>/node-red. */
  userDir: z.string().min(1).optional(),
  /**
   * V8 old-space cap of the Node-RED process, in MB (--max-old-space-size).
   * 128 by default: Node-RED's Pi installer gives 256 below 894 MB of RAM, but
   * there Node-RED has the board to itself; here it shares a 512 MB board with
   * the node (about 100 MB), and an empty Node-RED uses about 30 MB of heap.
   * A flow that outgrows it crashes Node-RED, never the node.
   */
  heapMb: z.number().int().min(64).max(8_192).default(128),
  /** The installed node-red package folder (holding red.js); default: the `node-red` package Apiary resolves. */
  nodeRed: z.string().min(1).optional(),
  /** Write a small starter flow (decisions to a notification topic, a daily weight summary) when the user dir has none. */
  defaultFlow: z.boolean().default(true),
  restart: z.strictObject({
    /** Wait before the first restart after a crash; doubled after each further crash, up to `maxDelay`. */
    delay: duration(50, 600_000).prefault('1s'),
    maxDelay: duration(50, 3_600_000).prefault('60s'),
    /** This many crashes within `window` is a restart loop: Node-RED is left `crashed` until `apiary flows start`. */
    loopCrashes: z.number().int().min(1).max(1_000).default(5),
    window: duration(1_000, 86_400_000).prefault('10m'),
  }).prefault({}),
  /** A Node-RED that has not opened its editor by then is killed and counted as a crash. */
  startTimeout: duration(1_000, 3_600_000).prefault('120s'),
  /** After SIGTERM, how long Node-RED may take to stop its flows before SIGKILL. */
  stopTimeout: duration(100, 600_000).prefault('10s'),
});

export type FlowsConfig = z.infer<typeof flowsSchema>;

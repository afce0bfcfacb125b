/** The `updates` section: runtime updates with rollback (runtime/extensions/runtime-updates/). */
import { z } from 'zod';
import { duration } from '../../config/units.js';

const publicKey = z.string().regex(/^[A-Za-z0-9_-]{43}$/, { error: 'expected a base64url Ed25519 public key of 43 characters (see `apiary owner show`)' });

export const updatesSchema = z.strictObject({
  /** Runtime updates run only under the launcher (/usr/bin/apiary from the .deb); off: installed releases are still chosen by it, but none is confirmed or rolled back. */
  enabled: z.boolean().default(true),
  /** How long a new release has to show it is healthy before it is kept; past it, the release before comes back. */
  healthWindow: duration(5_000, 3_600_000).prefault('120s'),
  health: z.strictObject({
    /** Readings the device must deliver within the window. 0 for a node with no sensors. */
    minReadings: z.number().int().min(0).max(100_000).default(3),
    /** auto: a neighbour must link when the config lists neighbours; always; never. */
    meshLink: z.enum(['auto', 'always', 'never'], { error: 'expected "auto", "always" or "never"' }).default('auto'),
    /** The longest the event loop may stall inside the window (the watchdog kills a node stalled for WatchdogSec). */
    maxLoopStall: duration(100, 600_000).prefault('10s'),
  }).prefault({}),
  /** Fetch and install the newer releases trusted owners announce in the mesh (`apiary update publish`), then restart into their trial. */
  fromMesh: z.boolean().default(true),
  trust: z.strictObject({
    /** Owners, besides this node's own, whose signed runtime releases it installs: they can run code on this board. */
    owners: z.array(z.strictObject({ name: z.string().min(1).max(64), publicKey })).max(64).default([]),
  }).prefault({}),
});

export type UpdatesConfig = z.infer<typeof updatesSchema>;

/** The `mesh.uplink` section: an optional bridge of feed entries to an external broker. */
import { z } from 'zod';

export const uplinkSchema = z.strictObject({
  url: z.url({ protocol: /^mqtts?$/, error: 'expected a URL like mqtt://broker.example.org:1883' }),
  username: z.string().min(1).optional(),
  password: z.string().min(1).optional(),
  /** Entry types to bridge. */
  types: z.array(z.enum(['reading', 'model', 'decision'])).min(1).default(['reading', 'model', 'decision']),
  /** This node's feed only, or every feed it holds (a gateway for the mesh). */
  origins: z.enum(['own', 'all']).default('own'),
});

/**
 * A generic sensor node: readings, a derived dew point and rules over them,
 * stored, shared and published; no model is loaded (onnxruntime never is).
 * It proves the runtime names no bee: `app: sensor-node` in the config.
 */
import type { Application } from '../../core/extension.js';

export const sensorNodeApp: Application = {
  name: 'sensor-node',
  description: 'readings, a dew point and rules over them; no models',
  extensions: [
    { name: 'dew-point', enabled: () => true, load: async () => (await import('./dew-point.js')).createDewPoint },
  ],
};

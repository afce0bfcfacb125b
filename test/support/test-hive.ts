/**
 * The kernel's model host with the beehive's models on it, as one object:
 * what the node wires when it runs the beehive application (the host loads
 * and verifies, HiveModels makes the features), for tests of either half.
 */
import type { AudioFrame, Reading } from '../../devices/device.js';
import type { InferenceBackend } from '../../models/inference/backend.js';
import type { VerifiedModel } from '../../models/registry/model-runner.js';
import type { HiveModelsConfig } from '../../runtime/apps/beehive/config.js';
import { HiveModels } from '../../runtime/apps/beehive/hive-models.js';
import { ModelHost, type ModelHostOptions, type ModelOutput } from '../../runtime/core/model-host.js';

export class TestHive extends ModelHost {
  readonly hive: HiveModels;

  constructor(config: HiveModelsConfig & { readonly dir?: string | undefined }, backend: InferenceBackend, options: ModelHostOptions & { onInvalidOutput?: (model: VerifiedModel, err: Error) => void } = {}) {
    super(backend, { dir: config.dir, ...options });
    this.hive = new HiveModels(config, this);
    this.hive.use();
    if (options.onInvalidOutput) this.watchInvalidOutputs(options.onInvalidOutput);
  }

  onAudio(frame: AudioFrame): Promise<{ soundLevel: Reading; output: ModelOutput | undefined }> {
    return this.hive.onAudio(frame);
  }

  onReading(reading: Reading): void {
    this.hive.onReading(reading);
  }

  restoreWindow(stored: readonly Reading[], now: number): number {
    return this.hive.restoreWindow(stored, now);
  }

  get windowSize(): number {
    return this.hive.windowSize;
  }

  runThermal(t: number): Promise<ModelOutput | undefined> {
    return this.hive.runThermal(t);
  }
}

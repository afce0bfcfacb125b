/**
 * The inference seam. A backend loads a verified model file and runs it on
 * named float32 tensors. Implementations live one per file beside this.
 */
export interface TensorInput {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export type NamedTensors = Record<string, TensorInput>;

export interface LoadedModel {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  run(inputs: NamedTensors): Promise<Record<string, Float32Array>>;
  close(): Promise<void>;
}

export interface InferenceBackend {
  readonly name: string;
  /** Loads model bytes that the registry has already verified. */
  load(modelBytes: Uint8Array): Promise<LoadedModel>;
}

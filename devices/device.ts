/**
 * The device seam: anything that produces readings (a simulated hive, a
 * Firmata board, later a serial-line sensor). The node only ever sees this
 * interface; implementations live one per file under devices/drivers.
 */
import type { EventEmitter } from 'node:events';

export interface ChannelSpec {
  /** Stable machine name: used in topics, stream names and rule inputs (`reading.<name>`). */
  readonly name: string;
  readonly unit: string;
  /** Human label, e.g. for Home Assistant. */
  readonly label: string;
  /** Home Assistant sensor device_class, when one fits. */
  readonly deviceClass?: string;
  /** Decimals worth showing. */
  readonly precision: number;
}

export interface Reading {
  readonly channel: string;
  readonly value: number;
  readonly unit: string;
  /** Node time, ms since the epoch. */
  readonly t: number;
}

export interface AudioFrame {
  readonly t: number;
  readonly sampleRate: number;
  readonly samples: Float32Array;
}

/** Controls only a simulated device has (for demos and tests); what they mean is the application's business. */
export interface SimulationControl {
  /** Events the simulation can be made to play (`swarm` for the simulated beehive). */
  readonly events: readonly string[];
  /** Plays one of `events`; returns its schedule in node times (ms). */
  inject(event: string): Record<string, number>;
  /** What the simulation is doing now, for status (`{ sound: 'normal' }`). */
  state(): Record<string, string>;
}

/** A push button's press or release (devices/linux/gpio-button.ts), for later voice use (push-to-talk). */
export interface ButtonEvent {
  readonly name: string;
  readonly action: 'press' | 'release';
  /** Node time, ms since the epoch. */
  readonly t: number;
}
/** Whether the device's hardware answers: `disconnected` before open, after close, and while a lost board is sought again. */
export type DeviceState = 'connected' | 'disconnected';

export interface DeviceEvents {
  reading: [Reading];
  audio: [AudioFrame];
  /** A problem the device recovered from (bad data, a lost read): counted and logged, not fatal. */
  warning: [Error];
  button: [ButtonEvent];
  /** The state changed (a board was lost, or came back). */
  state: [DeviceState];
}

export interface Device extends EventEmitter<DeviceEvents> {
  readonly kind: string;
  readonly channels: readonly ChannelSpec[];
  readonly simulation: SimulationControl | undefined;
  /** Whether the device delivers audio frames (a microphone is configured and enabled). */
  readonly hasAudio: boolean;
  /** `connected` from open to close, but `disconnected` while a lost link (a Firmata board) is sought again. */
  readonly state: DeviceState;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Counters of rejected or missing data, for `apiary status`. */
  stats(): Record<string, number>;
}

/** Audio input: a microphone, or the simulator's recordings. */
export interface AudioSource {
  readonly sampleRate: number;
  open(): Promise<void>;
  /** The most recent `seconds` of sound. */
  capture(seconds: number): Promise<AudioFrame>;
  close(): Promise<void>;
}

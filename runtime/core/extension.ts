/**
 * What an extension is. Every capability that is not the kernel (recording,
 * rules, MQTT commands, Home Assistant, the uplink, model updates, audits,
 * and every application such as the beehive) is one: a folder with a factory,
 * started in order after the kernel's services and stopped in reverse.
 */
import type { ApiaryConfig } from '../config/schema.js';
import type { CommandRegistry } from '../commands/command-registry.js';
import type { NodeContext } from './node-context.js';

export interface Extension {
  /** Status key, log binding and owner of its listeners. */
  readonly name: string;
  /**
   * Starts: subscribe to events, declare commands, open what it needs. Checks
   * `signal` between long steps (a stop during start aborts it); whatever it
   * opened before an abort is closed by its own stop(), which is always called.
   */
  start(ctx: NodeContext, signal: AbortSignal): Promise<void>;
  /** Closes everything start() opened; called once, also after a failed or aborted start. */
  stop(): Promise<void>;
  /** Merged into `apiary status` (its top-level keys; an object under an existing key is merged into it). */
  status?(): Record<string, unknown>;
}

/** One line of the extension list: how to tell whether it runs, and how to load it only then. */
export interface ExtensionEntry {
  readonly name: string;
  /** Started after these (if they run), stopped before them. */
  readonly after?: readonly string[];
  enabled(config: ApiaryConfig): boolean;
  /** A dynamic import: an extension that is off never loads (RAM on a 512 MB board). */
  load(): Promise<(config: ApiaryConfig) => Extension>;
  /**
   * Declares its commands with no running parts (each says it is unavailable):
   * for `apiary commands`, the CLI's help, and a node where it is off. Must
   * not import the extension's implementation.
   */
  declareCommands?(registry: CommandRegistry): void;
}

/** An application: a bundle of extensions with its own defaults. */
export interface Application {
  readonly name: string;
  readonly description: string;
  readonly extensions: readonly ExtensionEntry[];
}

/**
 * The kernel's ordered loop over extensions. Start follows `after` (then the
 * list's order); stop runs in reverse. Each start and stop is isolated: an
 * extension that fails to start is reported, counted (`extensions.failed`),
 * stopped at once (so it leaves no socket, file or listener behind), and the
 * node runs on without it. A stop during start aborts at the next extension.
 */
import type { CommandRegistry } from '../commands/command-registry.js';
import type { ApiaryConfig } from '../config/schema.js';
import type { Counters } from '../counters.js';
import { ApiaryError, ErrorCodes, describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Extension, ExtensionEntry } from './extension.js';

export interface ExtensionState {
  readonly state: 'running' | 'failed' | 'stopped';
  readonly error?: string;
}

/** Orders the enabled entries so each starts after those it names; a cycle is a programming error. */
export function orderExtensions(entries: readonly ExtensionEntry[]): ExtensionEntry[] {
  const byName = new Map<string, ExtensionEntry>();
  for (const entry of entries) {
    if (byName.has(entry.name)) throw new ApiaryError(ErrorCodes.EXTENSION_ORDER, `extension "${entry.name}" is listed twice`);
    byName.set(entry.name, entry);
  }
  const ordered: ExtensionEntry[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (entry: ExtensionEntry, path: readonly string[]): void => {
    const seen = state.get(entry.name);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      throw new ApiaryError(ErrorCodes.EXTENSION_ORDER, `extensions start after each other in a circle: ${[...path, entry.name].join(' -> ')}`, { hint: 'remove one of the `after` names' });
    }
    state.set(entry.name, 'visiting');
    for (const name of entry.after ?? []) {
      const before = byName.get(name);
      if (before) visit(before, [...path, entry.name]); // one that is off is simply not waited for
    }
    state.set(entry.name, 'done');
    ordered.push(entry);
  };
  for (const entry of entries) visit(entry, []);
  return ordered;
}

export class ExtensionRunner {
  private readonly running: Extension[] = [];
  private readonly states = new Map<string, ExtensionState>();
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly entries: readonly ExtensionEntry[],
    private readonly config: ApiaryConfig,
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {}

  /** The enabled entries in start order. */
  enabled(): ExtensionEntry[] {
    return orderExtensions(this.entries.filter((e) => e.enabled(this.config)));
  }

  /** Declares the commands of an extension that failed to start, without its parts: they answer that they are unavailable. */
  declareFailed(name: string, registry: CommandRegistry): void {
    this.entries.find((e) => e.name === name)?.declareCommands?.(registry);
  }

  /** Declares the commands of the extensions that are off: they answer that they are unavailable here. */
  declareDisabled(registry: CommandRegistry): void {
    for (const entry of this.entries) if (!entry.enabled(this.config)) entry.declareCommands?.(registry);
  }

  /**
   * Loads and starts each enabled extension in order. `contextFor` gives each
   * its context; `cleanUp` removes what the kernel holds for it (listeners, timers).
   * Throws START_ABORTED when `signal` fires.
   */
  async start(contextFor: (name: string) => Parameters<Extension['start']>[0], signal: AbortSignal, cleanUp: (name: string) => void): Promise<void> {
    for (const entry of this.enabled()) {
      if (signal.aborted) throw new ApiaryError(ErrorCodes.START_ABORTED, `start-up stopped before extension "${entry.name}"`);
      const began = performance.now();
      let extension: Extension | undefined;
      try {
        extension = (await entry.load())(this.config);
        this.running.push(extension);
        await extension.start(contextFor(entry.name), signal);
        this.states.set(entry.name, { state: 'running' });
        this.logger.debug({ ext: entry.name, ms: Math.round(performance.now() - began) }, `start-up: extension ${entry.name}`);
      } catch (err) {
        if (signal.aborted) throw new ApiaryError(ErrorCodes.START_ABORTED, `start-up stopped during extension "${entry.name}"`, { cause: err });
        this.counters.increment('extensions.failed');
        this.states.set(entry.name, { state: 'failed', error: describeError(err) });
        this.logger.error({ ext: entry.name, err: describeError(err) }, `extension ${entry.name} failed to start: the node runs on without it`);
        if (extension) {
          this.running.splice(this.running.indexOf(extension), 1);
          await this.stopOne(extension, cleanUp);
        }
      }
    }
  }

  /** Stops every started extension in reverse order, each isolated; later calls share the first one's result. */
  stop(cleanUp: (name: string) => void): Promise<void> {
    this.stopped ??= (async () => {
      for (const extension of this.running.splice(0).reverse()) {
        await this.stopOne(extension, cleanUp);
        if (this.states.get(extension.name)?.state === 'running') this.states.set(extension.name, { state: 'stopped' });
      }
    })();
    return this.stopped;
  }

  private async stopOne(extension: Extension, cleanUp: (name: string) => void): Promise<void> {
    try {
      await extension.stop();
    } catch (err) {
      this.counters.increment('extensions.stop_failed');
      this.logger.warn({ ext: extension.name, err: describeError(err) }, `extension ${extension.name} failed to stop cleanly`);
    } finally {
      cleanUp(extension.name);
    }
  }

  /** Each running extension's status merged in, plus `extensions`: the state of each. */
  status(into: Record<string, unknown>): Record<string, unknown> {
    for (const extension of this.running) {
      let part: Record<string, unknown> | undefined;
      try {
        part = extension.status?.();
      } catch (err) {
        this.states.set(extension.name, { state: 'failed', error: `status: ${describeError(err)}` });
      }
      for (const [key, value] of Object.entries(part ?? {})) {
        const existing = into[key];
        into[key] = isPlainObject(existing) && isPlainObject(value) ? { ...existing, ...value } : value;
      }
    }
    into.extensions = Object.fromEntries(this.states);
    return into;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

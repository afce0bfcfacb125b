/**
 * The node's typed events: how the kernel and the extensions talk. A listener
 * is registered under an owner (an extension's name) and removed with all of
 * that owner's listeners when it stops. `emit` awaits the listeners one by
 * one, in registration order (= the order the extensions started), so the
 * pipeline stays deterministic: a reading is stored, shared and published,
 * then decided on, exactly as before the kernel existed. A failing listener
 * is counted and logged; the others still run.
 */
import type { AudioFrame, ButtonEvent, DeviceState, Reading } from '../../devices/device.js';
import type { Counters } from '../counters.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { FeedEntry } from '../mesh/feed-entry.js';
import type { DecisionRecord, ModelOutput } from './model-types.js';

export interface NodeEventMap {
  /** A sensor reading, or one derived from other input (a sound level from an audio frame). */
  reading: [reading: Reading];
  /** An audio frame from the device's microphone. */
  audio: [frame: AudioFrame];
  /** A model ran: its output, with the exact input it saw. */
  'model-output': [output: ModelOutput];
  /** A rule raised or cleared a decision (its state is already saved). */
  decision: [record: DecisionRecord];
  /** An entry of another origin arrived over the mesh (verified, in order, once). */
  'feed-entry': [entry: FeedEntry];
  /** This node appended an entry of `type` to its own feed. */
  'feed-append': [type: string];
  /** The device's board was lost (`disconnected`: nothing is measured until it is back) or came back (`connected`). */
  'device-state': [state: DeviceState];
  /** A push button was pressed or released (push-to-talk, later). */
  button: [event: ButtonEvent];
  /** A decision to tell aloud as it is raised, with its reason (the ask extension, per `ask.announce`; a voice front speaks it). */
  announcement: [announcement: { readonly rule: string; readonly severity: string; readonly text: string; readonly speech: string; readonly t: number }];
  /** Start-up is complete: device open, models loaded. */
  started: [];
}

export type NodeEventName = keyof NodeEventMap;
type Listener<E extends NodeEventName> = (...args: NodeEventMap[E]) => unknown;

interface Registration {
  readonly owner: string;
  readonly listener: (...args: never[]) => unknown;
}

export class NodeEvents {
  private readonly listeners = new Map<NodeEventName, Registration[]>();

  constructor(private readonly counters: Counters, private readonly logger: Logger) {}

  /** Adds `listener` for `event` on behalf of `owner`; it may return a promise, which emit awaits. */
  on<E extends NodeEventName>(owner: string, event: E, listener: Listener<E>): void {
    const list = this.listeners.get(event) ?? [];
    list.push({ owner, listener });
    this.listeners.set(event, list);
  }

  /** Removes every listener `owner` added (an extension's stop). */
  removeAll(owner: string): void {
    for (const [event, list] of this.listeners) this.listeners.set(event, list.filter((r) => r.owner !== owner));
  }

  /** How many listeners `owner` holds (for the extension contract suite), or all of them. */
  count(owner?: string): number {
    let n = 0;
    for (const list of this.listeners.values()) n += owner === undefined ? list.length : list.filter((r) => r.owner === owner).length;
    return n;
  }

  /** Runs the listeners in order; an error in one is counted (`events.listener_errors.<owner>`) and the rest still run. */
  async emit<E extends NodeEventName>(event: E, ...args: NodeEventMap[E]): Promise<void> {
    // A copy: a listener that stops its owner meanwhile does not skip the next one.
    for (const { owner, listener } of [...(this.listeners.get(event) ?? [])]) {
      try {
        await (listener as Listener<E>)(...args);
      } catch (err) {
        this.counters.increment('node.pipeline_errors');
        this.counters.increment(`events.listener_errors.${owner}`);
        this.logger.error({ ext: owner, event, err: describeError(err) }, `${owner} failed on a ${event} event`);
      }
    }
  }
}

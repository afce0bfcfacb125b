/**
 * The node's retained announcements (its state, info, decisions and Home
 * Assistant discovery configs) must survive a client that clears them with
 * an empty retained PUBLISH (issue 10, "Also"). The access rules already keep
 * local clients out of those topics; a client the owner let in (broker.acl)
 * can still clear one, by mistake or not. The broker remembers the last
 * retained payload the node published in-process on each topic, and when a
 * client clears one, publishes it again at once (`broker.restored.announcements`).
 * Only clearing is undone: a client the owner allowed may still replace one.
 */
import type { Counters } from '../counters.js';
import type { Logger } from '../log.js';

/** The node's own retained topics are few (state, info, a topic per rule, a discovery config per entity); this bounds the memory all the same. */
const MAX_ANNOUNCEMENTS = 4096;

export class AnnouncementKeeper {
  private readonly announced = new Map<string, Buffer>();

  constructor(
    private readonly republish: (topic: string, payload: Buffer) => Promise<void>,
    private readonly counters: Counters,
    private readonly logger: Logger,
  ) {}

  /** A retained PUBLISH was routed: `byNode` when the node published it in-process, else a client did. */
  routed(topic: string, payload: Buffer, byNode: boolean): void {
    if (byNode) {
      if (payload.length === 0) this.announced.delete(topic);
      else if (this.announced.has(topic) || this.announced.size < MAX_ANNOUNCEMENTS) this.announced.set(topic, payload);
      return;
    }
    const announcement = this.announced.get(topic);
    if (payload.length > 0 || announcement === undefined) return;
    this.counters.increment('broker.restored.announcements');
    this.logger.warn({ topic }, 'a client cleared one of the node\'s retained announcements; published it again');
    this.republish(topic, announcement).catch((err: unknown) => this.logger.debug({ err, topic }, 'could not restore an announcement'));
  }
}

/**
 * One stream as its readers see it: the records in its own segment log
 * (streams/<name>: all of them when the mesh is off or the stream is not
 * shared; the frozen prefix of an old data dir) and those kept in the
 * node's own feed (feed-index.ts), merged in seq order. The two never share
 * a seq: a part in the feed starts where the log ended, and the log
 * continues after the feed's part (SegmentLog.skipTo).
 */
import type { SegmentLog } from '../storage/segment-log.js';
import type { AppendOnlyStream, StoredRecord, StreamStats } from '../storage/stream-store.js';
import type { FeedIndex } from './feed-index.js';

export class StreamView implements AppendOnlyStream {
  readonly name: string;

  constructor(readonly log: SegmentLog, private readonly index: FeedIndex) {
    this.name = log.name;
  }

  open(): Promise<void> {
    return this.log.open();
  }

  /** Appends to the stream's own log (NodeStorage decides where a record goes). */
  append(payload: Buffer): Promise<number> {
    return this.log.append(payload);
  }

  async *read(fromSeq = 0, limit = Number.POSITIVE_INFINITY): AsyncGenerator<StoredRecord, void, undefined> {
    if (!(limit > 0)) return;
    const inFeed = this.index.stats(this.name);
    if (!inFeed || inFeed.records === 0) {
      yield* this.log.read(fromSeq, limit);
      return;
    }
    let left = limit;
    const a = this.log.read(fromSeq, limit);
    const b = this.index.read(this.name, fromSeq, limit);
    try {
      let x = await a.next();
      let y = await b.next();
      while (!x.done || !y.done) {
        const takeLog = y.done || (!x.done && x.value.seq < y.value.seq);
        const record = (takeLog ? x.value : y.value) as StoredRecord;
        yield record;
        if ((left -= 1) <= 0) return;
        if (takeLog) x = await a.next();
        else y = await b.next();
      }
    } finally {
      await a.return(undefined);
      await b.return(undefined);
    }
  }

  flush(): Promise<void> {
    return this.log.flush();
  }

  stats(): StreamStats {
    const own = this.log.stats();
    const inFeed = this.index.stats(this.name);
    if (!inFeed) return own;
    // A stream going on in a sealed part keeps its log moved on ahead (NodeStorage.route): that lead is no record.
    const recordsEnd = this.log.recordsEnd();
    const ownNext = this.index.sealedLast(this.name) ? recordsEnd : own.nextSeq;
    const ownRecords = recordsEnd > own.firstSeq;
    const firstSeq = ownRecords ? Math.min(own.firstSeq, inFeed.firstSeq) : inFeed.records > 0 ? inFeed.firstSeq : Math.max(ownNext, inFeed.nextSeq);
    return {
      ...own,
      bytes: own.bytes + inFeed.bytes,
      firstSeq,
      nextSeq: Math.max(ownNext, inFeed.nextSeq),
      droppedByRetention: own.droppedByRetention + inFeed.dropped,
      inFeed: { records: inFeed.records, bytes: inFeed.bytes },
    };
  }

  close(): Promise<void> {
    return this.log.close();
  }
}

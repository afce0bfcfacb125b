/**
 * Linux /proc counters of a child process, and a reader of the node's
 * segment files. Everything is read from outside the node, so measuring does
 * not change what is measured.
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/** FRAME_HEADER_BYTES in runtime/storage/record-frame.ts: u32 length + u32 CRC. */
const FRAME_HEADER_BYTES = 8;

/** Clock ticks per second of utime/stime; 100 on every common Linux, used if getconf is missing. */
export const CLK_TCK = ((): number => {
  try {
    const n = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(n) && n > 0 ? n : 100;
  } catch {
    return 100;
  }
})();

/** User + system CPU time of the process (all its threads), in ms. */
export async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may hold spaces; fields after its ')' are fixed: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime (14), stime (15)
  return (ticks * 1000) / CLK_TCK;
}

export interface IoCounters {
  /** Bytes the process caused to be sent to storage (page-granular, counted when pages are dirtied). */
  readonly writeBytes: number;
  /** Bytes passed to write()-like calls: files, but also sockets and pipes. */
  readonly wchar: number;
}

async function keyed(file: string): Promise<Map<string, number>> {
  const text = await readFile(file, 'utf8');
  return new Map(text.split('\n').filter((l) => l.includes(':')).map((l) => {
    const [key = '', value = ''] = l.split(':');
    return [key.trim(), Number.parseInt(value.trim(), 10)];
  }));
}

export async function ioCounters(pid: number): Promise<IoCounters> {
  const io = await keyed(`/proc/${pid}/io`);
  return { writeBytes: io.get('write_bytes') ?? 0, wchar: io.get('wchar') ?? 0 };
}

export interface Memory {
  readonly rssKiB: number;
  /** Peak RSS since the process started. */
  readonly hwmKiB: number;
  /**
   * Proportional set size (/proc/<pid>/smaps_rollup, Linux 4.14+): each page
   * shared with n processes counts 1/n. Two node processes share the text of
   * /usr/bin/node (about 40 MB resident), which a sum of VmRSS counts twice
   * and a sum of PSS once: the sum of PSS is what the processes take of the
   * board's RAM. NaN where smaps_rollup is missing.
   */
  readonly pssKiB: number;
}

export async function memory(pid: number): Promise<Memory> {
  const status = await keyed(`/proc/${pid}/status`);
  const rollup = await keyed(`/proc/${pid}/smaps_rollup`).catch(() => new Map<string, number>());
  return { rssKiB: status.get('VmRSS') ?? Number.NaN, hwmKiB: status.get('VmHWM') ?? Number.NaN, pssKiB: rollup.get('Pss') ?? Number.NaN };
}

export interface StreamScan {
  /** Records in the streams' own logs (streams/<name>). */
  readonly records: number;
  /** Bytes of whole frames (header + payload). */
  readonly segmentBytes: number;
  readonly payloadBytes: number;
  readonly recordsByStream: Readonly<Record<string, number>>;
  /** The node's own feed (mesh/feeds/<origin>: a lone node holds only its own). */
  readonly feed: FeedScan;
}

export interface FeedScan {
  readonly entries: number;
  /** Bytes of whole frames. */
  readonly bytes: number;
  /** Entries the recorder wrote (reading, model, decision; sealed ones not told apart). */
  readonly records: number;
  /** Bytes of the JSON records inside those entries (their `body`). */
  readonly recordBytes: number;
  /**
   * Group commits that wrote entries: entries stamped (hlc, wall ms) within
   * `commitMs` of the first of a group went to disk in one fsync (mesh.ts
   * commit()). One 4 KiB page each is the floor of what the feed can cost.
   */
  readonly commits: number;
  /** 4 KiB pages of the feed's files that those commits wrote into (a commit of more than a page spans several): the floor of the one write path. */
  readonly commitPages: number;
}

/** The records of one type (`reading`, ...) kept in the own feed, oldest first: each entry's body (the record's JSON). */
export async function readFeedRecords(dataDir: string, type: string): Promise<Buffer[]> {
  const feeds = path.join(dataDir, 'mesh', 'feeds');
  const out: Buffer[] = [];
  for (const origin of await listDir(feeds)) {
    const dir = path.join(feeds, origin);
    for (const file of (await listDir(dir)).filter((name) => name.endsWith('.seg'))) {
      for (const payload of framesOf(await readFile(path.join(dir, file)))) {
        const entry = JSON.parse(payload.toString('utf8')) as { type: string; body: string };
        if (entry.type === type) out.push(Buffer.from(entry.body, 'utf8'));
      }
    }
  }
  return out;
}

const PAGE = 4096;
/** mesh.commitInterval of the shipped config. */
const COMMIT_MS = 200;
const RECORDER_TYPES = new Set(['reading', 'model', 'decision']);

/** Every whole entry of the own feed(s), oldest first, with the group commits they took. */
export async function scanFeeds(dataDir: string): Promise<FeedScan> {
  const feeds = path.join(dataDir, 'mesh', 'feeds');
  let entries = 0;
  let bytes = 0;
  let records = 0;
  let recordBytes = 0;
  let commits = 0;
  let commitPages = 0;
  for (const origin of await listDir(feeds)) {
    let groupStart = Number.NEGATIVE_INFINITY;
    let pages = new Set<string>();
    const dir = path.join(feeds, origin);
    for (const file of (await listDir(dir)).filter((name) => name.endsWith('.seg'))) {
      let offset = 0;
      for (const payload of framesOf(await readFile(path.join(dir, file)))) {
        const size = payload.length + FRAME_HEADER_BYTES;
        entries += 1;
        bytes += size;
        const entry = JSON.parse(payload.toString('utf8')) as { type: string; body: string; hlc: { l: number } };
        if (RECORDER_TYPES.has(entry.type)) {
          records += 1;
          recordBytes += Buffer.byteLength(entry.body);
        }
        if (entry.hlc.l - groupStart >= COMMIT_MS) {
          commits += 1;
          commitPages += pages.size;
          pages = new Set();
          groupStart = entry.hlc.l;
        }
        for (let page = Math.floor(offset / PAGE); page <= Math.floor((offset + size - 1) / PAGE); page++) pages.add(`${file}:${page}`);
        offset += size;
      }
    }
    commitPages += pages.size;
  }
  return { entries, bytes, records, recordBytes, commits, commitPages };
}

/** The payloads of the whole frames of one segment file; a frame still being written is left out. */
function framesOf(buf: Buffer): Buffer[] {
  const payloads: Buffer[] = [];
  let offset = 0;
  while (offset + FRAME_HEADER_BYTES <= buf.length) {
    const end = offset + FRAME_HEADER_BYTES + buf.readUInt32LE(offset);
    if (end > buf.length) break;
    payloads.push(buf.subarray(offset + FRAME_HEADER_BYTES, end));
    offset = end;
  }
  return payloads;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Every record of one stream, oldest first (segment names sort in seq order). */
export async function readStream(dataDir: string, stream: string): Promise<Buffer[]> {
  const dir = path.join(dataDir, 'streams', stream);
  const files = (await listDir(dir)).filter((name) => name.endsWith('.seg'));
  const out: Buffer[] = [];
  for (const file of files) out.push(...framesOf(await readFile(path.join(dir, file))));
  return out;
}

export async function listStreams(dataDir: string): Promise<string[]> {
  return listDir(path.join(dataDir, 'streams'));
}

/** Counts records and bytes of every stream; segment files are small (MiBs), so reading them whole is fine. */
export async function scanStreams(dataDir: string): Promise<StreamScan> {
  let records = 0;
  let payloadBytes = 0;
  const recordsByStream: Record<string, number> = {};
  for (const stream of (await listStreams(dataDir)).filter((name) => !name.endsWith('.json'))) {
    const payloads = await readStream(dataDir, stream);
    recordsByStream[stream] = payloads.length;
    records += payloads.length;
    for (const p of payloads) payloadBytes += p.length;
  }
  return { records, segmentBytes: payloadBytes + records * FRAME_HEADER_BYTES, payloadBytes, recordsByStream, feed: await scanFeeds(dataDir) };
}

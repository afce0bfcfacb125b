/**
 * What the node keeps about its dealings, in <dataDir>/tasks-book.json
 * (written temp -> rename): the amount committed today against the
 * mandate's daily budget, and each provider's local reputation (results
 * taken, spot-checks made and failed). Reputation is this node's own view,
 * never shared: a failed check lowers it, and a provider below
 * `tasks.minReputation` gets no more awards.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../storage/atomic-json-file.js';

export interface Reputation {
  results: number;
  checks: number;
  failedChecks: number;
  failures: number;
  missed: number;
}

interface Book {
  day: string;
  spent: number;
  reputation: Record<string, Reputation>;
}

const EMPTY: Reputation = { results: 0, checks: 0, failedChecks: 0, failures: 0, missed: 0 };

export class Ledger {
  private book: Book = { day: '', spent: 0, reputation: {} };
  private readonly file: string;
  private queue: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = path.join(dataDir, 'tasks-book.json');
  }

  async open(): Promise<void> {
    try {
      this.book = JSON.parse(await readFile(this.file, 'utf8')) as Book;
    } catch {
      // none yet
    }
  }

  /** Committed today (UTC). */
  spentToday(now: number): number {
    return this.book.day === utcDay(now) ? this.book.spent : 0;
  }

  async commit(amount: number, now: number): Promise<void> {
    const day = utcDay(now);
    if (this.book.day !== day) this.book = { ...this.book, day, spent: 0 };
    this.book.spent += amount;
    await this.flush();
  }

  reputation(peer: string): Reputation {
    return { ...EMPTY, ...this.book.reputation[peer] };
  }

  /** 1 for a provider with a clean record; each failed check or failure lowers it. */
  score(peer: string): number {
    const r = this.reputation(peer);
    return (r.results + 1) / (r.results + 1 + 4 * r.failedChecks + r.failures + r.missed);
  }

  async note(peer: string, change: Partial<Reputation>): Promise<void> {
    const r = this.reputation(peer);
    for (const [k, v] of Object.entries(change) as [keyof Reputation, number][]) r[k] += v;
    this.book.reputation[peer] = r;
    await this.flush();
  }

  all(): Record<string, Reputation & { score: number }> {
    return Object.fromEntries(Object.keys(this.book.reputation).map((peer) => [peer, { ...this.reputation(peer), score: Math.round(this.score(peer) * 1000) / 1000 }]));
  }

  private flush(): Promise<void> {
    const text = JSON.stringify(this.book);
    this.queue = this.queue.then(() => writeFileAtomic(this.file, text));
    return this.queue;
  }
}

function utcDay(t: number): string {
  return new Date(t).toISOString().slice(0, 10);
}

/**
 * `apiary feed list | export` on a real node's data dir, and an outside
 * verifier that checks every exported entry with node:crypto and the format
 * documented in docs/formats.md only, not the project's decoder.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiary } from '../../support/cli.js';
import { startNodeProcess, type NodeProcess } from '../../support/node-process.js';

/** What docs/formats.md documents, written out independently of runtime/mesh/feed-entry.ts. */
interface ExportedEntry { v: number; origin: string; key: string; seq: number; prev: string | null; hlc: { l: number; c: number }; type: string; body: string; sig: string }

const signedBytes = (e: ExportedEntry) => Buffer.from(`apiary-feed-v1\n${JSON.stringify([e.origin, e.key, e.seq, e.prev, e.hlc.l, e.hlc.c, e.type, e.body])}`, 'utf8');
const entryId = (e: ExportedEntry) => createHash('sha256').update(signedBytes(e)).update(Buffer.from(e.sig, 'base64url')).digest('base64url');

function originOf(rawKey: Buffer): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = '';
  for (const byte of createHash('sha256').update(rawKey).digest()) bits += byte.toString(2).padStart(8, '0');
  let id = '';
  for (let i = 0; i < 12; i++) id += alphabet[parseInt(bits.slice(i * 5, i * 5 + 5), 2)];
  return id;
}

/** Verifies one exported line; returns why not, or undefined. */
function outsideVerify(line: string, before: ExportedEntry | undefined): string | undefined {
  const e = JSON.parse(line) as ExportedEntry;
  const raw = Buffer.from(e.key, 'base64url');
  if (raw.length !== 32) return 'key is not 32 bytes';
  if (originOf(raw) !== e.origin) return 'origin is not derived from the key';
  const key = createPublicKey({ key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]), format: 'der', type: 'spki' });
  if (!verify(null, signedBytes(e), key, Buffer.from(e.sig, 'base64url'))) return 'signature does not verify';
  if (e.seq === 1 ? e.prev !== null : before !== undefined && before.seq === e.seq - 1 && e.prev !== entryId(before)) return 'prev does not chain';
  return undefined;
}

describe('apiary feed', () => {
  let dir: string;
  let args: string[];
  let node: NodeProcess | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-feed-'));
    await writeFile(path.join(dir, 'apiary.yaml'), 'device:\n  simulation: { speed: 600 }\nlog: { level: warn }\n');
    args = ['--config', path.join(dir, 'apiary.yaml'), '--data-dir', path.join(dir, 'data')];
  });
  afterAll(async () => {
    if (node && node.child.exitCode === null) node.child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('lists and exports the feeds, read-only beside a running node; an outsider verifies every entry from docs/formats.md alone', async () => {
    node = await startNodeProcess([...args, '--port', '0']);
    const nodeId = (JSON.parse((await apiary(['id', '--json', ...args], dir)).stdout) as { nodeId: string }).nodeId;
    type Listed = { origin: string; fromSeq: number; toSeq: number; entries: number; bytes: number; gaps: number; forks: number; invalid: number };
    const list = async () => JSON.parse((await apiary(['feed', 'list', '--json', ...args], dir)).stdout) as Listed[];
    // Read while the node writes: only whole, valid frames are read, nothing is changed.
    for (let i = 0; i < 100 && ((await list())[0]?.entries ?? 0) < 20; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const live = await list();
    expect(live.map((f) => f.origin)).toEqual([nodeId]);
    expect(live[0]).toMatchObject({ fromSeq: 1, gaps: 0, forks: 0, invalid: 0 });
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    expect(node.output()).not.toContain('did not shut down cleanly');

    const [feed] = await list();
    const exported = await apiary(['feed', 'export', ...args], dir);
    expect(exported.code, exported.stderr).toBe(0);
    const lines = exported.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(feed?.entries ?? -1);
    expect(lines.reduce((sum, l) => sum + Buffer.byteLength(l) + 8, 0)).toBe(feed?.bytes); // 8-byte frame header per record
    let before: ExportedEntry | undefined;
    for (const line of lines) {
      expect(outsideVerify(line, before), line).toBeUndefined();
      before = JSON.parse(line) as ExportedEntry;
    }
    expect(before?.seq).toBe(feed?.toSeq);
    // The verifier is not vacuous: one changed character of a body breaks the signature.
    const forged = JSON.parse(lines[1] ?? '{}') as ExportedEntry;
    expect(outsideVerify(JSON.stringify({ ...forged, body: forged.body.replace(/\d/, (d) => String((Number(d) + 1) % 10)) }), undefined)).toBe('signature does not verify');

    const tail = await apiary(['feed', 'export', '--origin', nodeId, '--from-seq', '5', ...args], dir);
    expect(tail.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as ExportedEntry).seq)).toEqual(Array.from({ length: (feed?.toSeq ?? 0) - 4 }, (_, i) => i + 5));
    expect((await apiary(['feed', 'export', '--origin', 'aaaaaaaaaaaa', ...args], dir)).stdout).toBe('');
    const table = await apiary(['feed', 'list', ...args], dir);
    expect(table.stdout).toMatch(new RegExp(`^ORIGIN\\s+FROM\\s+TO\\s+ENTRIES\\s+BYTES\\s+GAPS\\s+FORKS\\s+INVALID\\s+CUT\\n${nodeId}\\s+1\\s+${feed?.toSeq}\\s`));
  }, 60_000);
});

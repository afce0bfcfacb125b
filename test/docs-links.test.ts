/**
 * The README and docs/ link to each other by file and section anchor, and the
 * code cites sections by name ('see docs/mesh.md, "Broker security"'). When a
 * section moves or is renamed, these fail instead of leaving a dead pointer.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './models/helpers.js';

const DOCS = ['README.md', 'SECURITY.md', 'flows/README.md',
  ...readdirSync(path.join(REPO_ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

const read = (file: string): string => readFileSync(path.join(REPO_ROOT, file), 'utf8');

/** Lines outside fenced code blocks: a `#` or `[x](y)` inside one is code, not markdown. */
function proseLines(text: string): string[] {
  let fenced = false;
  return text.split('\n').filter((line) => {
    if (/^\s*```/.test(line)) { fenced = !fenced; return false; }
    return !fenced;
  });
}

function headings(file: string): string[] {
  return proseLines(read(file)).flatMap((line) => /^#{1,6} (.+)$/.exec(line)?.[1]?.trim() ?? []);
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const heading of headings(file)) {
    const base = heading.toLowerCase().replace(/[^\p{L}\p{N}\p{M}\p{Pc} -]/gu, '').replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

/** Every relative link of a markdown file, with code spans taken out first. */
function relativeLinks(file: string): string[] {
  const prose = proseLines(read(file)).join('\n').replace(/`[^`\n]*`/g, '');
  return [...prose.matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((t) => !/^[a-z]+:/i.test(t));
}

/** What is wrong with one link from `file`, or undefined if it resolves. */
function brokenLink(file: string, target: string): string | undefined {
  const [rel = '', anchor] = target.split('#');
  const dest = rel === '' ? file : path.posix.normalize(path.posix.join(path.posix.dirname(file), rel));
  if (!existsSync(path.join(REPO_ROOT, dest))) return `${file}: ${target}: no file ${dest}`;
  if (anchor === undefined) return undefined;
  if (!dest.endsWith('.md') || statSync(path.join(REPO_ROOT, dest)).isDirectory()) return `${file}: ${target}: an anchor into a non-markdown target`;
  return anchors(dest).has(anchor) ? undefined : `${file}: ${target}: no heading with anchor #${anchor} in ${dest}`;
}

/** Source and config files that cite a section as `README, "X"`, `docs/y.md, "X"` or `README ("X")`. */
function sectionCitations(): { where: string; file: string; section: string }[] {
  const roots = ['runtime', 'devices', 'models', 'scripts', 'test', '.ci', '.npmrc', 'SECURITY.md'];
  const files: string[] = [];
  const walk = (rel: string): void => {
    const full = path.join(REPO_ROOT, rel);
    if (!existsSync(full)) return;
    if (statSync(full).isDirectory()) {
      for (const entry of readdirSync(full)) if (entry !== 'data' && entry !== 'fixtures') walk(path.posix.join(rel, entry));
    } else if (/\.(ts|mjs|js|md)$|^\.npmrc$|\/run$/.test(rel) && !rel.endsWith('docs-links.test.ts')) files.push(rel);
  };
  roots.forEach(walk);
  return files.flatMap((where) => [...read(where).matchAll(/\b(README|docs\/[\w-]+\.md)(?:,| \() ?"([^"\n]+)"/g)]
    .map((m) => ({ where, file: m[1] === 'README' ? 'README.md' : m[1] ?? '', section: m[2] ?? '' })));
}

describe('documentation links', () => {
  it('checks the links it is given: a missing file and a missing anchor are reported', () => {
    expect(brokenLink('README.md', 'docs/no-such-file.md')).toMatch(/no file docs\/no-such-file\.md/);
    expect(brokenLink('docs/mesh.md', '../README.md#no-such-section')).toMatch(/no heading with anchor #no-such-section in README\.md/);
    expect(brokenLink('docs/mesh.md', '../README.md#the-mesh')).toBeUndefined();
    expect(anchors('docs/models.md')).toContain('hive-sound-the-audio-pipeline');
  });

  it('every relative link in the README, SECURITY.md and docs/ points to an existing file and heading', () => {
    const links = DOCS.flatMap((file) => relativeLinks(file).map((target) => ({ file, target })));
    expect(links.length).toBeGreaterThan(50);
    expect(links.flatMap(({ file, target }) => brokenLink(file, target) ?? [])).toEqual([]);
  });

  it('every section the code cites by name exists in the file it names', () => {
    const citations = sectionCitations();
    expect(citations.length).toBeGreaterThan(5);
    const missing = citations.filter(({ file, section }) =>
      !existsSync(path.join(REPO_ROOT, file)) || !headings(file).some((h) => h === section || h.startsWith(`${section},`)));
    expect(missing).toEqual([]);
  });

  it('the README starts with the two commands a new user runs', () => {
    const quickStart = read('README.md').split('\n## ').find((s) => s.startsWith('Quick start'));
    expect(quickStart).toContain('npm install && npm start');
    expect(quickStart).toMatch(/^npm test\b/m);
  });
});

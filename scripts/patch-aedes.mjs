#!/usr/bin/env node
/**
 * Applies patches/aedes-1.2.0.patch to the installed aedes and the two
 * modules it routes with (run by npm as `postinstall`, so `npm ci` on a fresh
 * clone gets it before `prepare` bundles aedes into dist/). Why each change:
 * see the patch file's header.
 *
 * A tiny patcher instead of `patch(1)`: each hunk's old text (context and
 * `-` lines) must occur exactly once in the file and is replaced by its new
 * text (context and `+` lines); line numbers are ignored. It is idempotent (a
 * file that already holds the new text is left alone), checks the installed
 * versions, and fails loudly (exit 1) when a version or a hunk does not match,
 * so an aedes update cannot silently drop the fixes.
 *
 * `--reverse` restores the original files (to port the patch to a new
 * version). PATCH_AEDES_ROOT names another package root (for its tests).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import process from 'node:process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = process.env.PATCH_AEDES_ROOT ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const reverse = process.argv.includes('--reverse');
const PATCH_FILE = path.join(root, 'patches', 'aedes-1.2.0.patch');
/** The versions the patch was written for (package-lock.json pins them). */
const VERSIONS = { aedes: '1.2.0', 'aedes-persistence': '11.0.0', mqemitter: '7.1.0' };

function fail(message) {
  process.stderr.write(`patch-aedes: ${message}\n`
    + 'fix: reinstall the locked versions (`npm ci`), or port patches/aedes-1.2.0.patch to the new versions '
    + 'and update VERSIONS in scripts/patch-aedes.mjs (see docs/installing.md, "The aedes patch").\n');
  process.exit(1);
}

/** Where aedes finds a package: its own node_modules first (when npm could not hoist it), then the top level. */
function packageDir(name) {
  const top = path.join(root, 'node_modules', name);
  const candidates = name === 'aedes' ? [top] : [path.join(root, 'node_modules', 'aedes', 'node_modules', name), top];
  const dir = candidates.find((d) => existsSync(path.join(d, 'package.json')));
  if (!dir) fail(`${name} is not installed (looked in ${candidates.join(', ')})`);
  return dir;
}

/** The files of a unified diff, each with its hunks as { before, after } text; everything before the first `--- ` is commentary. */
function parsePatch(text) {
  const files = [];
  let file, hunk;
  for (const line of text.split('\n')) {
    if (line.startsWith('--- a/')) {
      file = undefined;
      hunk = undefined;
    } else if (line.startsWith('+++ b/')) {
      file = { path: line.slice('+++ b/'.length).trim(), hunks: [] };
      files.push(file);
    } else if (file && line.startsWith('@@')) {
      hunk = { before: [], after: [] };
      file.hunks.push(hunk);
    } else if (hunk) {
      const body = line.slice(1);
      if (line.startsWith(' ')) {
        hunk.before.push(body);
        hunk.after.push(body);
      } else if (line.startsWith('-')) hunk.before.push(body);
      else if (line.startsWith('+')) hunk.after.push(body);
    }
  }
  return files.map((f) => ({ path: f.path, hunks: f.hunks.map((h) => ({ before: h.before.join('\n'), after: h.after.join('\n') })) }));
}

function occurrences(haystack, needle) {
  let n = 0;
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) n += 1;
  return n;
}

const files = parsePatch(readFileSync(PATCH_FILE, 'utf8'));
if (files.length === 0) fail(`${PATCH_FILE} holds no hunks`);
let changed = 0;
for (const { path: relative, hunks } of files) {
  const name = relative.split('/')[0];
  const expected = VERSIONS[name];
  if (!expected) fail(`the patch touches ${relative}, but ${name} has no pinned version in scripts/patch-aedes.mjs`);
  const dir = packageDir(name);
  const { version } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (version !== expected) fail(`${name} ${version} is installed; the patch is for ${name} ${expected}`);
  const target = path.join(dir, relative.slice(name.length + 1));
  const original = readFileSync(target, 'utf8');
  let content = original;
  for (const [i, { before, after }] of hunks.entries()) {
    if (content.includes(after) !== reverse) continue; // already applied (or already reversed)
    const [from, to] = reverse ? [after, before] : [before, after];
    if (occurrences(content, from) !== 1) fail(`hunk ${i + 1} of ${relative} does not apply to ${target} (its text is not there exactly once)`);
    content = content.replace(from, () => to);
  }
  if (content !== original) {
    writeFileSync(target, content);
    changed += 1;
  }
}
const done = reverse ? 'restored' : 'patched';
process.stdout.write(`patch-aedes: ${changed === 0 ? `already ${done}` : `${done} ${changed} file(s)`} (aedes ${VERSIONS.aedes})\n`);

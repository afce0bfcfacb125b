#!/usr/bin/env node
/**
 * Builds the Debian packages `dist/packages/apiary_<version>_<arch>.deb` for
 * arm64 (Raspberry Pi OS 64-bit) and amd64 with plain `dpkg-deb`: no network
 * (npm runs with --offline from the local cache), nothing compiled. Run by
 * `npm run package` after `npm run build`. What goes where, and why: see
 * docs/installing.md, "The Debian package".
 *
 *   node scripts/package-deb.mjs [--arch arm64|amd64]... [--out DIR] [--compression xz|gzip]
 *
 * xz (the default) makes the smallest files; gzip builds in a fraction of the
 * time (the package test uses it).
 *
 * The production dependency tree is installed once with `npm ci --omit=dev
 * --offline --ignore-scripts` (no install script runs: the native parts of
 * onnxruntime-node and serialport ship prebuilt inside their packages), then
 * each architecture's copy keeps only its own prebuilt binaries.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import process from 'node:process';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = 'usr/lib/apiary';
/** Debian architecture -> Node's `process.arch` (the prebuilt folders are named after it). */
const ARCHES = { arm64: 'arm64', amd64: 'x64' };

function fail(message) {
  process.stderr.write(`package-deb: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const arches = [];
  let out = path.join(root, 'dist', 'packages');
  let compression = 'xz';
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (arg === '--arch') arches.push(argv[(i += 1)] ?? '');
    else if (arg === '--out') out = path.resolve(argv[(i += 1)] ?? '');
    else if (arg === '--compression') compression = argv[(i += 1)] ?? '';
    else fail(`unknown argument ${arg}: use --arch arm64|amd64 (repeatable), --out DIR and --compression xz|gzip`);
  }
  for (const arch of arches) if (!(arch in ARCHES)) fail(`--arch ${arch}: expected arm64 or amd64`);
  if (compression !== 'xz' && compression !== 'gzip') fail(`--compression ${compression}: expected xz or gzip`);
  return { arches: arches.length > 0 ? arches : Object.keys(ARCHES), out, compression };
}

/** Bytes of every file below `dir` (symlinks counted as themselves). */
function treeBytes(dir) {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) total += treeBytes(full);
    else total += lstatSync(full).size;
  }
  return total;
}

function walk(dir, visit) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    visit(full, entry);
    if (entry.isDirectory()) walk(full, visit);
  }
}

/** The production tree, once for every architecture: from the npm cache only. */
function installProductionTree(stage) {
  const dir = path.join(stage, 'production');
  mkdirSync(dir);
  cpSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  cpSync(path.join(root, 'package-lock.json'), path.join(dir, 'package-lock.json'));
  try {
    execFileSync('npm', ['ci', '--omit=dev', '--offline', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    fail(`npm ci --offline failed (${String(err.stderr ?? err.message).trim().split('\n')[0]}): run \`npm ci\` once with the registry reachable to fill the npm cache, then package again`);
  }
  rmSync(path.join(dir, 'node_modules', '.bin'), { recursive: true, force: true });
  rmSync(path.join(dir, 'node_modules', '.package-lock.json'), { force: true });
  return path.join(dir, 'node_modules');
}

/**
 * What a board never loads: other platforms' prebuilt binaries, source maps,
 * type declarations, and onnxruntime-web's other builds.
 */
function prune(modules, nodeArch) {
  const before = treeBytes(modules);
  const keepOnly = (dir, keep) => {
    if (!existsSync(dir)) return;
    for (const name of readdirSync(dir)) if (!keep(name)) rmSync(path.join(dir, name), { recursive: true, force: true });
  };
  const ortBin = path.join(modules, 'onnxruntime-node', 'bin', 'napi-v6');
  keepOnly(ortBin, (name) => name === 'linux');
  keepOnly(path.join(ortBin, 'linux'), (name) => name === nodeArch);
  if (!existsSync(path.join(ortBin, 'linux', nodeArch, 'onnxruntime_binding.node'))) fail(`onnxruntime-node ships no linux/${nodeArch} binary`);
  const serialPrebuilds = path.join(modules, '@serialport', 'bindings-cpp', 'prebuilds');
  keepOnly(serialPrebuilds, (name) => name === `linux-${nodeArch}`);
  if (!existsSync(path.join(serialPrebuilds, `linux-${nodeArch}`))) fail(`@serialport/bindings-cpp ships no linux-${nodeArch} prebuild`);
  // Its JavaScript is bundled into dist/apiary.cjs; what is read by path is the plain SIMD WebAssembly build and its
  // loader (models/inference/onnxruntime-web-backend.ts), and the Node entry point that locates the package.
  keepOnly(path.join(modules, 'onnxruntime-web', 'dist'), (name) => /^(ort-wasm-simd-threaded\.(mjs|wasm)|ort\.node\.min\.(js|mjs))$/.test(name));
  walk(modules, (full, entry) => {
    if (entry.isFile() && /\.(map|d\.ts|d\.mts|d\.cts)$/.test(entry.name)) rmSync(full);
  });
  return { before, after: treeBytes(modules) };
}

/** The shipped models: each folder with a manifest (models/ also holds the training and inference sources). */
function copyModels(dest) {
  for (const name of readdirSync(path.join(root, 'models'))) {
    const dir = path.join(root, 'models', name);
    if (!existsSync(path.join(dir, 'manifest.json'))) continue;
    mkdirSync(path.join(dest, name), { recursive: true });
    for (const file of readdirSync(dir)) if (/\.(onnx|json)$/.test(file)) cpSync(path.join(dir, file), path.join(dest, name, file));
  }
}

/** Files 0644, directories and executables 0755, whatever the umask of the machine that built it. */
function normaliseModes(dir) {
  chmodSync(dir, 0o755);
  walk(dir, (full, entry) => {
    if (entry.isSymbolicLink()) return;
    if (entry.isDirectory()) chmodSync(full, 0o755);
    else chmodSync(full, (statSync(full).mode & 0o111) !== 0 ? 0o755 : 0o644);
  });
}

function md5sums(pkgRoot) {
  const lines = [];
  walk(pkgRoot, (full, entry) => {
    const rel = path.relative(pkgRoot, full);
    if (entry.isFile() && !rel.startsWith('DEBIAN')) lines.push(`${createHash('md5').update(readFileSync(full)).digest('hex')}  ${rel}`);
  });
  return lines.sort().join('\n') + '\n';
}

async function buildOne({ arch, version, engines, configVersion, packPayload, modules, stage, out, configYaml, compression }) {
  const nodeArch = ARCHES[arch];
  const pkgRoot = path.join(stage, `apiary_${version}_${arch}`);
  const app = path.join(pkgRoot, PREFIX);
  mkdirSync(app, { recursive: true });
  cpSync(path.join(root, 'package.json'), path.join(app, 'package.json'));
  // The bundle, and the compiled modules it starts as child processes (the inference probe); not the tests or source maps.
  cpSync(path.join(root, 'dist'), path.join(app, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.startsWith(path.join(root, 'dist', 'test')) && !src.startsWith(path.join(root, 'dist', 'packages')) });
  copyModels(path.join(app, 'models'));
  cpSync(path.join(root, 'devices', 'sim', 'data'), path.join(app, 'devices', 'sim', 'data'), { recursive: true });
  cpSync(modules, path.join(app, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  const pruned = prune(path.join(app, 'node_modules'), nodeArch);
  // What `apiary update sign` copies into a runtime release's signed manifest (runtime/extensions/runtime-updates/).
  writeFileSync(path.join(app, 'release-info.json'), `${JSON.stringify({ name: 'apiary', version, arch: nodeArch, node: engines.node, configVersion }, null, 2)}\n`);

  const packaging = path.join(root, 'packaging');
  mkdirSync(path.join(pkgRoot, 'usr', 'bin'), { recursive: true });
  cpSync(path.join(packaging, 'apiary.sh'), path.join(pkgRoot, 'usr', 'bin', 'apiary'));
  chmodSync(path.join(pkgRoot, 'usr', 'bin', 'apiary'), 0o755);
  // /usr/lib/systemd/system, not /lib: Debian 13 keeps packaged files out of the aliased /lib (DEP 17); systemd reads both.
  mkdirSync(path.join(pkgRoot, 'usr', 'lib', 'systemd', 'system'), { recursive: true });
  cpSync(path.join(packaging, 'apiary.service'), path.join(pkgRoot, 'usr', 'lib', 'systemd', 'system', 'apiary.service'));
  mkdirSync(path.join(pkgRoot, 'etc', 'apiary'), { recursive: true });
  writeFileSync(path.join(pkgRoot, 'etc', 'apiary', 'apiary.yaml'), configYaml);
  mkdirSync(path.join(pkgRoot, 'usr', 'share', 'doc', 'apiary'), { recursive: true });
  cpSync(path.join(packaging, 'copyright'), path.join(pkgRoot, 'usr', 'share', 'doc', 'apiary', 'copyright'));
  normaliseModes(pkgRoot);
  // The same app tree as a runtime payload, for `apiary update sign` and then `apiary update install` on a board.
  const payload = path.join(out, `apiary-runtime_${version}_${arch}.tar.gz`);
  await packPayload(app, payload, compression === 'gzip' ? 1 : 9);

  const debian = path.join(pkgRoot, 'DEBIAN');
  mkdirSync(debian);
  const installedKiB = Math.ceil(treeBytes(pkgRoot) / 1024);
  const control = readFileSync(path.join(packaging, 'debian', 'control'), 'utf8')
    .replaceAll('@VERSION@', version).replaceAll('@ARCH@', arch).replaceAll('@INSTALLED_SIZE@', String(installedKiB));
  writeFileSync(path.join(debian, 'control'), control);
  writeFileSync(path.join(debian, 'conffiles'), '/etc/apiary/apiary.yaml\n');
  writeFileSync(path.join(debian, 'md5sums'), md5sums(pkgRoot));
  for (const script of ['postinst', 'prerm', 'postrm']) {
    cpSync(path.join(packaging, 'debian', script), path.join(debian, script));
    chmodSync(path.join(debian, script), 0o755);
  }
  for (const file of ['control', 'conffiles', 'md5sums']) chmodSync(path.join(debian, file), 0o644);
  chmodSync(debian, 0o755);

  const deb = path.join(out, `apiary_${version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--build', '--root-owner-group', `-Z${compression}`, ...(compression === 'gzip' ? ['-z1'] : []), pkgRoot, deb], { stdio: ['ignore', 'ignore', 'inherit'] });
  rmSync(pkgRoot, { recursive: true, force: true });
  return { deb, bytes: statSync(deb).size, installedKiB, pruned, payload, payloadBytes: statSync(payload).size };
}

async function main() {
  const { arches, out, compression } = parseArgs(process.argv.slice(2));
  for (const file of ['apiary.mjs', 'apiary.cjs']) {
    if (!existsSync(path.join(root, 'dist', file))) fail(`dist/${file} is missing: run \`npm run build\` first (\`npm run package\` does)`);
  }
  try {
    execFileSync('dpkg-deb', ['--version'], { stdio: 'ignore' });
  } catch {
    fail('dpkg-deb is missing: apt-get install dpkg');
  }
  const { version, engines } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const { CONFIG_VERSION: configVersion } = await import(pathToFileURL(path.join(root, 'dist', 'runtime', 'config', 'migrations.js')).href);
  const { packPayload } = await import(pathToFileURL(path.join(root, 'dist', 'runtime', 'extensions', 'runtime-updates', 'release-file.js')).href);
  // The `apiary init` template, with the system data dir.
  const { DEFAULT_CONFIG_YAML } = await import(pathToFileURL(path.join(root, 'dist', 'runtime', 'config', 'default-config.js')).href);
  const configYaml = DEFAULT_CONFIG_YAML.replace(/^ {2}dataDir: \.\/\.apiary {10}#/m, '  dataDir: /var/lib/apiary    #');
  if (!configYaml.includes('dataDir: /var/lib/apiary')) fail('could not set node.dataDir in the config template (runtime/config/default-config.ts changed?)');

  mkdirSync(out, { recursive: true });
  const stage = mkdtempSync(path.join(os.tmpdir(), 'apiary-deb-'));
  try {
    const started = performance.now();
    const modules = installProductionTree(stage);
    for (const arch of arches) {
      const built = await buildOne({ arch, version, engines, configVersion, packPayload, modules, stage, out, configYaml, compression });
      const mib = (n) => `${(n / 1024 / 1024).toFixed(1)} MiB`;
      process.stdout.write(`${path.relative(process.cwd(), built.deb)}: ${mib(built.bytes)} (installed ${mib(built.installedKiB * 1024)}; node_modules ${mib(built.pruned.before)} -> ${mib(built.pruned.after)} after pruning)\n`);
      process.stdout.write(`${path.relative(process.cwd(), built.payload)}: ${mib(built.payloadBytes)} (the runtime payload: sign it with \`apiary update sign\`)\n`);
    }
    process.stdout.write(`packaged in ${Math.round((performance.now() - started) / 1000)} s\n`);
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

await main();

/**
 * `npm run package`'s script, building the amd64 package here (gzip: the same
 * contents as the released xz build, in a fraction of the time): what the
 * package holds, with which modes, what it declares, that its maintainer
 * scripts never reach the network, and that the packaged app runs.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_VERSION } from '../../runtime/config/migrations.js';
import { parse } from 'yaml';
import { parseConfig } from '../../runtime/config/load-config.js';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const version = (JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string }).version;

let dpkgMissing: string | undefined;
try {
  await run('dpkg-deb', ['--version']);
} catch {
  dpkgMissing = 'dpkg-deb is not installed (Debian package `dpkg`)';
  console.warn(`skipping the package checks: ${dpkgMissing}`);
}

interface Entry { mode: string; owner: string; size: number; path: string }

let out: string;
let deb: string;
let entries: Entry[];
let extracted: string;

describe.skipIf(dpkgMissing !== undefined)('the Debian package (amd64)', () => {
  beforeAll(async () => {
    out = await mkdtemp(path.join(os.tmpdir(), 'apiary-deb-test-'));
    await run(process.execPath, [path.join(root, 'scripts', 'package-deb.mjs'), '--arch', 'amd64', '--out', out, '--compression', 'gzip'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    deb = path.join(out, `apiary_${version}_amd64.deb`);
    // drwxr-xr-x root/root 0 2026-12-02 14:30 ./usr/lib/apiary/  (symlinks end with " -> target")
    entries = (await run('dpkg-deb', ['-c', deb], { maxBuffer: 64 * 1024 * 1024 })).stdout.split('\n').filter((l) => l !== '').map((line) => {
      const [mode = '', owner = '', size = '0', , , ...rest] = line.split(/\s+/);
      return { mode, owner, size: Number(size), path: rest.join(' ').replace(/ -> .*$/, '').replace(/^\./, '') };
    });
    extracted = path.join(out, 'root');
    await run('dpkg-deb', ['-x', deb, extracted]);
    await run('dpkg-deb', ['-e', deb, path.join(out, 'DEBIAN')]);
  }, 600_000);
  afterAll(async () => { if (out) await rm(out, { recursive: true, force: true }); });

  const entry = (p: string): Entry | undefined => entries.find((e) => e.path === p);
  const control = async (field?: string): Promise<string> => (await run('dpkg-deb', field ? ['-f', deb, field] : ['-I', deb])).stdout.trim();

  it('declares itself: name, version, architecture, Node.js from Debian 13, no network in its scripts', async () => {
    expect(await control('Package')).toBe('apiary');
    expect(await control('Version')).toBe(version);
    expect(await control('Architecture')).toBe('amd64');
    expect(await control('Depends')).toMatch(/^nodejs \(>= 20\.19\), adduser$/);
    expect(Number(await control('Installed-Size'))).toBeGreaterThan(10_000);
    expect((await readFile(path.join(out, 'DEBIAN', 'conffiles'), 'utf8')).trim().split('\n')).toEqual(['/etc/apiary/apiary.yaml']);
    for (const script of ['postinst', 'prerm', 'postrm']) {
      const text = await readFile(path.join(out, 'DEBIAN', script), 'utf8');
      expect(text.startsWith('#!/bin/sh\n'), script).toBe(true);
      expect(text, script).not.toMatch(/\b(curl|wget|npm|npx|git|pip|apt-get|apt)\b|https?:\/\//);
    }
    const postinst = await readFile(path.join(out, 'DEBIAN', 'postinst'), 'utf8');
    expect(postinst).toMatch(/adduser --system --group/);
    expect(postinst).toMatch(/install -d -o apiary -g apiary -m 0700 \/var\/lib\/apiary/);
    for (const group of ['gpio', 'i2c', 'spi', 'dialout', 'audio']) expect(postinst).toContain(group);
  });

  it('holds the app, its wrapper, the unit and the config, owned by root with the right modes', () => {
    expect(entry('/usr/bin/apiary')).toMatchObject({ mode: '-rwxr-xr-x', owner: 'root/root' });
    expect(entry('/usr/lib/systemd/system/apiary.service')).toMatchObject({ mode: '-rw-r--r--', owner: 'root/root' });
    expect(entry('/etc/apiary/apiary.yaml')).toMatchObject({ mode: '-rw-r--r--', owner: 'root/root' });
    for (const file of ['dist/apiary.mjs', 'dist/apiary.cjs', 'dist/models/inference/probe-child.js', 'package.json', 'models/hive-sound/model.onnx', 'models/hive-thermal/manifest.json', 'devices/sim/data/urban-beehive/hive-3690-2021.csv']) {
      expect(entry(`/usr/lib/apiary/${file}`), file).toBeDefined();
    }
    expect(entries.every((e) => e.owner === 'root/root')).toBe(true);
    expect(entries.filter((e) => e.mode.startsWith('d') && e.mode !== 'drwxr-xr-x').map((e) => e.path)).toEqual([]);
    // Writable by root alone (symlinks show lrwxrwxrwx, which means nothing).
    expect(entries.filter((e) => !e.mode.startsWith('l') && (e.mode[5] === 'w' || e.mode[8] === 'w')).map((e) => e.path)).toEqual([]);
  });

  it('ships production dependencies only, with only this architecture\'s prebuilt binaries and nothing compiled', () => {
    const modules = entries.filter((e) => e.path.startsWith('/usr/lib/apiary/node_modules/'));
    const has = (name: string) => modules.some((e) => e.path.startsWith(`/usr/lib/apiary/node_modules/${name}/`));
    for (const dep of ['onnxruntime-node', 'onnxruntime-web', 'serialport', 'yaml', 'pino-pretty']) expect(has(dep), dep).toBe(true);
    for (const dev of ['vitest', 'typescript', 'esbuild', 'eslint', 'fast-check']) expect(has(dev), dev).toBe(false);
    const natives = modules.filter((e) => e.path.endsWith('.node')).map((e) => e.path);
    expect(natives.some((p) => p.includes('onnxruntime-node/bin/napi-v6/linux/x64/'))).toBe(true);
    expect(natives.some((p) => p.includes('bindings-cpp/prebuilds/linux-x64/'))).toBe(true);
    // Nothing for another platform, nothing built on this machine (node-gyp's build/ folders).
    expect(natives.filter((p) => !p.includes('/linux/x64/') && !p.includes('/linux-x64/'))).toEqual([]);
    expect(modules.filter((e) => /\/build\/(Release|Debug)\//.test(e.path)).map((e) => e.path)).toEqual([]);
    expect(entries.filter((e) => e.path.endsWith('.map') || e.path.startsWith('/usr/lib/apiary/dist/test/')).map((e) => e.path)).toEqual([]);
  });

  it('ships the Firmata path without node-gyp: serialport 13 only, no serialport 8 binding, every native binary prebuilt for amd64', async () => {
    const modules = entries.filter((e) => e.path.startsWith('/usr/lib/apiary/node_modules/'));
    expect(modules.filter((e) => /\/node_modules\/@serialport\/bindings\//.test(e.path)).map((e) => e.path)).toEqual([]);
    // Every copy of serialport, hoisted or nested (johnny-five's, firmata's), is 13.
    const serialports = modules.filter((e) => /\/node_modules\/serialport\/package\.json$/.test(e.path)).map((e) => e.path);
    expect(serialports).toEqual(['/usr/lib/apiary/node_modules/serialport/package.json']);
    for (const file of serialports) {
      expect((JSON.parse(await readFile(path.join(extracted, file), 'utf8')) as { version: string }).version, file).toMatch(/^13\./);
    }
    for (const dep of ['firmata-io', 'johnny-five', '@serialport/bindings-cpp']) expect(modules.some((e) => e.path.startsWith(`/usr/lib/apiary/node_modules/${dep}/`)), dep).toBe(true);
    // Native code only where it ships prebuilt for linux-x64; a binding.gyp only beside such prebuilds (node-gyp-build picks them).
    const natives = modules.filter((e) => e.path.endsWith('.node')).map((e) => e.path);
    expect(natives.filter((p) => !/\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/[^/]+\.node$|\/@serialport\/bindings-cpp\/prebuilds\/linux-x64\/[^/]+\.node$/.test(p))).toEqual([]);
    const gyps = modules.filter((e) => e.path.endsWith('/binding.gyp')).map((e) => path.dirname(e.path));
    expect(gyps.filter((dir) => !natives.some((p) => p.startsWith(`${dir}/prebuilds/linux-x64/`)))).toEqual([]);
  });

  it('its conffile is the `apiary init` template with data in /var/lib/apiary, and it validates', async () => {
    const raw: unknown = parse(await readFile(path.join(extracted, 'etc', 'apiary', 'apiary.yaml'), 'utf8'));
    const config = parseConfig(raw, '/etc/apiary/apiary.yaml');
    expect(config.node.dataDir).toBe('/var/lib/apiary');
    expect({ ...config, node: { ...config.node, dataDir: './.apiary' } }).toEqual(parseConfig({}));
  });

  it('the wrapper searches the boot partition, then /etc, and runs the packaged launcher', async () => {
    const wrapper = await readFile(path.join(extracted, 'usr', 'bin', 'apiary'), 'utf8');
    expect(wrapper).toContain('APIARY_CONFIG_PATH="${APIARY_CONFIG_PATH-/boot/firmware/apiary.yaml:/etc/apiary/apiary.yaml}"');
    expect(wrapper).toContain('APIARY_DATA_DIR="${APIARY_DATA_DIR-/var/lib/apiary}"');
    expect(wrapper).toMatch(/^exec \/usr\/bin\/node \/usr\/lib\/apiary\/dist\/launcher\.mjs "\$@"$/m);
  });

  it('writes the runtime payload beside it: the same app tree, with the facts a release manifest needs', async () => {
    const app = path.join(extracted, 'usr', 'lib', 'apiary');
    expect(JSON.parse(await readFile(path.join(app, 'release-info.json'), 'utf8'))).toEqual({ name: 'apiary', version, arch: 'x64', node: '>=20.19', configVersion: CONFIG_VERSION });
    const listed = (await run('tar', ['-tzf', path.join(out, `apiary-runtime_${version}_amd64.tar.gz`)], { maxBuffer: 64 * 1024 * 1024 })).stdout.split('\n').filter((l) => l !== '' && !l.endsWith('/'));
    const packagedFiles = entries.filter((e) => e.path.startsWith('/usr/lib/apiary/') && !e.mode.startsWith('d')).map((e) => e.path.slice('/usr/lib/apiary/'.length));
    expect(listed.sort()).toEqual(packagedFiles.sort());
    expect(listed).toContain('dist/launcher.mjs');
  });

  it('the packaged app runs from the package alone: both inference backends and the shipped models pass `apiary doctor`', async () => {
    const dataDir = path.join(out, 'data');
    const { stdout } = await run(process.execPath, [path.join(extracted, 'usr', 'lib', 'apiary', 'dist', 'apiary.mjs'), 'doctor', '--data-dir', dataDir], { cwd: out, env: { ...process.env, APIARY_CONFIG_PATH: '' } });
    expect(stdout).toMatch(/onnxruntime-node\s+works/);
    expect(stdout).toMatch(/onnxruntime-web\s+works/);
    expect(stdout).toMatch(/hive-sound\s+\S+\s+sha256 \w+\s+hash ok/);
  }, 120_000);
});

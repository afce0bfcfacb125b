/**
 * Runtime updates with rollback, end to end on the packaged app: the amd64
 * .deb is built and unpacked, its payload is turned into signed releases
 * (a good one, and ones that crash, hang their event loop, or stop reading),
 * each is installed with `apiary update install` and run by the launcher
 * under a stand-in for systemd (test/support/fake-systemd.ts: readiness,
 * watchdog, Restart=on-failure), on a fake sysfs board with a DS18B20.
 * A good release is kept; every bad one, and a good one whose power is cut
 * in its health window, is rolled back, and the outcome is in the node's feed.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { packPayload, signRelease } from '../../runtime/extensions/runtime-updates/release-file.js';
import { readState, type RuntimeState } from '../../runtime/extensions/runtime-updates/release-slots.js';
import { loadOrCreateKeyFile } from '../../runtime/identity/identity.js';
import { FakeBoard } from '../support/fake-board.js';
import { FakeSystemd } from '../support/fake-systemd.js';

const run = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..', '..');
const { version: packaged } = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
const dpkgMissing = await run('dpkg-deb', ['--version']).then(() => undefined, () => 'dpkg-deb is not installed');
const PROBE = '28-0316a2795bff';
const WINDOW = '8s';

let work: string;
let factory: string;
let launcher: string;
let template: string;
let board: FakeBoard;
const releases = new Map<string, string>();

/** A copy of the packaged app as version `version`, changed by `fault`, signed into a release file. */
async function makeRelease(name: string, version: string, fault: (tree: string) => Promise<void> = () => Promise.resolve()): Promise<string> {
  const tree = path.join(work, `tree-${name}`);
  await run('cp', ['-al', template, tree]); // hard links: 90 MB in an instant; files that change are replaced, never written through
  const rewrite = async (file: string, change: (text: string) => string) => {
    const full = path.join(tree, file);
    const text = await readFile(full, 'utf8');
    await unlink(full);
    await writeFile(full, change(text));
  };
  for (const file of ['package.json', 'release-info.json']) await rewrite(file, (t) => t.replace(`"version": "${packaged}"`, `"version": "${version}"`));
  await fault(tree);
  const payload = path.join(work, `payload-${name}.tar.gz`);
  await packPayload(tree, payload, 1);
  await rm(tree, { recursive: true, force: true });
  const file = path.join(work, `apiary_${name}.release`);
  await signRelease({ payload, signer: (await loadOrCreateKeyFile(path.join(work, 'owner.json'))).identity, out: file, notes: name });
  await rm(payload);
  return file;
}

/** Changes the release's bundle (the patch must apply: a fault that did not go in would prove nothing). */
async function patchBundle(tree: string, change: (text: string) => string): Promise<void> {
  const file = path.join(tree, 'dist', 'apiary.cjs');
  const before = await readFile(file, 'utf8');
  const after = change(before);
  if (after === before) throw new Error('the fault could not be put into dist/apiary.cjs: the text it patches has changed');
  await unlink(file);
  await writeFile(file, after);
}

interface Case { data: string; config: string; service?: FakeSystemd }
let current: Case | undefined;

async function newCase(name: string, extra: { port?: number; neighbours?: string } = {}): Promise<Case> {
  const data = path.join(work, `data-${name}`);
  await mkdir(data);
  await cp(path.join(work, 'owner.json'), path.join(data, 'owner.json')); // this node's owner signed the releases
  const config = path.join(work, `apiary-${name}.yaml`);
  await writeFile(config, [
    'app: sensor-node',
    `node: { dataDir: ${data} }`,
    `broker: { host: 127.0.0.1, port: ${extra.port ?? 0} }`,
    ...(extra.neighbours ? [`mesh: { neighbours: [ ${extra.neighbours} ] }`] : []),
    'log: { level: info }',
    `updates: { healthWindow: ${WINDOW}, health: { minReadings: 3 } }`,
    `device: { kind: linux, linux: { root: ${board.root}, sensors: [ { driver: ds18b20, id: ${PROBE}, interval: 200ms } ] } }`,
    '',
  ].join('\n'));
  current = { data, config };
  return current;
}

/** `apiary ...` as /usr/bin/apiary runs it: the packaged launcher, with the data dir the wrapper sets. */
function apiary(c: Case, args: readonly string[]) {
  return run(process.execPath, [launcher, ...args, '--config', c.config], { env: { ...process.env, APIARY_DATA_DIR: c.data }, maxBuffer: 16 * 1024 * 1024 });
}

function startService(c: Case): FakeSystemd {
  c.service = new FakeSystemd({
    command: process.execPath, args: [launcher, 'start', '--config', c.config], env: { APIARY_DATA_DIR: c.data },
    dir: path.join(c.data, '..', `systemd-${path.basename(c.data)}`), watchdogMs: 3_000, startTimeoutMs: 60_000, restartMs: 300,
  });
  return c.service;
}

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const state = (c: Case): RuntimeState | undefined => readState(path.join(c.data, 'runtime'));
const lastOutcome = (c: Case) => state(c)?.outcomes.at(-1);

/** The runtime-update entries in the feeds the node holds (its own, with `origin`). */
async function feedOutcomes(c: Case, origin?: string): Promise<{ version: string; outcome: string; reason: string }[]> {
  const { stdout } = await apiary(c, ['feed', 'export', ...(origin ? ['--origin', origin] : [])]);
  // Entries as stored: the body is its canonical JSON text (docs/formats.md).
  return stdout.split('\n').filter((l) => l.includes('"type":"runtime-update"')).map((l) => JSON.parse((JSON.parse(l) as { body: string }).body) as { version: string; outcome: string; reason: string });
}

describe.skipIf(dpkgMissing !== undefined)('runtime updates on the packaged app', () => {
  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'apiary-update-test-'));
    await run(process.execPath, [path.join(root, 'scripts', 'package-deb.mjs'), '--arch', 'amd64', '--out', work, '--compression', 'gzip'], { cwd: root, maxBuffer: 16 * 1024 * 1024 });
    const extracted = path.join(work, 'root');
    await run('dpkg-deb', ['-x', path.join(work, `apiary_${packaged}_amd64.deb`), extracted]);
    factory = path.join(extracted, 'usr', 'lib', 'apiary');
    launcher = path.join(factory, 'dist', 'launcher.mjs');
    template = path.join(work, 'template');
    await mkdir(template);
    await run('tar', ['-xzf', path.join(work, `apiary-runtime_${packaged}_amd64.tar.gz`), '-C', template]);
    await loadOrCreateKeyFile(path.join(work, 'owner.json'));
    board = await FakeBoard.create();
    await board.ds18b20(PROBE, 34.5);
    releases.set('good', await makeRelease('good', '0.2.0'));
    // A bug at start-up: the process dies before the node is up.
    releases.set('crash', await makeRelease('crash', '0.2.1', (tree) => patchBundle(tree, (t) => `${t}\nif (process.argv[2] === 'start') throw new Error('release 0.2.1 is broken');\n`)));
    // The node comes up, then its event loop spins forever: only the watchdog can tell.
    releases.set('hang', await makeRelease('hang', '0.2.2', (tree) => patchBundle(tree, (t) => `${t}\nif (process.argv[2] === 'start') setTimeout(() => { for (;;) { /* hung */ } }, 4000);\n`)));
    // A driver regression: every DS18B20 read is refused as a CRC error, so the node runs but reads nothing.
    releases.set('deaf', await makeRelease('deaf', '0.2.3', (tree) => patchBundle(tree, (t) => t.replace('if(crcMatch[3]!=="YES")', 'if(crcMatch[3]!=="OK")'))));
    releases.set('old', await makeRelease('old', '0.0.9'));
    // A release whose config format is version 2: one migration (a no-op here), and it says so in release-info.json.
    releases.set('v2config', await makeRelease('v2config', '0.3.0', async (tree) => {
      await patchBundle(tree, (t) => t.replace('MIGRATIONS=[];', 'MIGRATIONS=[{from:1,to:2,describe:"nothing moved (a test migration)",migrate:(raw)=>raw}];'));
      const info = path.join(tree, 'release-info.json');
      const text = await readFile(info, 'utf8');
      await unlink(info);
      await writeFile(info, text.replace('"configVersion": 1', '"configVersion": 2'));
    }));
  }, 600_000);

  afterEach(async () => {
    await current?.service?.stop();
    current = undefined;
  }, 30_000);

  afterAll(async () => {
    await board?.remove();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('keeps a good release once it is healthy through its window, says so in the feed, and refuses a downgrade unless forced', async () => {
    const c = await newCase('good');
    const { stdout } = await apiary(c, ['update', 'install', releases.get('good') ?? '']);
    expect(stdout).toMatch(/installed Apiary 0\.2\.0 in slot a/);
    expect(state(c)?.trial).toMatchObject({ version: '0.2.0', boots: 0, from: { slot: 'factory', version: packaged } });
    const service = startService(c);
    await service.start();
    await service.waitUntil(() => lastOutcome(c)?.reported === true, 'the update is settled');
    expect(lastOutcome(c)).toMatchObject({ version: '0.2.0', outcome: 'committed' });
    expect(lastOutcome(c)?.reason).toMatch(/^healthy for 8 s: started, \d+ readings/);
    expect(state(c)).toMatchObject({ current: { slot: 'a', version: '0.2.0' }, previous: { slot: 'factory' }, trial: null });
    expect(service.runs).toHaveLength(1);
    expect(service.current?.output).toContain('release 0.2.0 starts on trial');
    // The running node is 0.2.0, and says so through the command registry.
    const status = JSON.parse((await apiary(c, ['update', 'status', '--json'])).stdout) as { updates: { release: { version: string; slot: string } } };
    expect(status.updates.release).toEqual({ version: '0.2.0', slot: 'a' });
    await service.stop();
    expect(await feedOutcomes(c)).toEqual([expect.objectContaining({ version: '0.2.0', outcome: 'committed' })]);

    const refused = await apiary(c, ['update', 'install', releases.get('old') ?? '']).then(() => undefined, (err: { stderr: string; code: number }) => err);
    expect(refused?.code).toBe(1);
    expect(refused?.stderr).toMatch(/APIARY_RELEASE_DOWNGRADE: .*0\.0\.9 is older than the running 0\.2\.0/);
    const forced = await apiary(c, ['update', 'install', releases.get('old') ?? '', '--force']);
    expect(forced.stdout).toMatch(/installed Apiary 0\.0\.9 in slot b/);
  }, 180_000);

  it.each([
    ['crash', '0.2.1', /stopped before it was confirmed healthy/],
    ['hang', '0.2.2', /stopped before it was confirmed healthy/],
    ['deaf', '0.2.3', /no readings in 8 s/],
  ] as const)('rolls back a release that %s (%s) to the packaged one, and reports it in the feed', async (name, version, reason) => {
    const c = await newCase(name);
    await apiary(c, ['update', 'install', releases.get(name) ?? '']);
    const service = startService(c);
    await service.start();
    await service.waitUntil(() => lastOutcome(c)?.reported === true && service.current?.output.includes('is running') === true, 'rolled back and running again', 120_000);
    expect(lastOutcome(c)).toMatchObject({ version, from: packaged, outcome: 'rolled-back' });
    expect(lastOutcome(c)?.reason).toMatch(reason);
    expect(state(c)).toMatchObject({ current: { slot: 'factory', version: packaged }, trial: null });
    const [first, second] = service.runs;
    if (name === 'crash') expect(first?.exit?.code).toBe(1);
    if (name === 'hang') expect(first?.killedBy).toBe('watchdog');
    if (name === 'deaf') expect(first?.exit?.code).toBe(75); // it judged itself and asked for the release before
    expect(second?.output).not.toContain('starts on trial');
    // A release that never judged itself is rolled back by the launcher at the next start; one that did, before it exits.
    if (name !== 'deaf') expect(second?.output).toContain(`apiary launcher: release ${version} is rolled back to ${packaged}`);
    await service.stop();
    expect(await feedOutcomes(c)).toEqual([expect.objectContaining({ version, outcome: 'rolled-back' })]);
  }, 180_000);

  it('spreads a kept release over the mesh: a neighbour of the same owner fetches it in chunks, installs it and keeps it after its trial', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const idOf = async (c: Case) => JSON.parse((await apiary(c, ['id', '--json'])).stdout) as { nodeId: string; publicKey: string };
    const a = await newCase('mesh-a', { port: portA });
    const b = await newCase('mesh-b', { port: portB });
    const [idA, idB] = [await idOf(a), await idOf(b)];
    const neighbour = (port: number, id: { nodeId: string; publicKey: string }) => `{ url: "mqtt://127.0.0.1:${port}", nodeId: ${id.nodeId}, publicKey: ${id.publicKey} }`;
    const link = async (c: Case, port: number, id: { nodeId: string; publicKey: string }) => writeFile(c.config, (await readFile(c.config, 'utf8')).replace(/^app: /m, `mesh: { neighbours: [ ${neighbour(port, id)} ] }\napp: `));
    await link(a, portB, idB);
    await link(b, portA, idA);
    await apiary(a, ['update', 'install', releases.get('good') ?? '']);
    const serviceA = startService(a);
    const serviceB = startService(b);
    try {
      // B first, on the packaged release: A's trial needs a neighbour to link within its window.
      await serviceB.start();
      await serviceB.waitUntil(() => serviceB.current?.ready === true, 'B is up');
      await serviceA.start();
      await serviceA.waitUntil(() => lastOutcome(a)?.outcome === 'committed' && lastOutcome(a)?.reported === true, 'A keeps 0.2.0', 120_000);
      expect(state(b)?.current.slot ?? 'factory').toBe('factory');
      const published = JSON.parse((await apiary(a, ['update', 'publish', '--json'])).stdout) as { version: string; chunks: number };
      expect(published).toMatchObject({ version: '0.2.0' });
      expect(published.chunks).toBeGreaterThan(1);
      await serviceB.waitUntil(() => lastOutcome(b)?.outcome === 'committed' && lastOutcome(b)?.reported === true, 'B fetched, installed and kept 0.2.0', 240_000);
      expect(state(b)).toMatchObject({ current: { slot: 'a', version: '0.2.0' }, trial: null });
      expect(serviceB.runs[0]?.exit?.code).toBe(75); // it restarted itself into the trial
      expect(serviceB.runs[1]?.output).toContain('release 0.2.0 starts on trial');
      expect(lastOutcome(b)?.reason).toContain('a neighbour linked');
    } finally {
      await serviceA.stop();
      await serviceB.stop();
    }
    // B's own entry, and A's, which reached B over the mesh.
    expect(await feedOutcomes(b, idB.nodeId)).toEqual([expect.objectContaining({ version: '0.2.0', outcome: 'committed' })]);
    expect(await feedOutcomes(b, idA.nodeId)).toEqual([expect.objectContaining({ version: '0.2.0', outcome: 'committed' })]);
  }, 420_000);

  it('carries the config forward: a release with a newer config format migrates it in memory and leaves the file; an older release cannot read it', async () => {
    const c = await newCase('config');
    const before = await readFile(c.config, 'utf8');
    await apiary(c, ['update', 'install', releases.get('v2config') ?? '']);
    const service = startService(c);
    await service.start();
    await service.waitUntil(() => lastOutcome(c)?.reported === true, 'the update is settled');
    expect(lastOutcome(c)).toMatchObject({ version: '0.3.0', outcome: 'committed' });
    expect(service.current?.output).toContain('config migrated from version 1 to 2: nothing moved (a test migration)');
    await service.stop();
    expect(await readFile(c.config, 'utf8')).toBe(before); // a rollback would still read it
    // Once the file is in the new format (as `apiary config migrate --write` leaves it), a release that reads only version 1 is refused, forced or not.
    await writeFile(c.config, `version: 2\n${before}`);
    const refused = await apiary(c, ['update', 'install', releases.get('old') ?? '', '--force']).then(() => undefined, (err: { stderr: string }) => err);
    expect(refused?.stderr).toMatch(/APIARY_RELEASE_INCOMPATIBLE: .*reads config format up to version 1, but the config in use is version 2/);
  }, 180_000);

  it('rolls back a good release whose power is cut in its health window', async () => {
    const c = await newCase('power-cut');
    await apiary(c, ['update', 'install', releases.get('good') ?? '']);
    const service = startService(c);
    await service.start();
    await service.waitUntil(() => service.current?.ready === true, 'the trial is up');
    expect(state(c)?.trial).toMatchObject({ version: '0.2.0', boots: 1 });
    service.current?.child.kill('SIGKILL'); // no stop, no flush: as a power cut leaves it
    await service.waitUntil(() => lastOutcome(c)?.reported === true, 'rolled back after the cut', 120_000);
    expect(lastOutcome(c)).toMatchObject({ version: '0.2.0', outcome: 'rolled-back' });
    expect(lastOutcome(c)?.reason).toContain('power cut');
    expect(service.runs).toHaveLength(2);
    expect(existsSync(path.join(c.data, 'runtime', 'state.json.tmp'))).toBe(false);
  }, 180_000);
});

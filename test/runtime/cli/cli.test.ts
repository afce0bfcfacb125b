/** The `apiary` command as a user runs it: the compiled CLI in a child process. */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { connectAsync } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../../runtime/config/load-config.js';
import { readIdentity } from '../../../runtime/identity/identity.js';
import { decodeCertificate } from '../../../runtime/mesh/certificate.js';
import { loadMeshIdentity } from '../../../runtime/mesh/mesh-identity.js';
import { apiary } from '../../support/cli.js';
import { startNodeProcess } from '../../support/node-process.js';

describe('apiary CLI', () => {
  let dir: string;
  beforeAll(async () => { dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-cli-')); });
  afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

  it('has --help on every command', async () => {
    for (const command of [[], ['start'], ['init'], ['id'], ['status'], ['sim', 'swarm'], ['owner', 'sign'], ['demo'], ['mcp']]) {
      const { code, stdout } = await apiary([...command, '--help'], dir);
      expect(code).toBe(0);
      expect(stdout).toContain('Usage: apiary');
    }
  });

  it('prints its version, and suggests the command a mistyped word begins (stat is status, not start)', async () => {
    const version = await apiary(['--version'], dir);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe((JSON.parse(await readFile(path.join(import.meta.dirname, '../../../package.json'), 'utf8')) as { version: string }).version);
    const stat = await apiary(['stat'], dir);
    expect(stat.code).toBe(1);
    expect(stat.stderr).toContain("unknown command 'stat' (did you mean status?)");
    expect(stat.stderr).toContain('commands: start, init, id, status');
  });

  it('owner init warns when the new owner key lands inside a git work tree, and not elsewhere', async () => {
    const repo = path.join(dir, 'a-repo');
    await mkdir(path.join(repo, '.git'), { recursive: true });
    const inRepo = await apiary(['owner', 'init', '--key-file', 'a-repo/keys/owner.json'], dir);
    expect(inRepo.code).toBe(0);
    expect(inRepo.stderr).toContain(`is inside the git work tree ${repo}`);
    expect(inRepo.stderr).toContain(`list keys/owner.json in ${path.join(repo, '.gitignore')}`);
    const outside = await apiary(['owner', 'init', '--key-file', 'elsewhere/owner.json'], dir);
    expect(outside.code).toBe(0);
    expect(outside.stderr).toBe('');
  });

  it('init writes a commented config that validates, and will not overwrite it', async () => {
    expect((await apiary(['init'], dir)).code).toBe(0);
    const text = await readFile(path.join(dir, 'apiary.yaml'), 'utf8');
    expect(text).toContain('# Apiary node configuration');
    expect(parseConfig(parse(text)).device.kind).toBe('simulated-beehive');
    const again = await apiary(['init'], dir);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('--force');
  });

  it('id prints a stable node id and public key', async () => {
    const first = await apiary(['id', '--json', '--data-dir', 'data'], dir);
    const second = await apiary(['id', '--json', '--data-dir', 'data'], dir);
    const id = JSON.parse(first.stdout) as { nodeId: string; publicKey: string };
    expect(id.nodeId).toMatch(/^[a-z2-7]{12}$/);
    expect(JSON.parse(second.stdout)).toEqual(id);
  });

  it('owner sign makes a certificate for a board that holds no owner key, and the board accepts it', async () => {
    const missing = await apiary(['owner', 'show', '--key-file', 'laptop/owner.json'], dir);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('APIARY_OWNER_KEY_MISSING');
    await mkdir(path.join(dir, 'laptop'), { recursive: true });
    const made = JSON.parse((await apiary(['owner', 'init', '--json', '--key-file', 'laptop/owner.json'], dir)).stdout) as { ownerKey: string; created: boolean };
    expect(made.created).toBe(true);
    expect(JSON.parse((await apiary(['owner', 'show', '--json', '--key-file', 'laptop/owner.json'], dir)).stdout)).toMatchObject({ ownerKey: made.ownerKey, created: false });
    // Without --owner (and no owner key on the board) there is no self-signature to sign from.
    await writeFile(path.join(dir, 'unsigned-id.json'), (await apiary(['id', '--json', '--data-dir', 'board'], dir)).stdout);
    const unsigned = await apiary(['owner', 'sign', '--key-file', 'laptop/owner.json', '--from', 'unsigned-id.json', '--name', 'x'], dir);
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain('has no self-signature');
    const board = await apiary(['id', '--json', '--data-dir', 'board', '--owner', made.ownerKey], dir);
    await writeFile(path.join(dir, 'board-id.json'), board.stdout);
    const signed = await apiary(['owner', 'sign', '--key-file', 'laptop/owner.json', '--from', 'board-id.json', '--name', 'Hive by the lime tree', '--out', 'board.cert.json'], dir);
    expect(signed.code).toBe(0);
    const boardId = JSON.parse(board.stdout) as { nodeId: string; publicKey: string; boxKey: string };
    expect(signed.stdout).toContain(`signed node ${boardId.nodeId}`);
    const cert = decodeCertificate(JSON.parse(await readFile(path.join(dir, 'board.cert.json'), 'utf8')));
    expect(cert).toMatchObject({ node: boardId.publicKey, box: boardId.boxKey, owner: made.ownerKey, name: 'Hive by the lime tree' });
    // The board starts its mesh identity from the certificate alone.
    const node = await readIdentity(path.join(dir, 'board'));
    if (!node) throw new Error('no board identity');
    const identity = await loadMeshIdentity({ dataDir: path.join(dir, 'board'), node, name: 'x', ownerKeyFile: path.join(dir, 'board', 'owner.json'), certificateFile: path.join(dir, 'board.cert.json'), now: () => Date.now() });
    expect(identity.certificate).toEqual(cert);
    expect(existsSync(path.join(dir, 'board', 'owner.json'))).toBe(false);
    // A certificate for another board is refused, with the command that makes the right one.
    const other = await apiary(['id', '--json', '--data-dir', 'other'], dir);
    const otherNode = await readIdentity(path.join(dir, 'other'));
    if (!otherNode) throw new Error('no other identity');
    await expect(loadMeshIdentity({ dataDir: path.join(dir, 'other'), node: otherNode, name: 'x', ownerKeyFile: 'unused', certificateFile: path.join(dir, 'board.cert.json'), now: () => Date.now() }))
      .rejects.toThrow(/not this node/);
    expect(other.code).toBe(0);
    // The board's keys changed after it self-signed (another box key slipped in): refused.
    await writeFile(path.join(dir, 'tampered-id.json'), JSON.stringify({ ...JSON.parse(board.stdout) as object, boxKey: (JSON.parse(other.stdout) as { boxKey: string }).boxKey }));
    const bad = await apiary(['owner', 'sign', '--key-file', 'laptop/owner.json', '--from', 'tampered-id.json', '--name', 'x'], dir);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('the self-signature does not verify');
    // Self-signed for another owner: this owner key cannot certify it.
    await writeFile(path.join(dir, 'for-other-owner.json'), (await apiary(['id', '--json', '--data-dir', 'board', '--owner', boardId.publicKey], dir)).stdout);
    const foreign = await apiary(['owner', 'sign', '--key-file', 'laptop/owner.json', '--from', 'for-other-owner.json', '--name', 'x'], dir);
    expect(foreign.code).toBe(1);
    expect(foreign.stderr).toContain('not for this owner key');
  });

  it('refuses to start on a bad config, naming the field, the value and the fix (exit 78)', async () => {
    await writeFile(path.join(dir, 'bad.yaml'), 'device:\n  sensors:\n    weight: { interval: 5 }\n');
    const { code, stderr } = await apiary(['start', '--config', 'bad.yaml'], dir);
    expect(code).toBe(78);
    expect(stderr).toContain('APIARY_CONFIG_INVALID');
    expect(stderr).toContain('field "device.sensors.weight.interval": got 5');
    expect(stderr).toContain('fix:');
  });

  it('status and sim swarm talk to a running node; status says clearly when none runs', async () => {
    const none = await apiary(['status', '--port', '1', '--timeout', '500', '--data-dir', 'data'], dir);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('APIARY_NODE_NOT_RUNNING');
    const node = await startNodeProcess(['--port', '0', '--data-dir', path.join(dir, 'data'), '--speed', '60']);
    try {
      // The banner names the flags that find this node again.
      expect(node.output()).toContain(`apiary status --data-dir ${path.join(dir, 'data')} --port ${node.port}`);
      // Wait until the node has published a temperature, so status has one to show.
      const watcher = await connectAsync(`mqtt://127.0.0.1:${node.port}`);
      await new Promise<void>((resolve) => {
        watcher.on('message', () => resolve());
        void watcher.subscribeAsync('apiary/+/readings/temperature');
      });
      await watcher.endAsync();
      const swarm = await apiary(['sim', 'swarm', '--port', String(node.port), '--data-dir', 'data'], dir);
      expect(swarm.stdout).toMatch(/pre-swarm from .* swarming from/);
      const status = await apiary(['status', '--port', String(node.port), '--data-dir', 'data'], dir);
      expect(status.code).toBe(0);
      expect(status.stdout).toContain('Simulated colony sound: pre-swarm');
      expect(status.stdout).toContain('Last readings:');
      expect(status.stdout).toMatch(/temperature\s+[\d.]+ °C/);
      expect(status.stdout).toMatch(/budgets: other feeds .+ of .+, busiest owner \d+ of 64 origins, shared document \d+ of 4096 keys and .+; \d+ refused/);
      const set = await apiary(['shared', 'set', 'thresholds', 'swarming', '0.75', '--port', String(node.port), '--data-dir', 'data'], dir);
      expect(set.stdout).toContain('thresholds.swarming = 0.75');
      const got = JSON.parse((await apiary(['shared', 'get', 'thresholds', '--port', String(node.port), '--data-dir', 'data'], dir)).stdout) as Record<string, unknown>;
      expect(got).toEqual({ swarming: 0.75 });
      const members = JSON.parse((await apiary(['shared', 'get', 'members', '--port', String(node.port), '--data-dir', 'data'], dir)).stdout) as Record<string, { name: string }>;
      expect(Object.values(members).map((m) => m.name)).toEqual(['Apiary beehive']);
      const refused = await apiary(['shared', 'set', 'members', 'x', '1', '--port', String(node.port), '--data-dir', 'data'], dir);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain('not "members"');
    } finally {
      node.child.kill('SIGTERM');
      expect((await node.exited).code).toBe(0);
    }
  });
});

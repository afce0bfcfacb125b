/**
 * A stop (SIGTERM, Ctrl-C, stop()) while the node is still starting: start
 * gives up at its next phase, nothing is closed under a phase still running,
 * "stopped" is logged, no error lines, exit code 0, and the next start is a
 * clean one (no recovery warning, no fork).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiaryNode } from '../../../runtime/core/apiary-node.js';
import { createNode } from '../../../runtime/apps/index.js';
import { requestNode } from '../../../runtime/cli/node-request.js';
import { loadConfig } from '../../../runtime/config/load-config.js';
import { spawnNodeProcess, startNodeProcess } from '../../support/node-process.js';

const CONFIG = `
device:
  simulation: { speed: 600 }
log: { level: debug }
`;

/** Every phase start-up logs (and where a stop takes effect), in order: the kernel's, and each extension's. */
const EXTENSIONS = ['beehive', 'recorder', 'rules', 'model-updates', 'decision-audit', 'home-assistant', 'mqtt-commands'];
const PHASES = [
  'begin', 'data dir locked, ports free', 'identity and storage', 'mesh created', 'broker listening', 'broker and bus',
  ...EXTENSIONS.map((name) => `extension ${name}`), 'extensions', 'mesh started', 'device open', 'models ready', 'started',
];

interface LogLine { level: number; msg: string; err?: string }
const lines = (output: string): LogLine[] => output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);
const problems = (output: string) => lines(output).filter((l) => l.level >= 50 || /APIARY_STORAGE_CLOSED|did not shut down cleanly|pipeline step failed/.test(`${l.msg} ${l.err ?? ''}`));

describe('stop during start', () => {
  let dir: string;
  let config: string;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'apiary-stop-start-'));
    config = path.join(dir, 'apiary.yaml');
    await writeFile(config, CONFIG);
  });
  afterAll(async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  });

  it('a SIGTERM at every phase of start-up (and at delays after its first) exits 0, logs "stopped", and leaves a clean data dir', async () => {
    const dataDir = path.join(dir, 'child');
    const args = ['--config', config, '--data-dir', dataDir, '--port', '0'];
    const triggers: { phase: string; delayMs: number }[] = [
      ...PHASES.map((phase) => ({ phase, delayMs: 0 })),
      ...[5, 30, 80, 200, 400].map((delayMs) => ({ phase: 'begin', delayMs })),
    ];
    for (const { phase, delayMs } of triggers) {
      const node = spawnNodeProcess(args);
      children.push(node.child);
      await node.waitFor(new RegExp(`"msg":"start-up: ${phase}"`));
      if (delayMs > 0) await new Promise((resolve) => setTimeout(resolve, delayMs));
      node.child.kill('SIGTERM');
      const { code } = await node.exited;
      const where = `SIGTERM at "${phase}" + ${delayMs} ms:\n${node.output()}`;
      expect(code, where).toBe(0);
      expect(node.output(), where).toContain('"msg":"Apiary node stopped"');
      expect(problems(node.output()), where).toEqual([]);
    }
    // Every stop above was clean: the next full start finds no crash, and its feed has no fork.
    const node = await startNodeProcess(args);
    children.push(node.child);
    const reply = await requestNode({ url: `mqtt://127.0.0.1:${node.port}`, topicPrefix: 'apiary', command: 'status' });
    const counters = (reply.result as { counters: Record<string, number> }).counters;
    expect(counters['feeds.fork'] ?? 0).toBe(0);
    node.child.kill('SIGTERM');
    expect((await node.exited).code).toBe(0);
    expect(problems(node.output())).toEqual([]);
  }, 120_000);

  it('stop() called in-process at each phase makes start() reject with START_ABORTED and closes everything', async () => {
    const dataDir = path.join(dir, 'in-process');
    const { config: loaded } = loadConfig({ file: config, overrides: { dataDir, port: 0 } });
    for (const phase of PHASES) {
      const logged: LogLine[] = [];
      const holder: { node?: ApiaryNode } = {};
      let stopped: Promise<void> | undefined;
      const sink = new Writable({
        write(chunk: Buffer, _encoding, done) {
          const line = JSON.parse(chunk.toString()) as LogLine;
          logged.push(line);
          // Called from inside the phase's log line: the stop lands exactly at that phase.
          if (line.msg === `start-up: ${phase}`) stopped ??= holder.node?.stop();
          done();
        },
      });
      const node = createNode(loaded, pino({ level: 'debug', base: undefined }, sink));
      holder.node = node;
      const started = await node.start().then(() => 'started', (err: unknown) => (err as { code?: string }).code);
      await stopped;
      expect(started, phase).toBe('APIARY_START_ABORTED');
      expect(logged.map((l) => l.msg), phase).toContain('Apiary node stopped');
      expect(logged.filter((l) => l.level >= 50 || /did not shut down cleanly|STORAGE_CLOSED/.test(`${l.msg} ${l.err ?? ''}`)), phase).toEqual([]);
      // Nothing left open: the data dir lock is released, so a fresh node can take the dir at once.
      const again = createNode(loaded, pino({ level: 'silent' }));
      await again.start();
      await again.stop();
    }
  }, 120_000);
});

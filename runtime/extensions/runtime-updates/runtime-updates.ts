/**
 * Runtime updates, inside the node: confirms or rolls back the release on
 * trial, and puts every outcome in the node's feed (`runtime-update`
 * entries), so its owner and neighbours see a failed update wherever they
 * are. Installing is done by `apiary update install` (install-release.ts);
 * choosing what runs, and rolling back a trial that never came up, by the
 * launcher (launcher.ts).
 */
import path from 'node:path';
import type { ApiaryConfig } from '../../config/schema.js';
import type { Extension } from '../../core/extension.js';
import type { NodeContext } from '../../core/node-context.js';
import { APIARY_VERSION } from '../../core/node-status.js';
import { describeError } from '../../errors.js';
import { declareRuntimeUpdateCommands } from './commands.js';
import { HealthWindow } from './health-window.js';
import type { MeshReleases } from './mesh-releases.js';
import { releaseTrustFromConfig } from './release-trust.js';
import { CONFIG_VERSION } from '../../config/migrations.js';
import { EXIT_ROLLBACK, launchedRelease } from './launched-release.js';
import {
  commitTrial, locationOf, pointCurrent, readState, rollBackTrial, withLock, writeState, type Outcome, type RuntimeState, type Trial,
} from './release-slots.js';

export const RUNTIME_UPDATE_TYPE = 'runtime-update';

export interface RuntimeUpdatesOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** How the node asks to be started again, on the release before or a new trial (default: exit code EXIT_ROLLBACK through a clean stop). */
  readonly restart?: () => void;
}

/** The service restarts the node on this exit code; the launcher then picks the release (the one before, or a new trial). */
function restartNode(): void {
  process.exitCode = EXIT_ROLLBACK;
  process.kill(process.pid, 'SIGTERM');
}

export function createRuntimeUpdates(config: ApiaryConfig, options: RuntimeUpdatesOptions = {}): Extension {
  const release = launchedRelease(options.env ?? process.env);
  let ctx: NodeContext | undefined;
  let window: HealthWindow | undefined;
  let trial: Trial | undefined;
  let deadline: NodeJS.Timeout | undefined;
  let trialStartedAt = 0;
  let stopped = false;
  let lastOutcome: Outcome | undefined;
  let meshReleases: MeshReleases | undefined;

  const read = (): RuntimeState | undefined => {
    if (!release) return undefined;
    try {
      return readState(release.dir);
    } catch (err) {
      ctx?.counters.increment('updates.state_unreadable');
      ctx?.logger.warn({ err: describeError(err) }, 'cannot read the runtime update state');
      return undefined;
    }
  };

  /** Puts outcomes not yet reported into the feed (or the log, without a mesh), then marks them reported. */
  const reportOutcomes = async (): Promise<void> => {
    if (!release || !ctx) return;
    const state = read();
    const pending = state?.outcomes.filter((o) => !o.reported) ?? [];
    if (pending.length === 0) {
      lastOutcome = state?.outcomes.at(-1) ?? lastOutcome;
      return;
    }
    for (const outcome of pending) {
      const body = { version: outcome.version, from: outcome.from, outcome: outcome.outcome, reason: outcome.reason, at: outcome.at };
      if (outcome.outcome === 'rolled-back') ctx.logger.error(body, `runtime update to ${outcome.version} was rolled back: ${outcome.reason}`);
      else ctx.logger.info(body, `runtime update to ${outcome.version} is kept: ${outcome.reason}`);
      if (ctx.mesh) await ctx.mesh.append(RUNTIME_UPDATE_TYPE, body);
      ctx.counters.increment(`updates.${outcome.outcome === 'committed' ? 'committed' : 'rolled_back'}`);
    }
    await withLock(release.dir, () => {
      const now = readState(release.dir);
      if (!now) return;
      const done = new Set(pending.map((o) => o.at + o.version));
      writeState(release.dir, { ...now, outcomes: now.outcomes.map((o) => (done.has(o.at + o.version) ? { ...o, reported: true } : o)) });
    });
    lastOutcome = pending.at(-1);
  };

  const settle = async (): Promise<void> => {
    if (!release || !ctx || !window || !trial || stopped) return;
    window.stop();
    const verdict = window.judge();
    const current = trial;
    let rolledBack = false;
    await withLock(release.dir, () => {
      const state = readState(release.dir);
      if (state?.trial?.installedAt !== current.installedAt) return; // settled elsewhere (the launcher's backstop, by hand)
      const next = verdict.healthy ? commitTrial(state, verdict.reason, new Date()) : rollBackTrial(state, verdict.reason, new Date());
      writeState(release.dir, next);
      pointCurrent(release.dir, locationOf(release.dir, next.current, release.factoryRoot));
      rolledBack = !verdict.healthy;
    });
    trial = undefined;
    if (rolledBack) {
      // The release before reports it in the feed when it starts: it is the one known to work.
      ctx.logger.error({ version: current.version, back: current.from.version }, `release ${current.version} is not healthy (${verdict.reason}): restarting on ${current.from.version}`);
      (options.restart ?? restartNode)();
    } else {
      await reportOutcomes();
    }
  };

  const extension: Extension = {
    name: 'runtime-updates',
    async start(context) {
      ctx = context;
      if (release && context.mesh && config.updates.fromMesh) {
        const launched = release;
        // Loaded only here: a node run from a checkout, or without the mesh, never parses the release and tar code.
        const { MeshReleases } = await import('./mesh-releases.js');
        meshReleases = new MeshReleases({
          mesh: context.mesh, dir: launched.dir, dataDir: path.dirname(launched.dir), factoryRoot: launched.factoryRoot,
          trust: await releaseTrustFromConfig(config), windowMs: config.updates.healthWindow, counters: context.counters, logger: context.logger,
          running: () => ({ version: read()?.current.version ?? launched.version, arch: process.arch, nodeVersion: process.versions.node, configVersion: CONFIG_VERSION }),
          installed: (installed) => {
            context.logger.info({ version: installed.manifest.version, slot: installed.slot }, `runtime release ${installed.manifest.version} from the mesh is installed: restarting into its trial`);
            (options.restart ?? restartNode)();
          },
        });
      }
      // Listening before the mesh goes on the network: no announcement that arrives at once is missed.
      meshReleases?.start();
      declareRuntimeUpdateCommands(context.commands, { status: () => extension.status?.() ?? {} }, meshReleases);
      if (!release) return;
      const state = read();
      lastOutcome = state?.outcomes.at(-1);
      context.events.on('started', () => {
        window?.started();
        context.track(reportOutcomes());
      });
      const onTrial = state?.trial && state.trial.slot === release.slot && state.trial.version === release.version ? state.trial : undefined;
      if (!onTrial) return;
      trial = onTrial;
      const needsMeshLink = config.updates.health.meshLink === 'always' || (config.updates.health.meshLink === 'auto' && config.mesh.enabled && config.mesh.neighbours.length > 0);
      window = new HealthWindow(
        { windowMs: onTrial.windowMs, minReadings: config.updates.health.minReadings, maxLoopStallMs: config.updates.health.maxLoopStall, needsMeshLink },
        () => meshLinked(context),
      );
      window.start();
      trialStartedAt = Date.now();
      context.events.on('reading', () => window?.reading());
      deadline = setTimeout(() => context.track(settle()), onTrial.windowMs);
      context.logger.info({ version: onTrial.version, windowMs: onTrial.windowMs }, `release ${onTrial.version} is on trial: kept if it is healthy for ${Math.round(onTrial.windowMs / 1000)} s`);
    },
    async stop() {
      stopped = true;
      if (deadline !== undefined) clearTimeout(deadline);
      window?.stop();
      await meshReleases?.stop();
    },
    status: () => ({
      updates: {
        // Without the launcher (a checkout, `npm start`) nothing is installed or rolled back.
        release: release ? { version: release.version, slot: release.slot } : { version: APIARY_VERSION, slot: 'checkout' },
        trial: trial && window ? {
          version: trial.version, from: trial.from.version, remainingMs: Math.max(0, trial.windowMs - (Date.now() - trialStartedAt)), ...window.seen,
        } : null,
        lastOutcome: lastOutcome ?? null,
        fetching: meshReleases?.fetching ?? null,
      },
    }),
  };
  return extension;
}

function meshLinked(ctx: NodeContext): boolean {
  return (ctx.mesh?.linkedPeers().length ?? 0) > 0;
}

/**
 * What the launcher tells the release it runs (environment variables), and
 * the exit code that asks for a restart into the release before. Light: the
 * extension list and the CLI import it on every start.
 */

/** sysexits.h EX_TEMPFAIL: "try again later"; the unit restarts the node on it, into the release before. */
export const EXIT_ROLLBACK = 75;

export const RELEASE_ENV = { dir: 'APIARY_RUNTIME_DIR', slot: 'APIARY_RELEASE_SLOT', version: 'APIARY_RELEASE_VERSION', factory: 'APIARY_FACTORY_ROOT' } as const;

export interface LaunchedRelease {
  /** <dataDir>/runtime */
  readonly dir: string;
  readonly slot: string;
  readonly version: string;
  /** The packaged app (/usr/lib/apiary). */
  readonly factoryRoot: string;
}

/** The release this process runs, when started by the launcher; undefined from a checkout. */
export function launchedRelease(env: NodeJS.ProcessEnv): LaunchedRelease | undefined {
  const dir = env[RELEASE_ENV.dir];
  const slot = env[RELEASE_ENV.slot];
  const version = env[RELEASE_ENV.version];
  const factoryRoot = env[RELEASE_ENV.factory];
  if (!dir || !slot || !version || !factoryRoot) return undefined;
  return { dir, slot, version, factoryRoot };
}

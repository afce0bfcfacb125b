/**
 * Debian's headless Chromium, driven by playwright-core (no downloaded
 * browser: `npx playwright install` is never run). `.ci/run` installs the
 * `chromium` package; where it is missing or cannot start, `chromiumProblem`
 * says why, and the browser tests skip with that reason.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.APIARY_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Offline and quiet: without the background-networking flags Chromium keeps
 * trying Google's services, and on a machine without internet those
 * connections are refused many at a time.
 */
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface LaunchedChromium {
  /** The browser's one context: its pages share the temp profile. */
  readonly context: BrowserContext;
  /** Closes the browser and removes its profile dir. */
  close(): Promise<void>;
}

/** A fresh Chromium with a temp profile (playwright passes it as --user-data-dir), removed on close. */
export async function launchChromium(viewport = { width: 1280, height: 800 }): Promise<LaunchedChromium> {
  const profile = await mkdtemp(path.join(os.tmpdir(), 'apiary-chromium-'));
  try {
    const context = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: ARGS, viewport, timeout: 60_000 });
    return {
      context,
      close: async () => {
        await context.close().catch(() => undefined);
        await rm(profile, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(profile, { recursive: true, force: true });
    throw err;
  }
}

/** Why Chromium cannot run here (undefined when it can): it is started once, and closed. */
export async function chromiumProblem(): Promise<string | undefined> {
  try {
    const launched = await launchChromium();
    await launched.close();
    return undefined;
  } catch (err) {
    const first = ((err as Error).message ?? String(err)).split('\n')[0];
    return `Chromium could not start from ${CHROMIUM} (${first}); install it with \`apt-get install chromium\``;
  }
}

/**
 * Where Node-RED and its files are, and the settings file the node writes
 * for it at every (re)start. Node-RED reads its settings with require(), so
 * the file is CommonJS (`.cjs`: a data dir inside an ESM package would turn
 * a `.js` into a module it cannot require).
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../../errors.js';
import { packagePath } from '../../package-root.js';
import { writeFileAtomic } from '../../storage/atomic-json-file.js';
import type { FlowsConfig } from './config.js';

/** The files `apiary flows passwd` writes and the settings read, in the node's data dir (mode 0600). */
export const ADMIN_FILE = 'node-red-admin.json';
export const SECRET_FILE = 'node-red-secret';
export const SETTINGS_FILE = 'settings.cjs';
export const FLOW_FILE = 'flows.json';

export interface AdminCredentials {
  readonly username: string;
  /** bcrypt, as Node-RED's adminAuth expects. */
  readonly password: string;
}

export const userDirOf = (flows: FlowsConfig, dataDir: string): string => path.resolve(flows.userDir ?? path.join(dataDir, 'node-red'));

/** The node-red package's `red.js`: from flows.nodeRed, else the `node-red` package resolved from Apiary's own. */
export function findNodeRed(flows: FlowsConfig): string {
  if (flows.nodeRed !== undefined) {
    const dir = path.resolve(flows.nodeRed);
    const red = dir.endsWith('.js') ? dir : path.join(dir, 'red.js');
    if (existsSync(red)) return red;
    throw new ApiaryError(ErrorCodes.FLOWS_UNAVAILABLE, `flows.nodeRed: no Node-RED at ${red}`, {
      hint: 'set flows.nodeRed to the folder of an installed node-red package (the one holding red.js), or remove it to use the one installed with Apiary',
    });
  }
  try {
    const manifest = createRequire(import.meta.url).resolve('node-red/package.json');
    return path.join(path.dirname(manifest), 'red.js');
  } catch (err) {
    throw new ApiaryError(ErrorCodes.FLOWS_UNAVAILABLE, 'flows.enabled is true but Node-RED is not installed', {
      hint: `run \`npm install node-red@4.1\` in ${packagePath()} (Node-RED 5 needs Node.js >= 22.9), or set flows.nodeRed to an installed node-red folder, or set flows.enabled: false`,
      cause: err,
    });
  }
}

/** The credential secret Node-RED encrypts flow credentials with: made once, kept in the data dir (losing it loses them). */
export async function loadOrCreateSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, SECRET_FILE);
  try {
    const secret = (await readFile(file, 'utf8')).trim();
    if (secret !== '') return secret;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const secret = randomBytes(32).toString('hex');
  await writeFileAtomic(file, `${secret}\n`);
  return secret;
}

/** What `apiary flows passwd` stored, or undefined when it never ran. */
export async function readAdmin(dataDir: string): Promise<AdminCredentials | undefined> {
  const file = path.join(dataDir, ADMIN_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const parsed = JSON.parse(text) as Partial<AdminCredentials>;
  if (typeof parsed.username !== 'string' || typeof parsed.password !== 'string' || !parsed.password.startsWith('$2')) {
    throw new ApiaryError(ErrorCodes.FLOWS_UNAVAILABLE, `${file} does not hold a user name and a bcrypt hash`, { hint: 'run `apiary flows passwd` again' });
  }
  return { username: parsed.username, password: parsed.password };
}

export async function writeAdmin(dataDir: string, admin: AdminCredentials): Promise<string> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const file = path.join(dataDir, ADMIN_FILE);
  await writeFileAtomic(file, `${JSON.stringify(admin, null, 2)}\n`);
  return file;
}

const isLoopbackHost = (host: string): boolean => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** The settings object Node-RED gets: offline, quiet, loopback unless a password guards the editor. */
export function nodeRedSettings(flows: FlowsConfig, userDir: string, secret: string, admin: AdminCredentials | undefined, paletteDir: string | undefined): Record<string, unknown> {
  if (admin === undefined && !isLoopbackHost(flows.host)) {
    throw new ApiaryError(ErrorCodes.FLOWS_UNAVAILABLE, `flows.host is ${flows.host}, but the Node-RED editor has no password`, {
      hint: 'run `apiary flows passwd` first (anyone who reaches the editor can run code on this board), or set flows.host: 127.0.0.1',
    });
  }
  return {
    uiHost: flows.host,
    uiPort: flows.port,
    userDir,
    flowFile: FLOW_FILE,
    credentialSecret: secret,
    ...(admin ? { adminAuth: { type: 'credentials', users: [{ username: admin.username, password: admin.password, permissions: '*' }] } } : {}),
    // Nothing leaves the board: no telemetry or update check, no online catalogue, no installs from the editor or by function nodes.
    telemetry: { enabled: false, updateNotification: false },
    editorTheme: { tours: false, palette: { catalogues: [] }, projects: { enabled: false } },
    externalModules: { autoInstall: false, palette: { allowInstall: false, allowUpload: false, allowUpdate: false }, modules: { allowInstall: false } },
    ...(paletteDir ? { nodesDir: [paletteDir] } : {}),
    logging: { console: { level: 'info', metrics: false, audit: false } },
  };
}

/** The Apiary palette (flows/node-red-apiary) when this package ships it. */
export function paletteDir(): string | undefined {
  const dir = packagePath('flows', 'node-red-apiary');
  return existsSync(path.join(dir, 'package.json')) ? dir : undefined;
}

/**
 * Runs inside Node-RED (settings files are code): it exits once the node that
 * started it is gone, so a node killed with SIGKILL (or by the OOM killer)
 * leaves no Node-RED behind holding the editor's port.
 */
const ORPHAN_GUARD = `const apiaryParent = Number(process.env.APIARY_PARENT_PID);
if (apiaryParent > 0) setInterval(() => { if (process.ppid !== apiaryParent) process.exit(0); }, 1000).unref();`;

/** Writes the settings file into the user dir (atomically, 0600: it holds the credential secret). */
export async function writeSettings(userDir: string, settings: Record<string, unknown>): Promise<string> {
  await mkdir(userDir, { recursive: true, mode: 0o700 });
  const file = path.join(userDir, SETTINGS_FILE);
  await writeFileAtomic(file, `// Written by Apiary at every start of Node-RED (runtime/extensions/flows/): edit the flows section of the node's config instead.
${ORPHAN_GUARD}
module.exports = ${JSON.stringify(settings, null, 2)};\n`);
  return file;
}

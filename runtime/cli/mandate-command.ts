/**
 * `apiary owner mandate sign --file mandate.json`: the owner signs the bounds
 * a node works and pays within (runtime/extensions/tasks/mandate.ts). The
 * signed file goes to the board; `tasks.mandate` names it there.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ApiaryError, ErrorCodes } from '../errors.js';
import { loadOrCreateKeyFile } from '../identity/identity.js';
import { mandateBodySchema, signMandate } from '../extensions/tasks/mandate.js';
import { writeFileAtomic } from '../storage/atomic-json-file.js';

const EXAMPLE = '{"v": 1, "node": "<node id>", "sell": {"kinds": ["hive-sound"], "minPrice": 1}, "buy": {"kinds": ["reading-at"], "maxPrice": 2}, "dailyBudget": 20, "creditLimitPerPeer": 10, "expires": "2027-06-01T00:00:00Z"}';

export async function mandateSignCommand(options: { keyFile: string; file: string; out?: string }): Promise<void> {
  const keyFile = path.resolve(options.keyFile);
  if (!existsSync(keyFile)) throw new ApiaryError(ErrorCodes.OWNER_KEY_MISSING, `there is no owner key at ${keyFile}`, { hint: 'point --key-file at the owner key that certified the node' });
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path.resolve(options.file), 'utf8'));
  } catch (err) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--file: cannot read ${options.file} as JSON (${(err as Error).message})`, { hint: `write the mandate as JSON, like ${EXAMPLE}` });
  }
  const parsed = mandateBodySchema.safeParse(raw);
  if (!parsed.success) {
    throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--file: ${options.file} is not a mandate: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'mandate'}: ${i.message}`).join('; ')}`, { hint: `like ${EXAMPLE}` });
  }
  if (Date.parse(parsed.data.expires) <= Date.now()) throw new ApiaryError(ErrorCodes.USAGE_INVALID, `--file: the mandate expired at ${parsed.data.expires}`, { hint: 'give it an expiry in the future' });
  const { identity: owner } = await loadOrCreateKeyFile(keyFile);
  const signed = signMandate(owner, parsed.data);
  const out = path.resolve(options.out ?? `${parsed.data.node}.mandate.json`);
  await writeFileAtomic(out, `${JSON.stringify(signed, null, 2)}\n`, { mode: 0o644 });
  process.stdout.write(`signed the mandate for node ${parsed.data.node} as owner ${owner.publicKey} (expires ${parsed.data.expires})\n  wrote ${out}\n  on the board: copy it there and set tasks.mandate to its path\n`);
}

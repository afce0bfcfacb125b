/** Made-up config migrations for tests: the real list is empty while version 1 is the only format. */
import type { ConfigMigration } from '../../runtime/config/migrations.js';

/** A migration from `from` to `from + 1` that renames `<section>.<oldName>` to `<section>.<newName>`. */
export function renameField(section: string, oldName: string, newName: string, from = 1): ConfigMigration {
  return {
    from,
    to: from + 1,
    describe: `${section}.${oldName} renamed to ${section}.${newName}`,
    migrate(raw) {
      const fields = (raw as Record<string, Record<string, unknown> | undefined>)[section];
      if (fields && oldName in fields) {
        fields[newName] = fields[oldName];
        delete fields[oldName];
      }
      return raw;
    },
  };
}

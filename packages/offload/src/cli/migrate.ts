import { SCHEMA_VERSION } from '../postgres/migrations.js';
import { DEFAULT_DATABASE_URL, openStore, parseStoreUrl } from '../store/open.js';
import { parseCommandArgs } from './args.js';
import { namingSource } from './store-error.js';

export const MIGRATE_USAGE = `offload migrate [--database URL]
offload migrate --help

  Brings the schema of DATABASE_URL (default ${DEFAULT_DATABASE_URL}), or of --database URL,
  up to date, then exits. Every process also migrates when it starts (safely at once, under a
  lock); this is for deploy steps that want it done first.`;

/** `offload migrate`: returns the exit code. */
export async function migrateCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, help } = parseCommandArgs(args, { database: { type: 'string' } });
  if (help) {
    console.log(MIGRATE_USAGE);
    return 0;
  }
  const url = values.database ?? (env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
  const source = values.database === undefined ? 'DATABASE_URL' : '--database';
  parseStoreUrl(url, source);
  const schema = env.DATABASE_SCHEMA?.trim() || undefined;
  const store = await openStore(url, { schema }).catch((error: unknown) => {
    throw namingSource(error, source);
  });
  try {
    await store.open();
  } catch (error) {
    throw namingSource(error, source);
  } finally {
    await store.close();
  }
  const version =
    store.kind === 'postgres' ? ` ${schema ?? 'offload'} at version ${SCHEMA_VERSION}` : '';
  console.log(`offload: the ${store.kind} store is up to date${version}`);
  return 0;
}

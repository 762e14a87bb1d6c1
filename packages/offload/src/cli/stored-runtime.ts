import { pino } from 'pino';
import { createRuntime, OffloadError, openStore, type Runtime } from '../index.js';
import { DEFAULT_DATABASE_URL, parseStoreUrl, type StoreUrl } from '../store/open.js';
import { namingSource } from './store-error.js';

/**
 * Runs `act` on a runtime over the existing database that `--database` (`database`) or
 * `DATABASE_URL` names, then stops the runtime. `what` names what the command works on (`tasks`,
 * `schedules`), in the refusal of `memory:` and in what to check when the store cannot be opened.
 */
export async function withStoredRuntime<T>(
  database: string | undefined,
  env: NodeJS.ProcessEnv,
  what: string,
  act: (runtime: Runtime) => Promise<T>,
): Promise<T> {
  const url = database ?? (env.DATABASE_URL?.trim() || DEFAULT_DATABASE_URL);
  const source = database === undefined ? 'DATABASE_URL' : '--database';
  const { kind } = parseStoreUrl(url, source);
  if (kind === 'memory') {
    throw new OffloadError(
      'STORE_NOT_FOUND',
      `${source}: memory: keeps the ${what} of one process, gone when it exits; give the sqlite: or postgres:// URL of the service's database`,
    );
  }
  const runtime = createRuntime({
    // These commands read or change what exists: a mistyped path must not become an empty
    // database that answers "nothing here".
    store: await openStore(url, {
      schema: env.DATABASE_SCHEMA?.trim() || undefined,
      mustExist: true,
    }),
    logger: pino({ level: 'warn' }, pino.destination(2)),
  });
  try {
    return await act(runtime);
  } catch (error) {
    throw storeError(error, source, kind, what);
  } finally {
    await runtime.stop();
  }
}

/** A store that could not be opened, named by where its URL came from and what to check. */
function storeError(error: unknown, source: string, kind: StoreUrl['kind'], what: string): unknown {
  const named = namingSource(error, source);
  if (!(named instanceof OffloadError) || named.code !== 'STORE_NOT_FOUND') return named;
  const check =
    kind === 'postgres'
      ? 'DATABASE_URL or --database, and DATABASE_SCHEMA'
      : 'DATABASE_URL or --database';
  return new OffloadError(
    named.code,
    `${named.message}. Check ${check}: the ${what} commands work on an existing database and create none`,
    { cause: error },
  );
}

import { isTaskName } from '../runtime/define-task.js';
import { DEFAULT_DATABASE_URL } from '../store/open.js';
import { withStoredRuntime } from './stored-runtime.js';
import { parseCommandArgs, UsageError } from './args.js';

export const TASK_NAMES_USAGE = `offload pause NAME
offload resume NAME
offload paused [--json]

  Pause or resume the tasks named NAME in DATABASE_URL (default ${DEFAULT_DATABASE_URL}), or in
  --database URL: every process on that database stops claiming them until they are resumed,
  also after a restart. Running tasks finish. paused lists the paused names.`;

const OPTIONS = {
  database: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `offload pause NAME`, `offload resume NAME`, `offload paused`: returns the exit code. */
export async function taskNamesCommand(
  action: 'pause' | 'resume' | 'paused',
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<number> {
  const { values, positionals, help } = parseCommandArgs(args, OPTIONS, { positionals: true });
  if (help) {
    console.log(TASK_NAMES_USAGE);
    return 0;
  }
  const [name, ...extra] = positionals;
  if (action === 'paused') {
    if (name !== undefined) throw new UsageError('offload paused takes no task name');
  } else {
    if (name === undefined) throw new UsageError(`offload ${action} needs a task name`);
    if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
    if (values.json !== undefined) throw new UsageError('--json is an option of offload paused');
    if (!isTaskName(name)) {
      throw new UsageError(
        'NAME must be a task name: 1 to 200 characters, no leading or trailing spaces, no control characters',
      );
    }
  }
  return withStoredRuntime(values.database, env, 'tasks', async (runtime) => {
    switch (action) {
      case 'pause': {
        const changed = await runtime.pause(name!);
        console.log(
          changed
            ? `tasks named ${name} are paused: no process claims them until offload resume ${name}`
            : `tasks named ${name} were paused already`,
        );
        return 0;
      }
      case 'resume': {
        const changed = await runtime.resume(name!);
        console.log(
          changed
            ? `tasks named ${name} are resumed; a running service picks them up within a second`
            : `tasks named ${name} were not paused`,
        );
        return 0;
      }
      case 'paused': {
        const paused = await runtime.paused();
        if (values.json) {
          const view = paused.map((p) => ({ name: p.name, pausedAt: p.pausedAt.toISOString() }));
          console.log(JSON.stringify({ paused: view }, null, 2));
        } else if (paused.length === 0) console.log('no task name is paused');
        else
          for (const p of paused)
            console.log(`${p.name}  paused since ${p.pausedAt.toISOString()}`);
        return 0;
      }
    }
  });
}

import { OffloadError, TASK_STATES, type ListFilter, type Task, type TaskState } from '../index.js';
import { isTaskName } from '../runtime/define-task.js';
import { iso, taskView } from '../task-view.js';
import { DEFAULT_DATABASE_URL } from '../store/open.js';
import { withStoredRuntime } from './stored-runtime.js';
import { parseCommandArgs, unknownWord, UsageError } from './args.js';

export const TASKS_USAGE = `offload tasks list [--state STATE] [--name NAME] [--limit N] [--cursor ID] [--json]
offload tasks show ID
offload tasks retry ID
offload tasks cancel ID
offload tasks --help

  Work on the tasks of DATABASE_URL (default ${DEFAULT_DATABASE_URL}), or of --database URL.
  STATE is one of ${TASK_STATES.join(', ')}.`;

/** The options of `offload tasks list`, which the other actions refuse rather than ignore. */
const LIST_OPTIONS = ['state', 'name', 'limit', 'cursor', 'json'] as const;

const ACTIONS = ['list', 'show', 'retry', 'cancel'] as const;

const OPTIONS = {
  database: { type: 'string' },
  state: { type: 'string' },
  name: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `offload tasks …`: returns the exit code. */
export async function tasksCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals, help } = parseCommandArgs(args, OPTIONS, { positionals: true });
  const [given, id, ...extra] = positionals;
  if (help || given === 'help') {
    console.log(TASKS_USAGE);
    return 0;
  }
  const action = readAction(given);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (action === 'list' && id !== undefined)
    throw new UsageError('offload tasks list takes no id; use offload tasks show ID');
  if (action !== 'list' && id === undefined)
    throw new UsageError(`offload tasks ${action} needs a task id`);
  // Checked before the store opens: a mistake in the call is told as one, whatever the database.
  const listOption = LIST_OPTIONS.find((option) => values[option] !== undefined);
  if (action !== 'list' && listOption !== undefined) {
    throw new UsageError(`--${listOption} is an option of offload tasks list only`);
  }
  const filter = action === 'list' ? listFilter(values) : undefined;
  return withStoredRuntime(values.database, env, 'tasks', async (runtime) => {
    switch (action) {
      case 'list': {
        const page = await runtime.list(filter);
        if (values.json)
          print(
            JSON.stringify(
              { tasks: page.tasks.map(taskView), nextCursor: page.nextCursor },
              null,
              2,
            ),
          );
        else printTable(page.tasks, page.nextCursor);
        return 0;
      }
      case 'show': {
        const task = await runtime.get(id!);
        if (!task) throw new OffloadError('TASK_NOT_FOUND', `no task has id ${JSON.stringify(id)}`);
        print(JSON.stringify(details(task), null, 2));
        return 0;
      }
      case 'retry': {
        const task = await runtime.retry(id!);
        print(
          `task ${task.id} (${task.name}) is queued again; a running service picks it up within a second`,
        );
        return 0;
      }
      case 'cancel': {
        const task = await runtime.cancel(id!);
        print(`task ${task.id} (${task.name}) is canceled`);
        return 0;
      }
    }
  });
}

function readAction(action: string | undefined): (typeof ACTIONS)[number] {
  if (action === undefined) throw new UsageError('say what to do with tasks');
  if (!(ACTIONS as readonly string[]).includes(action))
    throw new UsageError(unknownWord('action', action, [...ACTIONS, 'help']));
  return action as (typeof ACTIONS)[number];
}

function listFilter(values: {
  state?: string;
  name?: string;
  limit?: string;
  cursor?: string;
}): ListFilter {
  const filter: ListFilter = {};
  if (values.state !== undefined) {
    if (!(TASK_STATES as readonly string[]).includes(values.state)) {
      throw new UsageError(`--state must be one of ${TASK_STATES.join(', ')}`);
    }
    filter.state = values.state as TaskState;
  }
  if (values.name !== undefined) {
    if (!isTaskName(values.name)) {
      throw new UsageError(
        '--name must be a task name: 1 to 200 characters, no leading or trailing spaces, no control characters',
      );
    }
    filter.name = values.name;
  }
  if (values.cursor !== undefined) filter.cursor = values.cursor;
  if (values.limit !== undefined) {
    const limit = Number(values.limit);
    if (!/^\d+$/.test(values.limit) || limit < 1 || limit > 1000)
      throw new UsageError('--limit must be a whole number from 1 to 1000');
    filter.limit = limit;
  }
  return filter;
}

/** Everything an operator may need about one task, payload and stacks included. */
function details(task: Task): object {
  return {
    ...taskView(task),
    priority: task.priority,
    key: task.key,
    payload: task.payload,
    errors: task.errors,
  };
}

function printTable(tasks: Task[], nextCursor: string | null): void {
  if (tasks.length === 0) return print('no tasks');
  const rows = [
    ['ID', 'STATE', 'NAME', 'ATTEMPTS', 'CREATED', 'LAST ERROR'],
    ...tasks.map((t) => [
      t.id,
      t.state,
      t.name,
      `${t.attempts}/${t.maxAttempts}`,
      iso(t.createdAt) ?? '?',
      t.errors.at(-1)?.message.slice(0, 60) ?? '',
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  for (const row of rows)
    print(
      row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    );
  if (nextCursor !== null) print(`more: offload tasks list --cursor ${nextCursor}`);
}

function print(line: string): void {
  console.log(line);
}

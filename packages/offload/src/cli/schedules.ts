import { type Runtime, type Schedule } from '../index.js';
import { scheduleNotFound } from '../runtime/schedules.js';
import { iso } from '../task-view.js';
import { DEFAULT_DATABASE_URL } from '../store/open.js';
import { withStoredRuntime } from './stored-runtime.js';
import { parseCommandArgs, unknownWord, UsageError } from './args.js';

export const SCHEDULES_USAGE = `offload schedules list [--json]
offload schedules get NAME
offload schedules pause NAME
offload schedules resume NAME
offload schedules remove NAME
offload schedules --help

  Work on the schedules of DATABASE_URL (default ${DEFAULT_DATABASE_URL}), or of --database URL.
  Schedules are created by the app (runtime.schedules.set) or PUT /api/schedules/:name.`;

const ACTIONS = ['list', 'get', 'pause', 'resume', 'remove'] as const;

const OPTIONS = {
  database: { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** `offload schedules …`: returns the exit code. */
export async function schedulesCommand(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { values, positionals, help } = parseCommandArgs(args, OPTIONS, { positionals: true });
  const [given, name, ...extra] = positionals;
  if (help || given === 'help') {
    console.log(SCHEDULES_USAGE);
    return 0;
  }
  const action = readAction(given);
  if (extra.length > 0) throw new UsageError(`unexpected arguments: ${extra.join(' ')}`);
  if (action === 'list' && name !== undefined)
    throw new UsageError('offload schedules list takes no name; use offload schedules get NAME');
  if (action !== 'list' && name === undefined)
    throw new UsageError(`offload schedules ${action} needs a schedule name`);
  if (action !== 'list' && values.json)
    throw new UsageError('--json is an option of offload schedules list only');
  await withStoredRuntime(values.database, env, 'schedules', (runtime) =>
    act(runtime, action, name!, values.json === true),
  );
  return 0;
}

async function act(
  runtime: Runtime,
  action: (typeof ACTIONS)[number],
  name: string,
  json: boolean,
): Promise<void> {
  const { schedules } = runtime;
  switch (action) {
    case 'list': {
      const all = await schedules.list();
      return json ? print(JSON.stringify({ schedules: all }, null, 2)) : printTable(all);
    }
    case 'get': {
      const schedule = await schedules.get(name);
      if (!schedule) throw scheduleNotFound(name);
      return print(JSON.stringify(schedule, null, 2));
    }
    case 'pause':
      await schedules.pause(name);
      return print(
        `schedule ${name} is paused; it fires again after offload schedules resume ${name}`,
      );
    case 'resume': {
      const schedule = await schedules.resume(name);
      return print(
        `schedule ${name} is resumed; it fires next at ${iso(schedule.nextRunAt) ?? 'no time (its rule has no later time)'}`,
      );
    }
    case 'remove':
      if (!(await schedules.remove(name))) throw scheduleNotFound(name);
      return print(`schedule ${name} is removed; the tasks it fired stay`);
  }
}

function readAction(action: string | undefined): (typeof ACTIONS)[number] {
  if (action === undefined) throw new UsageError('say what to do with schedules');
  if (!(ACTIONS as readonly string[]).includes(action))
    throw new UsageError(unknownWord('action', action, [...ACTIONS, 'help']));
  return action as (typeof ACTIONS)[number];
}

/** A rule as an operator reads it: `0 9 * * 1-5 Europe/Berlin` or `every 30s`. */
function ruleText(rule: Schedule['rule']): string {
  const when = 'every' in rule ? `every ${rule.every / 1000}s` : `${rule.cron} ${rule.timezone}`;
  return rule.catchUp === 'skip' ? when : `${when} (catch up: ${rule.catchUp})`;
}

function printTable(schedules: Schedule[]): void {
  if (schedules.length === 0) return print('no schedules');
  const rows = [
    ['NAME', 'RULE', 'TASK', 'STATE', 'NEXT RUN', 'LAST RUN', 'LAST TASK'],
    ...schedules.map((s) => [
      s.name,
      ruleText(s.rule),
      s.task,
      s.paused ? 'paused' : 'active',
      iso(s.nextRunAt) ?? '-',
      iso(s.lastRunAt) ?? '-',
      s.lastTaskId ?? '-',
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
}

function print(line: string): void {
  console.log(line);
}

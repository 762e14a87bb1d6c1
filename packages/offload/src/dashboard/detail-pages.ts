import { clockworkOf, encodeTiming } from '../runtime/schedule-fire.js';
import type { Schedule } from '../runtime/schedules.js';
import type { Task } from '../types.js';
import { html, prettyJson, type Html } from './html.js';
import { actionForm, when, type PageContext } from './layout.js';
import { taskActions } from './pages.js';

/** One task: its fields, payload, result, progress, every recorded error, and its attempts. */
export function taskPage(ctx: PageContext, task: Task, self: string): Html {
  const json = (value: unknown) => html`<pre class="json">${prettyJson(value)}</pre>`;
  return html`<h1>Task ${task.id}</h1>
    <section
      class="task"
      data-task-id="${task.id}"
      data-state="${task.state}"
      data-reload-on-change
    >
      <dl class="fields">
        <dt>Name</dt>
        <dd>${task.name}</dd>
        <dt>State</dt>
        <dd><span class="state" data-field="state">${task.state}</span></dd>
        <dt>Attempts</dt>
        <dd data-field="attempts">${task.attempts} / ${task.maxAttempts}</dd>
        <dt>Priority</dt>
        <dd>${task.priority}</dd>
        <dt>Key</dt>
        <dd class="key">${task.key ?? '–'}</dd>
        <dt>Group</dt>
        <dd>${task.group?.key ?? '–'}</dd>
        <dt>Run at</dt>
        <dd>${when(task.runAt)}</dd>
        <dt>Created</dt>
        <dd>${when(task.createdAt)}</dd>
        <dt>Started</dt>
        <dd>${when(task.startedAt)}</dd>
        <dt>Finished</dt>
        <dd>${when(task.finishedAt)}</dd>
      </dl>
      <div class="actions">${taskActions(ctx, task.id, self)}</div>
      <h2>Payload</h2>
      ${json(task.payload)}
      <h2>Result</h2>
      ${task.result === null ? html`<p class="muted">None yet.</p>` : json(task.result)}
      <h2>Progress</h2>
      ${task.progress === null ? html`<p class="muted">Not reported.</p>` : json(task.progress)}
      <h2>Attempts</h2>
      ${timeline(task)}
      <h2>Errors</h2>
      ${
        task.errors.length === 0
          ? html`<p class="muted">No attempt failed.</p>`
          : html`<ol class="errors">
              ${task.errors.map(
                (e) =>
                  html`<li>
                    <p>
                      <strong>Attempt ${e.attempt}</strong>, ${when(e.at)}: <code>${e.name}</code>:
                      ${e.message}
                    </p>
                    ${
                      e.stack === null
                        ? ''
                        : html`<details>
                            <summary>Stack</summary>
                            <pre class="stack">${e.stack}</pre>
                          </details>`
                    }
                  </li>`,
              )}
            </ol>`
      }
    </section>`;
}

/**
 * The attempts as far as the task records them: created, each failed attempt (the last ten are
 * kept), the latest start, and how it ended.
 */
function timeline(task: Task): Html {
  const items: Html[] = [html`<li><time>${when(task.createdAt)}</time> created</li>`];
  for (const e of task.errors) {
    items.push(
      html`<li class="error">
        <time>${when(e.at)}</time> attempt ${e.attempt} failed: ${e.name}
      </li>`,
    );
  }
  const lastFailed = task.errors.at(-1)?.attempt ?? 0;
  if (task.startedAt !== null && task.attempts > lastFailed) {
    items.push(
      html`<li><time>${when(task.startedAt)}</time> attempt ${task.attempts} started</li>`,
    );
  }
  if (task.finishedAt !== null) {
    items.push(
      html`<li class="state-${task.state}">
        <time>${when(task.finishedAt)}</time> ${task.state}
      </li>`,
    );
  } else if (task.state === 'queued' && task.attempts > 0) {
    items.push(html`<li><time>${when(task.runAt)}</time> runs again</li>`);
  }
  return html`<ol class="timeline">
    ${items}
  </ol>`;
}

export interface ScheduleRow {
  schedule: Schedule;
  /** The next few due times, from `nextRunAt` on. */
  nextRuns: Date[];
}

export function schedulesPage(ctx: PageContext, rows: readonly ScheduleRow[]): Html {
  const back = `${ctx.base}/schedules`;
  return html`<h1>Schedules</h1>
    ${
      rows.length === 0
        ? html`<p>No schedules are set.</p>`
        : html`<div class="scroll">
            <table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Task</th>
                  <th scope="col">Rule</th>
                  <th scope="col">Next runs</th>
                  <th scope="col">Last run</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                ${rows.map(({ schedule: s, nextRuns }) => {
                  const rule =
                    'cron' in s.rule
                      ? `${s.rule.cron} (${s.rule.timezone})`
                      : `every ${s.rule.every} ms`;
                  return html`<tr>
                    <th scope="row">
                      ${s.name}${s.paused ? html` <span class="badge paused">paused</span>` : ''}
                    </th>
                    <td>${s.task}</td>
                    <td><code>${rule}</code></td>
                    <td>
                      ${
                        nextRuns.length === 0
                          ? '–'
                          : html`<ul class="plain">
                              ${nextRuns.map((d) => html`<li>${when(d)}</li>`)}
                            </ul>`
                      }
                    </td>
                    <td>
                      ${when(s.lastRunAt)}${s.lastTaskId === null ? '' : html` <a href="${ctx.base}/tasks/${encodeURIComponent(s.lastTaskId)}">task ${s.lastTaskId}</a>`}
                    </td>
                    <td class="actions">
                      ${
                        s.paused
                          ? actionForm(
                              ctx,
                              '/schedules/resume',
                              'Resume',
                              { name: s.name },
                              { back },
                            )
                          : actionForm(ctx, '/schedules/pause', 'Pause', { name: s.name }, { back })
                      }
                    </td>
                  </tr>`;
                })}
              </tbody>
            </table>
          </div>`
    }`;
}

/** The step that asks before retrying every failed task of a name; works without script. */
export function confirmRetryPage(ctx: PageContext, name: string, failed: number): Html {
  return html`<h1>Retry failed tasks</h1>
    <p>
      Queue again every failed task named <strong>${name}</strong>: ${failed}
      ${failed === 1 ? 'task' : 'tasks'} now.
    </p>
    ${actionForm(ctx, '/names/retry-failed', 'Retry all failed', { name, confirm: 'yes' }, { back: ctx.base, className: 'confirm' })}
    <p><a href="${ctx.base}">Back to the overview</a></p>`;
}

export function loginPage(ctx: PageContext, next: string, failed: boolean): Html {
  return html`<h1>Log in</h1>
    <form method="post" action="${ctx.base}/login" class="login">
      ${failed ? html`<p class="error" role="alert">That is not the API key.</p>` : ''}
      <input type="hidden" name="next" value="${next}" />
      <label for="api-key">API key</label>
      <input
        id="api-key"
        name="key"
        type="password"
        autocomplete="current-password"
        required
        autofocus
      />
      <button type="submit">Log in</button>
    </form>`;
}

export function messagePage(
  title: string,
  message: string,
  link: { href: string; label: string } | null,
): Html {
  return html`<h1>${title}</h1>
    <p>${message}</p>
    ${link === null ? '' : html`<p><a href="${link.href}">${link.label}</a></p>`}`;
}

/** Due times from a schedule's next one on, up to `count` in all. */
export function nextRuns(schedule: Schedule, count: number): Date[] {
  if (schedule.nextRunAt === null) return [];
  const runs = [schedule.nextRunAt];
  try {
    const timing =
      'cron' in schedule.rule
        ? { cron: schedule.rule.cron, timezone: schedule.rule.timezone }
        : { every: schedule.rule.every };
    const clockwork = clockworkOf(encodeTiming(timing));
    while (runs.length < count) {
      const last = runs.at(-1)!.getTime();
      const next = clockwork.following(last, last);
      if (next === null) break;
      runs.push(new Date(next));
    }
  } catch {
    // A rule this code cannot read: its next time alone.
  }
  return runs;
}

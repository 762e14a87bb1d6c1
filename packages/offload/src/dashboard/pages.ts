import {
  TASK_STATES,
  type PausedName,
  type Task,
  type TaskState,
  type TaskStats,
} from '../types.js';
import type { MinuteCounts } from './activity.js';
import { activityChart } from './chart.js';
import { html, type Html } from './html.js';
import { actionForm, duration, when, type PageContext } from './layout.js';

export interface OverviewData {
  stats: TaskStats;
  paused: PausedName[];
  minutes: MinuteCounts[];
  now: number;
}

/** Counts by state and by name, the queue lag, the last hour, and the paused names. */
export function overviewPage(ctx: PageContext, data: OverviewData): Html {
  const byState = new Map<TaskState, number>(TASK_STATES.map((s) => [s, 0]));
  const byName = new Map<string, Map<TaskState, number>>();
  for (const { name, state, count } of data.stats.counts) {
    byState.set(state, (byState.get(state) ?? 0) + count);
    let row = byName.get(name);
    if (!row) byName.set(name, (row = new Map()));
    row.set(state, count);
  }
  const paused = new Set(data.paused.map((p) => p.name));
  for (const name of paused) if (!byName.has(name)) byName.set(name, new Map());
  const names = [...byName.keys()].sort();
  const back = ctx.base;
  return html`<h1>Overview</h1>
    <section aria-labelledby="states-title">
      <h2 id="states-title">Tasks by state</h2>
      <ul class="cards">
        ${TASK_STATES.map(
          (state) =>
            html`<li class="card state-${state}">
              <a href="${ctx.base}/tasks?state=${state}">
                <span class="label">${state}</span>
                <span class="value" data-count="${state}">${byState.get(state)}</span>
              </a>
            </li>`,
        )}
      </ul>
      <p>Queue lag: <span data-live-lag>${lagText(data.stats.oldestDue, data.now)}</span></p>
    </section>
    <section aria-labelledby="activity-title">
      <h2 id="activity-title">Throughput and failures</h2>
      ${activityChart(data.minutes)}
    </section>
    <section aria-labelledby="names-title">
      <h2 id="names-title">Tasks by name</h2>
      ${
        names.length === 0
          ? html`<p>No tasks are stored.</p>`
          : html`<div class="scroll">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Name</th>
                    ${TASK_STATES.map((s) => html`<th scope="col" class="num">${s}</th>`)}
                    <th scope="col">Actions</th>
                  </tr>
                </thead>
                <tbody>
                  ${names.map((name) => {
                    const row = byName.get(name)!;
                    const failed = row.get('failed') ?? 0;
                    return html`<tr data-name="${name}">
                      <th scope="row">
                        <a href="${ctx.base}/tasks?name=${encodeURIComponent(name)}">${name}</a>${
                          paused.has(name) ? html` <span class="badge paused">paused</span>` : ''
                        }
                      </th>
                      ${TASK_STATES.map(
                        (state) =>
                          html`<td class="num" data-count="${state}" data-count-name="${name}">
                            ${row.get(state) ?? 0}
                          </td>`,
                      )}
                      <td class="actions">
                        ${
                          paused.has(name)
                            ? actionForm(ctx, '/names/resume', 'Resume', { name }, { back })
                            : actionForm(ctx, '/names/pause', 'Pause', { name }, { back })
                        }${
                          failed > 0 && !ctx.readOnly
                            ? html`<form
                                method="get"
                                action="${ctx.base}/names/retry-failed"
                                class="action"
                              >
                                <input type="hidden" name="name" value="${name}" />
                                <button type="submit">Retry failed</button>
                              </form>`
                            : ''
                        }
                      </td>
                    </tr>`;
                  })}
                </tbody>
              </table>
            </div>`
      }
    </section>
    <section aria-labelledby="paused-title">
      <h2 id="paused-title">Paused task names</h2>
      ${
        data.paused.length === 0
          ? html`<p>None: every name is claimed.</p>`
          : html`<ul>
              ${data.paused.map((p) => html`<li>${p.name} <span class="muted">since ${when(p.pausedAt)}</span></li>`)}
            </ul>`
      }
    </section>`;
}

export function lagText(oldestDue: Date | number | null, now: number): string {
  if (oldestDue === null) return 'no task waits';
  const due = typeof oldestDue === 'number' ? oldestDue : oldestDue.getTime();
  return `the oldest due task has waited ${duration(Math.max(0, now - due))}`;
}

export interface TaskListData {
  filter: { state: string; name: string; keyPrefix: string; cursor: string };
  tasks: Task[];
  nextCursor: string | null;
  error: string | null;
}

/** Tasks filtered by state, name and key prefix, newest first, a page at a time. */
export function tasksPage(ctx: PageContext, data: TaskListData, self: string): Html {
  const { filter } = data;
  const query = (cursor: string) => {
    const params = new URLSearchParams();
    if (filter.state) params.set('state', filter.state);
    if (filter.name) params.set('name', filter.name);
    if (filter.keyPrefix) params.set('keyPrefix', filter.keyPrefix);
    params.set('cursor', cursor);
    return `${ctx.base}/tasks?${params.toString()}`;
  };
  return html`<h1>Tasks</h1>
    <form method="get" action="${ctx.base}/tasks" class="filters" role="search">
      <label
        >State
        <select name="state">
          <option value="">any</option>
          ${TASK_STATES.map((s) => html`<option value="${s}" ${s === filter.state ? html` selected` : ''}>${s}</option>`)}
        </select></label
      >
      <label>Name <input name="name" value="${filter.name}" /></label>
      <label>Key prefix <input name="keyPrefix" value="${filter.keyPrefix}" /></label>
      <button type="submit">Filter</button>
    </form>
    ${data.error === null ? '' : html`<p class="error" role="alert">${data.error}</p>`}
    ${
      data.tasks.length === 0
        ? html`<p>No tasks match.</p>`
        : html`<div class="scroll">
            <table class="tasks">
              <thead>
                <tr>
                  <th scope="col">Id</th>
                  <th scope="col">Name</th>
                  <th scope="col">State</th>
                  <th scope="col" class="num">Attempts</th>
                  <th scope="col">Key</th>
                  <th scope="col">Created</th>
                  <th scope="col">Actions</th>
                </tr>
              </thead>
              <tbody>
                ${data.tasks.map((task) => taskRow(ctx, task, self))}
              </tbody>
            </table>
          </div>`
    }
    <nav class="pages" aria-label="Pages">
      ${filter.cursor ? html`<a href="${query('').replace(/&?cursor=$/, '')}">First page</a>` : ''}
      ${data.nextCursor === null ? '' : html`<a href="${query(data.nextCursor)}" rel="next">Next page</a>`}
    </nav>`;
}

function taskRow(ctx: PageContext, task: Task, back: string): Html {
  return html`<tr data-task-id="${task.id}" data-state="${task.state}">
    <td><a href="${ctx.base}/tasks/${encodeURIComponent(task.id)}">${task.id}</a></td>
    <td>${task.name}</td>
    <td><span class="state" data-field="state">${task.state}</span></td>
    <td class="num" data-field="attempts">${task.attempts} / ${task.maxAttempts}</td>
    <td class="key">${task.key ?? ''}</td>
    <td>${when(task.createdAt)}</td>
    <td class="actions">${taskActions(ctx, task.id, back)}</td>
  </tr>`;
}

/**
 * Retry and Cancel, both rendered; the stylesheet shows the one the task's state allows (the
 * container's `data-state`), so that the live script only has to change that attribute.
 */
export function taskActions(ctx: PageContext, id: string, back: string): Html {
  return html`${actionForm(ctx, `/tasks/${encodeURIComponent(id)}/retry`, 'Retry', {}, { back, className: 'act-retry', live: true })}${actionForm(
    ctx,
    `/tasks/${encodeURIComponent(id)}/cancel`,
    'Cancel',
    {},
    { back, className: 'act-cancel', live: true },
  )}`;
}

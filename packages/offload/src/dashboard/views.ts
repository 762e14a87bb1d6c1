import { isInstance } from '../errors/is-instance.js';
import { OffloadError } from '../errors/offload-error.js';
import { InvalidOptionError } from '../options-check.js';
import type { TaskState } from '../types.js';
import type { Activity } from './activity.js';
import {
  confirmRetryPage,
  messagePage,
  nextRuns,
  schedulesPage,
  taskPage,
} from './detail-pages.js';
import type { Html } from './html.js';
import type { PageContext, Section } from './layout.js';
import { notificationsPage } from './notifications-page.js';
import type { DashboardSettings } from './options.js';
import { overviewPage, tasksPage } from './pages.js';
import type { StatsCache } from './stats-cache.js';

/** What a page shows inside the layout: its section of the navigation, title and content. */
export interface View {
  section: Section;
  title: string;
  main: Html;
  /** 200 unless given. */
  status?: number;
}

/** Where the pages read from. */
export interface ViewSources {
  settings: DashboardSettings;
  stats: StatsCache;
  activity: Activity;
  ctx: PageContext;
}

/**
 * The page at `path` (below the mount path) with the `query` it was asked with, read through the
 * library's API: null when the dashboard has no such page.
 */
export async function viewOf(
  path: string,
  query: URLSearchParams,
  { settings, stats, activity, ctx }: ViewSources,
): Promise<View | null> {
  const { runtime, basePath } = settings;
  if (path === '/') {
    const [counts, paused] = await Promise.all([stats.get(), runtime.paused()]);
    if (counts === null)
      throw new OffloadError(
        'STORE_UNAVAILABLE',
        'the task counts could not be read from the store',
      );
    const now = settings.clock.now();
    return {
      section: 'overview',
      title: 'Overview',
      main: overviewPage(ctx, { stats: counts, paused, minutes: activity.lastHour(), now }),
    };
  }
  if (path === '/tasks') {
    const filter = {
      state: query.get('state') ?? '',
      name: query.get('name') ?? '',
      keyPrefix: query.get('keyPrefix') ?? '',
      cursor: query.get('cursor') ?? '',
    };
    const self = `${basePath}/tasks${query.size > 0 ? `?${query.toString()}` : ''}`;
    try {
      const page = await runtime.list({
        ...(filter.state ? { state: filter.state as TaskState } : {}),
        ...(filter.name ? { name: filter.name } : {}),
        ...(filter.keyPrefix ? { keyPrefix: filter.keyPrefix } : {}),
        ...(filter.cursor ? { cursor: filter.cursor } : {}),
        limit: 50,
      });
      return {
        section: 'tasks',
        title: 'Tasks',
        main: tasksPage(ctx, { filter, ...page, error: null }, self),
      };
    } catch (error) {
      if (!isInstance(error, InvalidOptionError)) throw error;
      const data = { filter, tasks: [], nextCursor: null, error: (error as Error).message };
      return { section: 'tasks', title: 'Tasks', main: tasksPage(ctx, data, self), status: 400 };
    }
  }
  const taskPath = /^\/tasks\/([^/]+)$/.exec(path);
  if (taskPath) {
    const id = decodeURIComponent(taskPath[1]!);
    const task = /^[A-Za-z0-9_-]{1,100}$/.test(id) ? await runtime.get(id) : null;
    if (!task) {
      const main = messagePage('Task not found', `No task has the id ${id}.`, null);
      return { section: 'tasks', title: 'Task not found', main, status: 404 };
    }
    const self = `${basePath}/tasks/${encodeURIComponent(task.id)}`;
    return { section: 'tasks', title: `Task ${task.id}`, main: taskPage(ctx, task, self) };
  }
  if (path === '/schedules') {
    const schedules = await runtime.schedules.list();
    const rows = schedules.map((schedule) => ({ schedule, nextRuns: nextRuns(schedule, 3) }));
    return { section: 'schedules', title: 'Schedules', main: schedulesPage(ctx, rows) };
  }
  if (path === '/notifications' && settings.notifications !== null) {
    const source = settings.notifications;
    const channel = query.get('channel') ?? source.channels[0] ?? '';
    if (!source.channels.includes(channel)) {
      const main = messagePage('Unknown channel', `There is no channel ${channel}.`, null);
      return { section: 'notifications', title: 'Notifications', main, status: 404 };
    }
    const cursor = query.get('cursor');
    const page = await source.list({ channel, ...(cursor ? { cursor } : {}) });
    return {
      section: 'notifications',
      title: 'Notifications',
      main: notificationsPage(ctx, source.channels, channel, page),
    };
  }
  if (path === '/names/retry-failed' && !settings.readOnly) {
    const name = query.get('name') ?? '';
    const counted = await stats.get();
    const failed = counted?.counts.find((c) => c.name === name && c.state === 'failed')?.count ?? 0;
    return {
      section: 'overview',
      title: 'Retry failed tasks',
      main: confirmRetryPage(ctx, name, failed),
    };
  }
  return null;
}

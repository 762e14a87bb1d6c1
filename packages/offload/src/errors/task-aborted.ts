export type AbortReason = 'shutdown' | 'canceled' | 'lease-lost';

const messages: Record<AbortReason, string> = {
  shutdown: 'the runtime is stopping; the task is handed back and will run again',
  canceled: 'the task was canceled',
  'lease-lost': 'the lease on this task was taken over; another run owns it now',
};

/** The reason a task's `signal` is aborted with, other than a timeout. */
export class TaskAbortedError extends Error {
  readonly reason: AbortReason;

  constructor(reason: AbortReason) {
    super(messages[reason]);
    this.name = 'TaskAbortedError';
    this.reason = reason;
  }
}

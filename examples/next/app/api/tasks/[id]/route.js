/* global Response */
/** `GET /api/tasks/:id`: how the task went. */
import { taskView } from 'offload';
import { runtime } from '../../../../lib/offload.js';

export async function GET(_request, { params }) {
  const { id } = await params;
  const task = await runtime.get(id);
  if (!task)
    return Response.json({ ok: false, error: { code: 'TASK_NOT_FOUND' } }, { status: 404 });
  return Response.json(taskView(task));
}

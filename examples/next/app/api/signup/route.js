/** `POST /api/signup {"email"}`: answers 202 with the welcome task's Location; the task runs after. */
import { accepted, withBackground } from 'offload/next';
import { runtime, sendWelcome } from '../../../lib/offload.js';

export const POST = withBackground(runtime, async (request, background) => {
  const { email } = await request.json();
  background.add(sendWelcome, { email });
  const [task] = await background.commit();
  return accepted(task);
});

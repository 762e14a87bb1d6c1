/**
 * Typed payloads: a Standard Schema on a definition types its payload (checked at compile time:
 * this file does not compile if inference is wrong) and checks it at enqueue and before each run.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import { z } from 'zod';
import {
  defineTask,
  InvalidOptionError,
  InvalidPayloadError,
  MemoryStore,
  PermanentError,
  type PayloadOf,
  type Runtime,
  type Task,
} from '../../src/index.js';
import { Background } from '../../src/adapters/background.js';
import { fakeClock, memoryRuntimes, newStoredTask, T0 } from '../helpers.js';

/** True only when A and B are the same type. */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

type Plan = 'free' | 'pro';

const seen: unknown[] = [];
const signup = defineTask({
  name: 'signup',
  schema: z.object({
    user: z.object({ email: z.email() }),
    plan: z.enum(['free', 'pro']).default('free'),
  }),
  run(payload) {
    // `run` gets the schema's output: the default is filled in.
    const exact: Equal<typeof payload, { user: { email: string }; plan: Plan }> = true;
    assert.ok(exact);
    seen.push(payload);
  },
});

const tagged = defineTask({
  name: 'tagged',
  schema: v.object({ tags: v.array(v.pipe(v.string(), v.minLength(2))) }),
  run(payload) {
    const exact: Equal<typeof payload, { tags: string[] }> = true;
    assert.ok(exact);
    seen.push(payload);
  },
});

const counted = defineTask({
  name: 'counted',
  schema: z
    .object({ n: z.number() })
    .refine(async ({ n }) => n > 1, { message: 'n must be more than 1', path: ['n'] }),
  run() {},
});

const untyped = defineTask<{ id: number }>({ name: 'untyped', run() {} });

/** Compiled, never run: what `enqueue` and `background.add` accept. */
export function enqueueTypes(runtime: Runtime, background: Background): void {
  // `enqueue` takes the schema's input: a field with a default may be left out.
  const input: Equal<PayloadOf<typeof signup>, { user: { email: string }; plan?: Plan }> = true;
  assert.ok(input);
  const stored: Promise<Task<{ user: { email: string }; plan?: Plan }>> = runtime.enqueue(signup, {
    user: { email: 'ada@example.com' },
  });
  void stored;
  // @ts-expect-error: the email is a string
  void runtime.enqueue(signup, { user: { email: 42 } });
  // @ts-expect-error: the user is required
  void runtime.enqueue(signup, { plan: 'pro' });
  // @ts-expect-error: no such plan
  void runtime.enqueue(signup, { user: { email: 'a@b.co' }, plan: 'gold' });
  void runtime.enqueue(tagged, { tags: ['a'] });
  // @ts-expect-error: tags are strings
  void runtime.enqueue(tagged, { tags: [1] });
  void runtime.enqueue(untyped, { id: 1 });
  // @ts-expect-error: without a schema, the type given to defineTask
  void runtime.enqueue(untyped, { id: '1' });
  // By name, another process's task may take anything.
  void runtime.enqueue('signup', { whatever: true });
  background.add(signup, { user: { email: 'ada@example.com' }, plan: 'pro' });
  // @ts-expect-error: the same types for a request's background tasks
  background.add(signup, { user: {} });
}

const runtimeWith = memoryRuntimes();

describe('payload schemas', () => {
  it('refuses at enqueue a payload the schema refuses, naming each path, and stores nothing', async () => {
    const runtime = runtimeWith({ tasks: [signup, tagged] });
    await assert.rejects(
      runtime.enqueue(signup, { user: { email: 'not an email' } }),
      (error: unknown) => {
        assert.ok(error instanceof InvalidPayloadError);
        assert.equal(error.path, 'payload.user.email');
        assert.equal(error.problem, 'Invalid email address');
        assert.equal(
          error.message,
          'payload.user.email: Invalid email address (the schema of task "signup" refused the payload)',
        );
        return true;
      },
    );
    // Valibot's path segments are objects; array indexes read as such. By name, too.
    await assert.rejects(
      runtime.enqueue('tagged', { tags: ['ok', 'x', 7] }),
      /^InvalidPayloadError: payload\.tags\[1\]: Invalid length: Expected >=2 but received 1; payload\.tags\[2\]: Invalid type: Expected string but received 7 \(the schema of task "tagged" refused the payload\)$/,
    );
    await assert.rejects(
      runtime.enqueueMany([
        { task: signup, payload: { user: { email: 'ada@example.com' } } },
        { task: tagged, payload: { tags: 'ok' } },
      ]),
      (error: unknown) => error instanceof InvalidPayloadError && error.path === 'payload.tags',
    );
    assert.equal((await runtime.list()).tasks.length, 0);
  });

  it('stores the payload as given and runs it with the schema output', async () => {
    seen.length = 0;
    const runtime = runtimeWith({ tasks: [signup, tagged] });
    const task = await runtime.enqueue(signup, { user: { email: 'ada@example.com' } });
    await runtime.enqueue(tagged, { tags: ['ok'] });
    await runtime.drain();
    assert.deepEqual((await runtime.get(task.id))?.payload, { user: { email: 'ada@example.com' } });
    assert.deepEqual(seen, [
      { user: { email: 'ada@example.com' }, plan: 'free' },
      { tags: ['ok'] },
    ]);
  });

  it('awaits an async schema at enqueue', async () => {
    const runtime = runtimeWith({ tasks: [counted] });
    await assert.rejects(
      runtime.enqueue(counted, { n: 1 }),
      /^InvalidPayloadError: payload\.n: n must be more than 1 \(the schema of task "counted"/,
    );
    await assert.rejects(
      runtime.enqueueMany([{ task: counted, payload: { n: 0 } }]),
      InvalidPayloadError,
    );
    assert.equal((await runtime.enqueue(counted, { n: 2 })).state, 'queued');
  });

  it('refuses in request.background.add at once, or at commit for an async schema', async () => {
    const runtime = runtimeWith({ tasks: [signup, counted] });
    const background = new Background(runtime);
    assert.throws(
      () => background.add(signup, { user: { email: 'nope' } }),
      (error: unknown) =>
        error instanceof InvalidPayloadError && error.path === 'payload.user.email',
    );
    assert.equal(background.size, 0, 'a refused payload is not added');
    background.add(counted, { n: 1 });
    await assert.rejects(background.commit(), InvalidPayloadError);
    assert.equal((await runtime.list()).tasks.length, 0);
  });

  it('fails for good, saying why, a stored payload that no longer matches the schema', async () => {
    const store = new MemoryStore();
    await store.open();
    const [created] = await store.enqueue([
      newStoredTask({ name: 'signup', payload: '{"user":{"mail":"ada@example.com"}}' }),
    ]);
    const { task } = created!;
    seen.length = 0;
    const runtime = runtimeWith({ store, tasks: [signup], clock: fakeClock(T0) });
    await runtime.drain();
    const failed = await runtime.get(task.id);
    assert.deepEqual([failed?.state, failed?.attempts, seen], ['failed', 1, []]);
    assert.equal(failed?.errors[0]?.name, PermanentError.name);
    assert.match(
      failed?.errors[0]?.message ?? '',
      /^payload\.user\.email: Invalid input: expected string, received undefined \(the schema of task "signup" refused the payload\)\. The stored payload no longer matches the schema/,
    );
  });

  it('refuses a schema that is not a Standard Schema, when the task is defined', () => {
    assert.throws(
      () => defineTask({ name: 'bad', schema: { parse() {} } as never, run() {} }),
      (error: unknown) =>
        error instanceof InvalidOptionError &&
        /^task "bad"\.schema: must be a Standard Schema \(version 1\), such as a Zod 4/.test(
          error.message,
        ),
    );
  });
});

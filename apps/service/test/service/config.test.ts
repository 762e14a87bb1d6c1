import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createRuntime,
  defineTask,
  InvalidOptionError,
  memoryStore,
  openStore,
  PermanentError,
} from '../../../../packages/offload/src/index.js';
import { describeConfig, loadConfig } from '../../src/config.js';
import { ServiceMetrics } from '../../src/metrics.js';
import { captureLogger, nextEvent } from '../../../../packages/offload/test/helpers.js';

describe('configuration', () => {
  it('has the documented defaults', () => {
    assert.deepEqual(loadConfig({}, { fileLimit: 1024 }), {
      port: 8000,
      host: '0.0.0.0',
      databaseUrl: 'sqlite:./data/offload.db',
      databaseSchema: 'offload',
      databasePoolSize: 10,
      taskTimeout: 60_000,
      shutdownGrace: 25_000,
      concurrency: undefined,
      notifyDemoDelay: 2000,
      apiKey: undefined,
      metricsPublic: false,
      dashboardReadOnly: false,
      logLevel: 'info',
      logFormat: undefined,
      maxConnections: 819,
      channels: {
        allowPrivateHosts: [],
        deliveryTimeout: 15_000,
        deliveryAttempts: 5,
        deliveryBackoff: 2000,
        providerConcurrency: { webhook: 10, email: 5, push: 50 },
        providerThrottle: 30_000,
        webhook: null,
        email: null,
        push: null,
      },
      topics: [],
      publicUrl: undefined,
      unsubscribeSecret: undefined,
      inbox: {
        secret: undefined,
        heartbeat: 15_000,
        maxStreams: 10_000,
        maxStreamsPerRecipient: 10,
      },
    });
  });

  it('reads the inbox secret and stream limits, and refuses bad ones', () => {
    const config = loadConfig({
      INBOX_SECRET: 'y'.repeat(32),
      INBOX_HEARTBEAT: '2.5',
      INBOX_MAX_STREAMS: '20000',
      INBOX_MAX_STREAMS_PER_RECIPIENT: '3',
    });
    assert.deepEqual(config.inbox, {
      secret: 'y'.repeat(32),
      heartbeat: 2500,
      maxStreams: 20_000,
      maxStreamsPerRecipient: 3,
    });
    for (const [name, value] of [
      ['INBOX_SECRET', 'short'],
      ['INBOX_SECRET', `${'y'.repeat(32)} z`],
      ['INBOX_HEARTBEAT', '0'],
      ['INBOX_HEARTBEAT', 'often'],
      ['INBOX_MAX_STREAMS', '-1'],
      ['INBOX_MAX_STREAMS_PER_RECIPIENT', '0'],
    ] as const) {
      assert.throws(() => loadConfig({ [name]: value }), {
        name: 'InvalidOptionError',
        message: new RegExp(`^${name}: `),
      });
    }
  });

  it('reads the topics, the public URL and the unsubscribe secret, and refuses bad ones', () => {
    const config = loadConfig({
      NOTIFICATION_TOPICS: 'billing, security,billing',
      PUBLIC_URL: 'https://notify.example.com/',
      UNSUBSCRIBE_SECRET: 'x'.repeat(32),
    });
    assert.deepEqual(config.topics, ['billing', 'security']);
    assert.equal(config.publicUrl, 'https://notify.example.com');
    assert.deepEqual(config.unsubscribeSecret, Buffer.from('x'.repeat(32)));
    const derived = loadConfig({ OFFLOAD_API_KEY: 'a-long-enough-key-123' }).unsubscribeSecret;
    assert.equal(derived?.length, 32, 'derived from the API key when unset');
    assert.ok(!derived.equals(Buffer.from('a-long-enough-key-123')), 'never the API key itself');
    for (const [name, value] of [
      ['NOTIFICATION_TOPICS', 'Billing'],
      ['PUBLIC_URL', 'ftp://example.com'],
      ['PUBLIC_URL', 'https://example.com/?x=1'],
      ['UNSUBSCRIBE_SECRET', 'short'],
    ] as const) {
      assert.throws(() => loadConfig({ [name]: value }), {
        name: 'InvalidOptionError',
        message: new RegExp(`^${name}: `),
      });
    }
  });

  it('reads every variable, seconds as milliseconds, and takes an empty one as unset', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      DATABASE_URL: 'memory:',
      REQUEST_TIMEOUT: '1.5',
      SHUTDOWN_GRACE: '0',
      CONCURRENCY: '4',
      NOTIFY_DEMO_DELAY_MS: '0',
      OFFLOAD_API_KEY: 'a-long-enough-key-123',
      LOG_LEVEL: '',
      DATABASE_SCHEMA: 'tenant_2',
      DATABASE_POOL_SIZE: '25',
      METRICS_PUBLIC: 'true',
    });
    assert.deepEqual(
      [
        config.port,
        config.host,
        config.databaseUrl,
        config.taskTimeout,
        config.shutdownGrace,
        config.concurrency,
        config.notifyDemoDelay,
        config.apiKey,
        config.logLevel,
        config.databaseSchema,
        config.databasePoolSize,
        config.metricsPublic,
      ],
      [
        9000,
        '127.0.0.1',
        'memory:',
        1500,
        0,
        4,
        0,
        'a-long-enough-key-123',
        'info',
        'tenant_2',
        25,
        true,
      ],
    );
  });

  it('reads the limits per provider', () => {
    const { channels } = loadConfig({
      WEBHOOK_HOST_CONCURRENCY: '3',
      SMTP_CONCURRENCY: '2',
      PUSH_CONCURRENCY: '100',
      PROVIDER_THROTTLE: '2.5',
    });
    assert.deepEqual(channels.providerConcurrency, { webhook: 3, email: 2, push: 100 });
    assert.equal(channels.providerThrottle, 2500);
  });

  it('reads LOG_FORMAT as json or pretty, and leaves the choice to the terminal when unset', () => {
    assert.equal(loadConfig({ LOG_FORMAT: 'json' }).logFormat, 'json');
    assert.equal(loadConfig({ LOG_FORMAT: ' pretty ' }).logFormat, 'pretty');
    assert.equal(loadConfig({ LOG_FORMAT: '' }).logFormat, undefined);
    assert.throws(
      () => loadConfig({ LOG_FORMAT: 'text' }),
      new InvalidOptionError(
        'LOG_FORMAT',
        'must be json or pretty, or unset for pretty lines on a terminal and JSON otherwise; got "text"',
      ),
    );
  });

  const bad: [string, string][] = [
    ['PORT', '80a'],
    ['PORT', '70000'],
    ['REQUEST_TIMEOUT', '0'],
    ['REQUEST_TIMEOUT', '1m'],
    ['SHUTDOWN_GRACE', '-5'],
    ['CONCURRENCY', '0'],
    ['CONCURRENCY', '2.5'],
    ['NOTIFY_DEMO_DELAY_MS', 'soon'],
    ['OFFLOAD_API_KEY', ''],
    ['OFFLOAD_API_KEY', 'has a space in it somewhere'],
    ['LOG_LEVEL', 'verbose'],
    ['LOG_FORMAT', 'text'],
    ['LOG_FORMAT', 'JSON'],
    ['METRICS_PUBLIC', 'yes'],
    ['DATABASE_SCHEMA', 'Public; DROP'],
    ['DATABASE_SCHEMA', '1abc'],
    ['DATABASE_POOL_SIZE', '0'],
    ['DATABASE_URL', 'foo:bar'],
    ['DATABASE_URL', 'sqlite:'],
    ['DATABASE_URL', 'memory:extra'],
    ['DATABASE_URL', 'postgres://[bad'],
    ['DATABASE_URL', 'postgres://u@127.0.0.1:5432'],
    ['WEBHOOK_HOST_CONCURRENCY', '0'],
    ['SMTP_CONCURRENCY', 'many'],
    ['PUSH_CONCURRENCY', '1.5'],
    ['PROVIDER_THROTTLE', '-1'],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}=${JSON.stringify(value)}, naming it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => {
          assert.ok(error instanceof InvalidOptionError);
          assert.equal(error.option, name);
          assert.match(error.message, new RegExp(`^${name}: `));
          return true;
        },
      );
    });
  }
});

describe('store URLs', () => {
  it('opens PostgreSQL for postgres:// and postgresql://, and never shows the password', async () => {
    for (const url of ['postgres://u:secret@127.0.0.1:5432/app', 'postgresql://u@[::1]/app']) {
      assert.equal((await openStore(url)).kind, 'postgres');
    }
    const config = loadConfig({ DATABASE_URL: 'postgres://u:secret@127.0.0.1:5432/app' });
    assert.equal(describeConfig(config).databaseUrl, 'postgres://u:***@127.0.0.1:5432/app');
    for (const url of ['postgres://u:secret@127.0.0.1:5432', 'mysql://u:secret@db/app']) {
      await assert.rejects(openStore(url), (error: unknown) => {
        assert.ok(error instanceof InvalidOptionError);
        // Named as the argument it is; the service checks DATABASE_URL in loadConfig first.
        assert.equal(error.option, 'openStore url');
        assert.doesNotMatch(error.message, /secret/);
        return true;
      });
    }
  });
});

describe('metrics', () => {
  it('count retries and failures by task name as the runtime reports them', async () => {
    const flaky = defineTask({
      name: 'flaky',
      maxAttempts: 2,
      backoff: { base: 0, jitter: 0 },
      run: (_payload, ctx) => {
        throw ctx.attempt === 1 ? new Error('try again') : new PermanentError('give up');
      },
    });
    const store = memoryStore();
    const runtime = createRuntime({ store, tasks: [flaky], logger: captureLogger() });
    const metrics = new ServiceMetrics({ runtime, store, processMetrics: false });
    try {
      await runtime.start();
      const failed = nextEvent(runtime, 'task:failed');
      await runtime.enqueue(flaky, {});
      await failed;
      const { body } = await metrics.render();
      assert.match(body, /^offload_task_retries_total\{name="flaky"\} 1$/m);
      assert.match(body, /^offload_task_failures_total\{name="flaky"\} 1$/m);
      assert.match(
        body,
        /^offload_task_attempt_duration_seconds_count\{name="flaky",outcome="error"\} 2$/m,
      );
      assert.match(body, /^offload_tasks\{name="flaky",state="failed"\} 1$/m);
    } finally {
      metrics.close();
      await runtime.stop();
    }
  });

  it('reads the store counts once a scrape, for every gauge of it', async () => {
    const store = memoryStore();
    await store.open();
    let reads = 0;
    const stats = store.stats.bind(store);
    store.stats = (now) => {
      reads += 1;
      return stats(now);
    };
    const runtime = createRuntime({ store, tasks: [], logger: captureLogger() });
    const metrics = new ServiceMetrics({ runtime, store, statsTtl: 0, processMetrics: false });
    try {
      for (let i = 1; i <= 2; i++) {
        const { body } = await metrics.render();
        assert.match(body, /^offload_store_up 1$/m);
        assert.equal(reads, i);
      }
    } finally {
      metrics.close();
    }
  });
});

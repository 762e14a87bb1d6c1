import { after, describe, it } from 'node:test';
import { postgresStore } from '../../src/postgres/postgres-store.js';
import { TcpProxy } from '../fixtures/tcp-proxy.js';
import { T0 } from '../helpers.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';

/**
 * The watch of feeds across processes when the watching connection breaks: the listener hears
 * `null` (any feed may have changed meanwhile) once it is back, and the appends after it again.
 */
describe('postgres: the watch of feeds through a lost connection', () => {
  const schema = uniqueSchema('feeds');
  after(() => dropSchema(schema));

  it('tells null once the connection is back, then each feed appended to again', async () => {
    const target = new URL(TEST_DATABASE_URL);
    const proxy = await TcpProxy.start(Number(target.port || 5432));
    const through = new URL(TEST_DATABASE_URL);
    through.host = `127.0.0.1:${proxy.port}`;
    const watcher = postgresStore({ connectionString: through.toString(), schema });
    const writer = postgresStore({ connectionString: TEST_DATABASE_URL, schema });
    const told: (string | null)[] = [];
    let wake: () => void = () => undefined;
    const hear = (match: (feed: string | null) => boolean, what: string) =>
      new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`never told ${what}: ${told}`)), 10_000);
        wake = () => {
          if (!told.some(match)) return;
          clearTimeout(timer);
          resolve();
        };
        wake();
      });
    try {
      await watcher.open();
      await writer.open();
      await watcher.watchFeeds((feed) => {
        told.push(feed);
        wake();
      });
      await writer.appendFeedEntry({ feed: 'inbox:a', key: '1', value: '{}' }, T0);
      await hear((feed) => feed === 'inbox:a', 'inbox:a');

      proxy.cut();
      // Written while the watcher cannot hear: it is told null once it is back.
      await writer.appendFeedEntry({ feed: 'inbox:b', key: '1', value: '{}' }, T0);
      proxy.restore();
      await hear((feed) => feed === null, 'null');
      told.length = 0;
      await writer.appendFeedEntry({ feed: 'inbox:c', key: '1', value: '{}' }, T0);
      await hear((feed) => feed === 'inbox:c', 'inbox:c');
    } finally {
      await watcher.close();
      await writer.close();
      await proxy.close();
    }
  });
});

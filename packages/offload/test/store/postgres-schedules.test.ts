import { after, describe, it } from 'node:test';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';
import { fireEverySecondWithAKill } from './schedule-processes.js';

describe('postgres: schedules across processes', () => {
  const schema = uniqueSchema('schedules');
  after(() => dropSchema(schema));

  it('fires an every-second schedule exactly once among three processes, one SIGKILLed midway', async () => {
    await fireEverySecondWithAKill({ url: TEST_DATABASE_URL, schema, workers: 3 });
  });
});

import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers.js';
import { fireEverySecondWithAKill } from './schedule-processes.js';

describe('sqlite: schedules across processes', () => {
  const temp = tempDir();
  after(() => temp.remove());

  it('fires an every-second schedule exactly once between two processes on one file, one SIGKILLed midway', async () => {
    await fireEverySecondWithAKill({
      url: `sqlite:${join(temp.dir, 'offload.db')}`,
      workers: 2,
    });
  });
});

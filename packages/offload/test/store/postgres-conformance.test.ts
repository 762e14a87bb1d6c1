import { postgresStore } from '../../src/postgres/index.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from '../pg-helpers.js';
import { storeConformance } from './conformance/index.js';

storeConformance('postgres', async () => {
  const schema = uniqueSchema('conformance');
  return {
    store: postgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 }),
    cleanup: () => dropSchema(schema),
    connect: () => postgresStore({ connectionString: TEST_DATABASE_URL, schema, poolSize: 4 }),
  };
});

export { postgresStore, PostgresStore, type PostgresStoreOptions } from './postgres-store.js';

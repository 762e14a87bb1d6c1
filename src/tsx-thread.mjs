// The entry of task threads when Offload runs from its TypeScript sources under tsx (its own tests,
// development): threads do not inherit the parent's `--import tsx`, so this registers tsx first.
// Built code (dist/) starts threads on thread-worker.js directly and never loads this file.
import { URL } from 'node:url';
import { register } from 'tsx/esm/api';

register();
await import(new URL('./thread-worker.ts', import.meta.url).href);

// The entry of Offload's worker threads when it runs from its TypeScript sources under tsx (its own
// tests, development): threads do not inherit the parent's `--import tsx`, so this registers tsx
// first, then imports the thread's module, the last argument. Built code (dist/) starts threads on
// their .js modules directly and never loads this file.
import process from 'node:process';
import { register } from 'tsx/esm/api';

register();
await import(process.argv.at(-1));

import { MemoryStore } from '../src/store/memory.js';
import { storeConformance } from './store-conformance.js';

storeConformance('memory', async () => ({ store: new MemoryStore(), cleanup: async () => {} }));

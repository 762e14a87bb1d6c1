import { exampleTest } from '../example-test.js';

exampleTest('hono');

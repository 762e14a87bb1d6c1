import { exampleTest } from '../example-test.js';

exampleTest('express');

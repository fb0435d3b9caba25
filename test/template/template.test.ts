// Templates on the real PostgreSQL server.
import { createTestDatabase } from '../support/db.ts';
import { templateSuite } from './support/suite.ts';

templateSuite('PostgreSQL', () => createTestDatabase({ poolSize: 4 }));

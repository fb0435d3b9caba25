// Templates on the embedded database (PGlite, which reports PostgreSQL 18).
import { createEmbeddedTestDatabase } from '../support/db.ts';
import { templateSuite } from './support/suite.ts';

templateSuite('embedded PGlite', () => createEmbeddedTestDatabase());

// Templates through the manager on the real PostgreSQL server.
import { createTestDatabase } from '../support/db.ts';
import { managerTemplateSuite } from './support/manager-suite.ts';

managerTemplateSuite('PostgreSQL', () => createTestDatabase({ poolSize: 4 }));

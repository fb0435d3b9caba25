// Templates through the manager on the embedded database (PGlite).
import { createEmbeddedTestDatabase } from '../support/db.ts';
import { managerTemplateSuite } from './support/manager-suite.ts';

managerTemplateSuite('embedded PGlite', () => createEmbeddedTestDatabase());

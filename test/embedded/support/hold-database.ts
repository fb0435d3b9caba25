// Opens the embedded database in SANDBOX_DATA_DIR (becoming its owner), says "ready", and holds
// it until killed. Used to test another process connecting to, and taking over from, it.
import { openDatabase } from '../../../src/db/database.ts';
import { silentLogger } from '../../../src/logger.ts';

const db = await openDatabase({ dataDir: process.env.SANDBOX_DATA_DIR!, logger: silentLogger() });
process.stdout.write(`ready ${db.embedded}\n`);
setInterval(() => undefined, 60_000);

import { Writable } from 'node:stream';
import { DiscordAPIError } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';

function capture(): { lines: string[]; sink: Writable } {
  const lines: string[] = [];
  const sink = new Writable({
    write: (chunk: Buffer, _enc, done) => {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return { lines, sink };
}

const TOKEN = 'aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OmFiY2RlZmdoaWprbG1ub3A';
const BOT = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB';

describe('log redaction', () => {
  it('removes interaction tokens from a DiscordAPIError url, messages and any field', () => {
    const { lines, sink } = capture();
    const log = createLogger('info', sink);
    const err = new DiscordAPIError({ code: 10015, message: 'Unknown Webhook' }, 10015, 404, 'PATCH', `https://discord.com/api/v10/webhooks/1234567890/${TOKEN}/messages/@original`, { body: undefined, files: undefined });
    log.warn({ err }, 'could not edit');
    log.info({ path: `/api/v10/interactions/987654321/${TOKEN}/callback` }, `POST /interactions/987654321/${TOKEN}/callback`);
    log.child({ req: { headers: { Authorization: `Bot ${BOT}` } } }).info({ headers: { authorization: `Bot ${BOT}` } }, `sent Authorization: Bot ${BOT}`);
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line).not.toContain(TOKEN);
      expect(line).not.toContain(BOT);
    }
    expect(JSON.parse(lines[0]!).err.url).toBe('https://discord.com/api/v10/webhooks/1234567890/[redacted]/messages/@original');
    expect(lines[1]).toContain('/interactions/987654321/[redacted]/callback');
  });
});

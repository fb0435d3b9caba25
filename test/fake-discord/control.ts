import type { IncomingMessage } from 'node:http';
import { apiError, isRecord, ok, readBody } from './http.ts';
import type { RestResult } from './http.ts';
import type { FakeDiscord } from './fake-discord.ts';
import type { CommandOptions } from './interactions.ts';
import type { GuildInput } from './state.ts';

/** Minimal JSON API for driving a standalone fake from another process (e.g. curl). */
export async function handleControl(fake: FakeDiscord, req: IncomingMessage, url: URL): Promise<RestResult> {
  const [, , resource, id] = url.pathname.split('/').map(decodeURIComponent);
  const body = await readBody(req);
  const key = `${req.method} ${resource}${id ? '/:id' : ''}`;
  switch (key) {
    case 'POST guilds':
      if (!isRecord(body) || typeof body.ownerId !== 'string') return apiError(400, 0, 'ownerId is required');
      return ok({ id: fake.addGuild(body as unknown as GuildInput) });
    case 'DELETE guilds/:id': {
      const flag = url.searchParams.get('unavailable');
      fake.removeGuild(id ?? '', { unavailable: flag === '1' || flag === 'true' });
      return ok({ id });
    }
    case 'POST commands': {
      if (!isRecord(body) || typeof body.guildId !== 'string' || typeof body.userId !== 'string') {
        return apiError(400, 0, 'guildId, userId and name are required');
      }
      const handle = fake.sendCommand(body as unknown as CommandOptions);
      const responses = await handle.settled({ timeoutMs: 5000 }).catch(() => handle.responses);
      return ok({ id: handle.id, deferred: handle.deferred, ephemeral: handle.ephemeral, responses, message: handle.message ?? null });
    }
    case 'POST events': {
      if (!isRecord(body) || typeof body.t !== 'string') return apiError(400, 0, 't (the dispatch type) and d are required');
      return ok({ sessions: fake.dispatchEvent(body.t, body.d ?? {}) });
    }
    case 'POST resume': {
      const replay = isRecord(body) && typeof body.replay === 'number' ? body.replay : 0;
      fake.forceResume(replay);
      return ok({ replay });
    }
    case 'GET state':
      return ok(snapshot(fake));
    default:
      return apiError(404, 0, '404: Not Found');
  }
}

function snapshot(fake: FakeDiscord) {
  const { state } = fake;
  return {
    connected: fake.connected,
    guilds: [...state.guilds.values()].map((g) => ({
      id: g.id,
      name: g.name,
      ownerId: g.ownerId,
      unavailable: g.unavailable,
      roles: [...g.roles.values()],
      members: [...g.members.values()],
    })),
    commands: Object.fromEntries(state.commands),
    dms: fake.dms,
    channelMessages: fake.channelMessages,
    interactions: fake.interactions.map((h) => ({ id: h.id, type: h.payload.type, sentAt: h.sentAt, responses: h.responses })),
    unhandled: fake.unhandled,
  };
}

import type { ApplicationCommandOptionChoiceData, AutocompleteInteraction } from 'discord.js';
import type { SandboxManager } from '../../sandbox/manager.ts';
import type { Actor } from '../../sandbox/types.ts';

/** Choices for a `<sandbox>` option: the invoker's live sandboxes (an admin's: everyone's). */
export async function sandboxChoices(interaction: AutocompleteInteraction, manager: SandboxManager, actor: Actor): Promise<ApplicationCommandOptionChoiceData<string>[]> {
  const typed = String(interaction.options.getFocused() ?? '').toLowerCase();
  // The manager narrows a non-admin to their own sandboxes.
  const sandboxes = await manager.list({ limit: 200 }, actor);
  return sandboxes
    .filter((s) => s.name.includes(typed) || s.id.startsWith(typed))
    .slice(0, 25)
    .map((s) => ({ name: `${s.name} (${s.status})`, value: s.name }));
}

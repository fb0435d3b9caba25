import type { ApplicationCommandOptionChoiceData, AutocompleteInteraction } from 'discord.js';
import type { SandboxManager } from '../../sandbox/manager.ts';
import type { Actor } from '../../sandbox/types.ts';

/** Choices for a `<sandbox>` option: the invoker's live sandboxes (an admin's: everyone's) by name prefix, one query with LIMIT 25. */
export async function sandboxChoices(interaction: AutocompleteInteraction, manager: SandboxManager, actor: Actor): Promise<ApplicationCommandOptionChoiceData<string>[]> {
  const typed = String(interaction.options.getFocused() ?? '');
  const sandboxes = await manager.suggest(typed, actor);
  return sandboxes.map((s) => ({ name: `${s.name} (${s.status})`, value: s.name }));
}

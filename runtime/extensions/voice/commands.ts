/** `voice/listen`, `voice/say`, `voice/status`. Light on purpose: `apiary commands` declares them without loading the extension. */
import { z } from 'zod';
import type { CommandRegistry } from '../../commands/command-registry.js';

export interface VoiceControl {
  listen(): Promise<unknown>;
  say(text: string): unknown;
  status(): unknown;
}

const OFF = 'voice is off on this node (set voice.enabled: true, install the packages `apiary doctor` names, and restart the node)';

export function declareVoiceCommands(registry: CommandRegistry, control?: VoiceControl): void {
  const unavailable = () => (control ? undefined : OFF);
  registry.define('voice/listen', {
    description: "listen for one spoken question on the node's voice microphone and speak the answer; replies with what was heard and answered (the audio is never kept)",
    args: z.strictObject({}),
    // It opens a microphone: an MCP client asks before calling it.
    write: true,
    unavailable,
    handler: () => control?.listen(),
  });
  registry.define('voice/say', {
    description: "speak a short text on the node's speaker (queued behind what is being said)",
    args: z.strictObject({ text: z.string({ error: 'expected the text to speak' }).trim().min(1, { error: 'the text is empty' }).max(500, { error: 'at most 500 characters: a sentence or two' }).describe('what to say') }),
    write: true,
    unavailable,
    handler: ({ text }) => control?.say(text),
  });
  registry.define('voice/status', {
    description: 'the voice: which programs are missing (with the apt line), the devices, whether it is listening, the Wyoming endpoint',
    args: z.strictObject({}),
    unavailable,
    handler: () => control?.status(),
  });
}

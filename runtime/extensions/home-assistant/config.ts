/** The `homeAssistant` section: MQTT discovery for Home Assistant. */
import { z } from 'zod';

export const homeAssistantSchema = z.strictObject({
  enabled: z.boolean().default(true),
  discoveryPrefix: z.string().regex(/^[a-zA-Z0-9_-]+$/).default('homeassistant'),
});

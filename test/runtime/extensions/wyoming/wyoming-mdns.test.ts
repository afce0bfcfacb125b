import { Bonjour } from 'bonjour-service';
import { describe, expect, it } from 'vitest';
import { Counters } from '../../../../runtime/counters.js';
import { createLogger } from '../../../../runtime/log.js';
import { WyomingAdvert } from '../../../../runtime/extensions/wyoming/wyoming-mdns.js';
import { freeUdpPort } from '../../../support/mesh-node.js';

describe('Wyoming mDNS announcement', () => {
  it('is found as _wyoming._tcp with its port and node id, and says goodbye on stop', async () => {
    const mdnsPort = await freeUdpPort();
    const advert = new WyomingAdvert({ name: 'apiary-hive-abcdefghijkl', port: 10_300, nodeId: 'abcdefghijkl', interface: '127.0.0.1', mdnsPort, counters: new Counters(), logger: createLogger('silent') });
    const browser = new Bonjour({ port: mdnsPort, interface: '127.0.0.1', bind: '0.0.0.0' } as unknown as ConstructorParameters<typeof Bonjour>[0]);
    try {
      const found = new Promise<{ name: string; port: number; txt: unknown }>((resolve) => {
        browser.find({ type: 'wyoming' }, (service) => resolve(service as unknown as { name: string; port: number; txt: unknown }));
      });
      const gone = new Promise<string>((resolve) => {
        const b = browser.find({ type: 'wyoming' });
        b.on('down', (service: { name: string }) => resolve(service.name));
      });
      await advert.start();
      const service = await found;
      expect(service).toMatchObject({ name: 'apiary-hive-abcdefghijkl', port: 10_300, txt: { node: 'abcdefghijkl' } });
      await advert.stop();
      expect(await gone).toBe('apiary-hive-abcdefghijkl');
    } finally {
      await advert.stop();
      await new Promise<void>((resolve) => browser.destroy(() => resolve()));
    }
  });
});

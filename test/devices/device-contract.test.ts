/**
 * The shared contract every Device implementation must meet. Each
 * implementation that can run without hardware is listed in `implementations`.
 */
import { describe, expect, it } from 'vitest';
import { ScaledClock } from '../../runtime/clock.js';
import { parseConfig } from '../../runtime/config/load-config.js';
import { createDevice } from '../../devices/create-device.js';
import type { AudioFrame, Device, Reading } from '../../devices/device.js';

const implementations: { name: string; make: () => Device }[] = [
  {
    name: 'simulated-beehive (johnny-five over SimulatedBeehiveIO)',
    make: () => {
      const config = parseConfig({
        device: {
          kind: 'simulated-beehive',
          simulation: { speed: 600, preSwarm: '1m', swarm: '1m' },
          sensors: { temperature: { interval: '30s' }, humidity: { interval: '30s' }, weight: { interval: '30s' }, sound: { interval: '10s' } },
        },
      });
      return createDevice(config.device, new ScaledClock({ speed: 600 }));
    },
  },
];

function collect(device: Device, until: (readings: Reading[], frames: AudioFrame[]) => boolean): Promise<{ readings: Reading[]; frames: AudioFrame[] }> {
  const readings: Reading[] = [];
  const frames: AudioFrame[] = [];
  return new Promise((resolve) => {
    const check = () => { if (until(readings, frames)) resolve({ readings, frames }); };
    device.on('reading', (r) => { readings.push(r); check(); });
    device.on('audio', (f) => { frames.push(f); check(); });
  });
}

describe.each(implementations)('Device contract: $name', ({ make }) => {
  it('emits readings for every declared channel, in range, with units and times', async () => {
    const device = make();
    const done = collect(device, (readings) => device.channels.every((c) => readings.filter((r) => r.channel === c.name).length >= 3));
    await device.open();
    const { readings } = await done;
    await device.close();
    expect(device.channels.map((c) => c.name)).toEqual(['temperature', 'humidity', 'weight']);
    for (const channel of device.channels) {
      const mine = readings.filter((r) => r.channel === channel.name);
      expect(mine.every((r) => r.unit === channel.unit && Number.isFinite(r.value) && r.t > 0)).toBe(true);
    }
    const temps = readings.filter((r) => r.channel === 'temperature').map((r) => r.value);
    expect(Math.min(...temps)).toBeGreaterThan(10);
    expect(Math.max(...temps)).toBeLessThan(45);
    const weights = readings.filter((r) => r.channel === 'weight').map((r) => r.value);
    expect(Math.min(...weights)).toBeGreaterThan(30);
  });

  it('stops emitting after close, and can be closed without leaking timers', async () => {
    const device = make();
    await device.open();
    await device.close();
    let after = 0;
    device.on('reading', () => after++);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(after).toBe(0);
  });

  it('delivers audio frames of the declared length', async () => {
    const device = make();
    expect(device.hasAudio).toBe(true);
    const done = collect(device, (_r, frames) => frames.length >= 2);
    await device.open();
    const { frames } = await done;
    await device.close();
    expect(frames[0]?.samples.length).toBe(frames[0]?.sampleRate);
    expect(frames[0]?.samples.every((s) => Number.isFinite(s))).toBe(true);
  });

  it('turns an injected swarm into swarm sound (simulated devices only)', async () => {
    const device = make();
    if (!device.simulation) return;
    await device.open();
    device.simulation.inject('swarm');
    expect(device.simulation.state().sound).toBe('pre-swarm');
    await device.close();
  });
});
